package health

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/monitor"
)

// run evaluates the lab fixture n times with mods and returns the last
// report.
type runner struct {
	e   *Engine
	now time.Time
}

func newRunner() *runner { return &runner{e: New(DefaultConfig()), now: t0} }

func (r *runner) eval(n int, mods map[netip.Addr][]mod) Report {
	var rep Report
	for range n {
		r.now = r.now.Add(time.Second)
		rep = r.e.Evaluate(r.now, lab(r.now, mods), hostAt(r.now, 0, nil))
	}
	return rep
}

func verdictOf(t *testing.T, rep Report, name string) MonitorVerdict {
	t.Helper()
	m, ok := rep.Monitor(name)
	if !ok {
		t.Fatalf("no monitor %s in %+v", name, rep)
	}
	return m
}

func allFour(m ...mod) map[netip.Addr][]mod {
	return map[netip.Addr][]mod{a1: m, a2: m, b1: m, b2: m}
}

func TestHysteresis(t *testing.T) {
	lossy := allFour(loss(0.03))
	t.Run("one bad evaluation between good ones never enters", func(t *testing.T) {
		r := newRunner()
		r.eval(30, nil)
		for range 10 {
			if v := verdictOf(t, r.eval(1, lossy), "all").Verdict; v != Healthy {
				t.Fatalf("entered %s after one evaluation", v)
			}
			if v := verdictOf(t, r.eval(1, nil), "all").Verdict; v != Healthy {
				t.Fatalf("%s", v)
			}
		}
		tr := verdictOf(t, r.eval(1, nil), "all").Transitions
		if len(tr) != 2 {
			t.Errorf("transitions %+v, want insufficient_data -> healthy only", tr)
		}
	})
	t.Run("held by exit thresholds below entry", func(t *testing.T) {
		r := newRunner()
		r.eval(30, nil)
		if v := verdictOf(t, r.eval(3, lossy), "all").Verdict; v != PathDegraded {
			t.Fatalf("%s, want path_degraded", v)
		}
		// 0.6% is below entry (1%) and above exit (0.4%): held.
		if m := verdictOf(t, r.eval(10, allFour(loss(0.006))), "all"); m.Verdict != PathDegraded {
			t.Fatalf("%s at 0.6%% loss, want path_degraded held", m.Verdict)
		}
		// From healthy, 0.6% does not enter.
		r2 := newRunner()
		r2.eval(30, nil)
		if v := verdictOf(t, r2.eval(10, allFour(loss(0.006))), "all").Verdict; v != Healthy {
			t.Fatalf("%s at 0.6%% loss from healthy, want healthy", v)
		}
	})
	t.Run("leaves after LeaveAfter healthy evaluations", func(t *testing.T) {
		r := newRunner()
		r.eval(30, nil)
		r.eval(3, lossy)
		for i := 1; i <= 5; i++ {
			m := verdictOf(t, r.eval(1, nil), "all")
			if i < 5 && m.Verdict != PathDegraded {
				t.Fatalf("left after %d healthy evaluations", i)
			}
			if i < 5 && !strings.HasPrefix(m.Summary, "clearing (") {
				t.Errorf("summary while clearing: %q", m.Summary)
			}
			if i == 5 && m.Verdict != Healthy {
				t.Fatalf("%s after 5 healthy evaluations", m.Verdict)
			}
		}
	})
	t.Run("a different degraded verdict needs two evaluations too", func(t *testing.T) {
		r := newRunner()
		r.eval(30, nil)
		r.eval(3, lossy)
		if v := verdictOf(t, r.eval(1, allFour(refused)), "all").Verdict; v != PathDegraded {
			t.Fatalf("switched to %s after one evaluation", v)
		}
		if v := verdictOf(t, r.eval(1, allFour(refused)), "all").Verdict; v != RemoteApplication {
			t.Fatalf("%s, want remote_application", v)
		}
	})
}

func TestActivityGate(t *testing.T) {
	quiet := func(s *monitor.Stats) {
		*s = monitor.Stats{SegsOut: 20, Retransmits: 10, ConnectOK: 1, Connections: 1,
			RTT: flow.NewHistogram(flow.RTTBuckets), Handshake: flow.NewHistogram(flow.HandshakeBuckets)}
	}
	r := newRunner()
	rep := r.eval(10, allFour(quiet))
	for _, m := range rep.Monitors {
		if m.Verdict != InsufficientData {
			t.Errorf("%s: %s with 20 segments (half retransmitted), want insufficient_data", m.Name, m.Verdict)
		}
		if !strings.Contains(m.Summary, "too little traffic") || m.Confidence != Low {
			t.Errorf("%s: summary %q confidence %s", m.Name, m.Summary, m.Confidence)
		}
	}
	if rep.Verdict != InsufficientData {
		t.Errorf("overall %s", rep.Verdict)
	}
	// Traffic arriving gives healthy at once; traffic stopping takes two
	// evaluations (no flapping on one quiet second).
	if v := verdictOf(t, r.eval(1, nil), "all").Verdict; v != Healthy {
		t.Fatalf("%s", v)
	}
	if v := verdictOf(t, r.eval(1, allFour(quiet)), "all").Verdict; v != Healthy {
		t.Fatalf("%s after one quiet evaluation", v)
	}
	if v := verdictOf(t, r.eval(1, allFour(quiet)), "all").Verdict; v != InsufficientData {
		t.Fatalf("%s after two quiet evaluations", v)
	}
}

func TestLatencyRules(t *testing.T) {
	t.Run("smoothed RTT alone is never blamed", func(t *testing.T) {
		srttOnly := func(s *monitor.Stats) {
			s.RTT = flow.NewHistogram(flow.RTTBuckets)
			for range 10 {
				s.RTT.Observe(0.040) // delayed ACKs: 40 ms smoothed, handshake unchanged
			}
		}
		r := newRunner()
		r.eval(30, nil)
		m := verdictOf(t, r.eval(10, allFour(srttOnly)), "all")
		if m.Verdict != Healthy {
			t.Fatalf("%s from smoothed RTT alone", m.Verdict)
		}
		var noted bool
		for _, f := range m.Findings {
			noted = noted || strings.Contains(f.Summary, "smoothed RTT")
		}
		if !noted {
			t.Errorf("no note about the smoothed RTT: %+v", m.Findings)
		}
	})
	t.Run("no baseline yet: no latency verdict", func(t *testing.T) {
		r := newRunner()
		r.eval(5, nil) // less than BaselineAfter
		if v := verdictOf(t, r.eval(5, allFour(latency(20*time.Millisecond))), "all").Verdict; v != Healthy {
			t.Fatalf("%s without a learned baseline", v)
		}
	})
	t.Run("small absolute inflation is not a verdict", func(t *testing.T) {
		r := newRunner()
		r.eval(30, nil)
		// 0.3 ms -> 2.3 ms is 7x but only 2 ms: below LatencyAbs.
		if v := verdictOf(t, r.eval(10, allFour(latency(2*time.Millisecond))), "all").Verdict; v != Healthy {
			t.Fatalf("%s", v)
		}
	})
	t.Run("inflation on every zone is scope all", func(t *testing.T) {
		r := newRunner()
		r.eval(30, nil)
		m := verdictOf(t, r.eval(3, allFour(latency(30*time.Millisecond))), "all")
		if m.Verdict != PathDegraded || m.Scope != "all" {
			t.Fatalf("%s scope %q", m.Verdict, m.Scope)
		}
		if !strings.Contains(m.Summary, "baseline") {
			t.Errorf("summary %q does not give the baseline", m.Summary)
		}
	})
}

func TestScope(t *testing.T) {
	r := newRunner()
	r.eval(30, nil)
	// Two of four, one per zone: no shared scope holds most of its
	// remotes: remote_degraded naming both.
	m := verdictOf(t, r.eval(3, map[netip.Addr][]mod{a1: {loss(0.05)}, b1: {loss(0.05)}}), "all")
	if m.Verdict != RemoteDegraded || !strings.Contains(m.Culprit, "10.1.0.2") || !strings.Contains(m.Culprit, "10.2.0.2") {
		t.Fatalf("%s culprit %q", m.Verdict, m.Culprit)
	}
	// One remote only active: remote_degraded, low confidence.
	one := map[netip.Addr][]mod{}
	for _, a := range []netip.Addr{a2, b1, b2} {
		one[a] = []mod{func(s *monitor.Stats) { *s = monitor.Stats{} }}
	}
	one[a1] = []mod{loss(0.05)}
	r2 := newRunner()
	r2.eval(30, nil)
	m = verdictOf(t, r2.eval(3, one), "to-a")
	if m.Verdict != RemoteDegraded || m.Confidence != Low || !strings.Contains(m.Summary, "only active remote") {
		t.Fatalf("%s %s %q", m.Verdict, m.Confidence, m.Summary)
	}
}

func TestWorst(t *testing.T) {
	for _, tc := range []struct {
		in   []Verdict
		want Verdict
	}{
		{nil, InsufficientData},
		{[]Verdict{InsufficientData, Healthy}, Healthy},
		{[]Verdict{Healthy, RemoteDegraded, PathDegraded}, PathDegraded},
		{[]Verdict{RemoteDegraded, HostConntrack, InsufficientData}, HostConntrack},
		{[]Verdict{InsufficientData, InsufficientData}, InsufficientData},
	} {
		if got := Worst(tc.in); got != tc.want {
			t.Errorf("Worst(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if !PathDegraded.Outside() || HostStack.Outside() || !RemoteApplication.Outside() {
		t.Error("Outside")
	}
}

func TestQuantile(t *testing.T) {
	h := flow.NewHistogram(flow.RTTBuckets)
	for range 10 {
		h.Observe(0.020) // in (0.01, 0.025]
	}
	if q := quantile(&h, 0.5); q <= 0.01 || q > 0.025 {
		t.Errorf("p50 %v, want within (0.01, 0.025]", q)
	}
	h.Observe(100)
	if q := quantile(&h, 1); q != 2.5 {
		t.Errorf("p100 with +Inf %v, want the top bound", q)
	}
	empty := flow.NewHistogram(flow.RTTBuckets)
	if quantile(&empty, 0.5) != 0 {
		t.Error("empty")
	}
}

func TestHostDelta(t *testing.T) {
	var hs history
	at := func(s int, drop, nf uint64) Host {
		return Host{At: t0.Add(time.Duration(s) * time.Second), Conntrack: &Conntrack{Drop: drop, Entries: 1, Limit: 2},
			Drops: map[string]uint64{"NETFILTER_DROP": nf, "NO_SOCKET": 1000 * uint64(s)}}
	}
	for s := range 20 {
		hs.add(at(s, uint64(s), uint64(2*s)), 10*time.Second)
	}
	d := hs.delta()
	if d.ctDrops != 10 || d.hostDrops != 20 || d.fill != 0.5 {
		t.Errorf("delta over 10 s: ctDrops %d hostDrops %d fill %v, want 10, 20 (NO_SOCKET ignored), 0.5", d.ctDrops, d.hostDrops, d.fill)
	}
	if len(hs.samples) != 11 {
		t.Errorf("kept %d samples, want 11", len(hs.samples))
	}
	// A counter that restarts (module reload) counts from zero.
	hs.add(at(20, 3, 1), 10*time.Second)
	if d := hs.delta(); d.ctDrops != 3 || d.hostDrops != 1 {
		t.Errorf("after reset: %d %d", d.ctDrops, d.hostDrops)
	}
	if !isHostDrop("SKB_DROP_REASON_NETFILTER_DROP") || !isHostDrop("qdisc_drop") || isHostDrop("NO_SOCKET") {
		t.Error("isHostDrop")
	}
}

func TestBaselinesBounded(t *testing.T) {
	e := New(Config{MaxBaselines: 3})
	for i := range 10 {
		e.base.observe(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), t0.Add(time.Duration(i)*time.Second), 0.001, time.Minute)
	}
	if len(e.base.m) != 3 {
		t.Fatalf("%d baselines, want 3", len(e.base.m))
	}
	if e.base.get(netip.AddrFrom4([4]byte{10, 0, 0, 9})) == nil {
		t.Error("newest evicted")
	}
	// The span forgets old slots.
	b := &baselines{max: 10}
	a := netip.MustParseAddr("10.9.9.9")
	b.observe(a, t0, 0.001, 5*time.Minute)
	b.observe(a, t0.Add(10*time.Minute), 0.020, 5*time.Minute)
	if v, ok := b.value(a, t0.Add(10*time.Minute), 5*time.Minute, 0); !ok || v != 0.020 {
		t.Errorf("baseline %v %v, want the old minimum forgotten", v, ok)
	}
}
