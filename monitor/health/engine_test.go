package health

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/monitor"
)

// The lab's shape as fixtures: the client in zone-a, two servers in zone-a
// (intra_zone) and two in zone-b (inter_zone); monitors to-a, to-b, all.
var (
	a1 = netip.MustParseAddr("10.1.0.2")
	a2 = netip.MustParseAddr("10.1.0.3")
	b1 = netip.MustParseAddr("10.2.0.2")
	b2 = netip.MustParseAddr("10.2.0.3")
)

var t0 = time.Date(2026, 11, 30, 21, 0, 0, 0, time.UTC)

func place(a netip.Addr) monitor.Place {
	if a == a1 || a == a2 {
		return monitor.Place{Network: "zone-a", Zone: "zone-a", Category: "intra_zone", Source: "networks"}
	}
	return monitor.Place{Network: "zone-b", Zone: "zone-b", Category: "inter_zone", Source: "networks"}
}

// bulk is a healthy remote over a 10 s window: an iperf3 upload and ten
// short connections with a handshake of rtt.
func bulk(rtt time.Duration) monitor.Stats {
	s := monitor.Stats{Connections: 11, Opened: 10, BytesSent: 10 << 20, SegsOut: 10000, SegsIn: 5000,
		ConnectOK: 10, BusyTime: 10 * time.Second, MinRTT: rtt,
		RTT: flow.NewHistogram(flow.RTTBuckets), Handshake: flow.NewHistogram(flow.HandshakeBuckets)}
	for range 10 {
		s.Handshake.Observe(rtt.Seconds())
		s.RTT.Observe(rtt.Seconds())
	}
	return s
}

// mod is an impairment of one remote's stats.
type mod func(*monitor.Stats)

func loss(ratio float64) mod {
	return func(s *monitor.Stats) { s.Retransmits += uint64(ratio * float64(s.SegsOut)); s.RTOs += 1 }
}

func latency(d time.Duration) mod {
	return func(s *monitor.Stats) {
		rtt := s.MinRTT + d
		s.Handshake = flow.NewHistogram(flow.HandshakeBuckets)
		for range 10 {
			s.Handshake.Observe(rtt.Seconds())
		}
		s.RTT.Observe(rtt.Seconds())
	}
}

// synDrop: every connect retransmits its SYN and times out.
func synDrop(s *monitor.Stats) {
	s.SynRetransmits, s.Retransmits, s.ConnectOK, s.ConnectTimeout = 30, s.Retransmits+30, 0, 5
	s.Handshake = flow.NewHistogram(flow.HandshakeBuckets)
}

func refused(s *monitor.Stats) {
	s.ConnectOK, s.ConnectRefused, s.SegsOut, s.Connections = 0, 10, 0, 10
}

func peerNotReading(s *monitor.Stats) {
	s.RwndLimited, s.ZeroWindowReceived, s.SegsOut = 9*time.Second, 8, 300
}

func localNotReading(s *monitor.Stats) { s.ZeroWindowSent, s.RecvQueueMax = 9, 6<<20 }

// reorder: jitter that reorders: retransmissions the peer reports as
// duplicates (DSACK), smoothed RTT inflated, min RTT unchanged.
func reorder(s *monitor.Stats) {
	s.Retransmits += 400
	s.DSACKDups += 395
	for range 10 {
		s.RTT.Observe(0.030)
	}
}

// lab returns the windows of the three monitors at now, each remote
// impaired by its mods.
func lab(now time.Time, mods map[netip.Addr][]mod) []monitor.Window {
	rs := map[netip.Addr]monitor.Remote{}
	for _, a := range []netip.Addr{a1, a2, b1, b2} {
		s := bulk(300 * time.Microsecond)
		if a == b1 || a == b2 {
			s = bulk(500 * time.Microsecond)
		}
		for _, m := range mods[a] {
			m(&s)
		}
		rs[a] = monitor.Remote{Addr: a, Port: 5201, Place: place(a), Stats: s}
	}
	mk := func(name string, addrs ...netip.Addr) monitor.Window {
		w := monitor.Window{Name: name, Start: now.Add(-10 * time.Second), End: now}
		w.Totals.RTT, w.Totals.Handshake = flow.NewHistogram(flow.RTTBuckets), flow.NewHistogram(flow.HandshakeBuckets)
		for _, a := range addrs {
			w.Remotes = append(w.Remotes, rs[a])
			addStats(&w.Totals, rs[a].Stats)
		}
		return w
	}
	return []monitor.Window{mk("all", a1, a2, b1, b2), mk("to-a", a1, a2), mk("to-b", b1, b2)}
}

func addStats(t *monitor.Stats, s monitor.Stats) {
	t.Connections += s.Connections
	t.Opened += s.Opened
	t.BytesSent += s.BytesSent
	t.BytesReceived += s.BytesReceived
	t.SegsOut += s.SegsOut
	t.SegsIn += s.SegsIn
	t.Retransmits += s.Retransmits
	t.SynRetransmits += s.SynRetransmits
	t.RTOs += s.RTOs
	t.DSACKDups += s.DSACKDups
	t.ConnectOK += s.ConnectOK
	t.ConnectRefused += s.ConnectRefused
	t.ConnectTimeout += s.ConnectTimeout
	t.ConnectReset += s.ConnectReset
	t.EstablishedResets += s.EstablishedResets
	t.BusyTime += s.BusyTime
	t.RwndLimited += s.RwndLimited
	t.SndbufLimited += s.SndbufLimited
	t.ZeroWindowSent += s.ZeroWindowSent
	t.ZeroWindowReceived += s.ZeroWindowReceived
	t.RecvQueueMax = max(t.RecvQueueMax, s.RecvQueueMax)
	t.RTT.Merge(&s.RTT)
	t.Handshake.Merge(&s.Handshake)
	if s.MinRTT > 0 && (t.MinRTT == 0 || s.MinRTT < t.MinRTT) {
		t.MinRTT = s.MinRTT
	}
}

// hostAt is the cumulative host reading after i seconds, bad seconds of
// which had the impairment's per-second host counter growth.
type hostGrowth func(h *Host, badSeconds uint64)

func hostAt(now time.Time, bad uint64, g hostGrowth) Host {
	h := Host{At: now,
		Conntrack: &Conntrack{Entries: 200, Limit: 262144},
		NICs:      []NIC{{Name: "eth0", Exceeded: map[string]uint64{"bw_in_allowance_exceeded": 0, "bw_out_allowance_exceeded": 0, "pps_allowance_exceeded": 0}}},
		Netstat:   map[string]uint64{"ListenOverflows": 0, "TCPToZeroWindowAdv": 0, "TCPDSACKRecv": 0},
		Drops:     map[string]uint64{"NETFILTER_DROP": 0, "NO_SOCKET": 40, "TCP_OLD_DATA": 3},
	}
	if g != nil {
		g(&h, bad)
	}
	return h
}

type want struct {
	verdict Verdict
	culprit string // substring of culprit
	scope   string
}

func TestScenarios(t *testing.T) {
	for _, tc := range []struct {
		name string
		mods map[netip.Addr][]mod
		host hostGrowth
		want map[string]want
	}{
		{name: "1 healthy", want: map[string]want{"all": {verdict: Healthy}, "to-a": {verdict: Healthy}, "to-b": {verdict: Healthy}}},
		{name: "2 loss on every path", mods: map[netip.Addr][]mod{a1: {loss(0.03)}, a2: {loss(0.03)}, b1: {loss(0.03)}, b2: {loss(0.03)}},
			want: map[string]want{"all": {verdict: PathDegraded, scope: "all"}, "to-a": {verdict: PathDegraded, scope: "zone:zone-a"}, "to-b": {verdict: PathDegraded, scope: "zone:zone-b"}}},
		{name: "3 loss toward one server", mods: map[netip.Addr][]mod{b1: {loss(0.05)}},
			want: map[string]want{"all": {verdict: RemoteDegraded, culprit: "10.2.0.2:5201"}, "to-b": {verdict: RemoteDegraded, culprit: "10.2.0.2:5201"}, "to-a": {verdict: Healthy}}},
		{name: "4 latency toward zone-b", mods: map[netip.Addr][]mod{b1: {latency(20 * time.Millisecond)}, b2: {latency(20 * time.Millisecond)}},
			want: map[string]want{"all": {verdict: PathDegraded, scope: "zone:zone-b"}, "to-b": {verdict: PathDegraded, scope: "zone:zone-b"}, "to-a": {verdict: Healthy}}},
		{name: "5 SYNs to one server dropped", mods: map[netip.Addr][]mod{a2: {synDrop}},
			want: map[string]want{"all": {verdict: RemoteDegraded, culprit: "10.1.0.3"}, "to-a": {verdict: RemoteDegraded, culprit: "10.1.0.3"}, "to-b": {verdict: Healthy}}},
		{name: "6 no listener", mods: map[netip.Addr][]mod{b2: {refused}},
			want: map[string]want{"all": {verdict: RemoteApplication, culprit: "10.2.0.3"}, "to-b": {verdict: RemoteApplication, culprit: "10.2.0.3"}, "to-a": {verdict: Healthy}}},
		{name: "7 server does not read", mods: map[netip.Addr][]mod{a1: {peerNotReading}},
			want: map[string]want{"all": {verdict: RemoteApplication, culprit: "10.1.0.2"}, "to-a": {verdict: RemoteApplication, culprit: "10.1.0.2"}, "to-b": {verdict: Healthy}}},
		{name: "8 client reads slowly", mods: map[netip.Addr][]mod{b1: {localNotReading}},
			host: func(h *Host, n uint64) { h.Netstat["TCPToZeroWindowAdv"] += 9 * n },
			want: map[string]want{"all": {verdict: LocalApplication, culprit: "10.2.0.2"}, "to-b": {verdict: LocalApplication, culprit: "10.2.0.2"}, "to-a": {verdict: Healthy}}},
		{name: "9 client firewall drops", mods: map[netip.Addr][]mod{a1: {loss(0.03)}, a2: {loss(0.03)}, b1: {loss(0.03)}, b2: {loss(0.03)}},
			host: func(h *Host, n uint64) { h.Drops["NETFILTER_DROP"] += 120 * n },
			want: map[string]want{"all": {verdict: HostStack, culprit: "NETFILTER_DROP"}, "to-a": {verdict: HostStack}, "to-b": {verdict: HostStack}}},
		{name: "10 conntrack full", mods: map[netip.Addr][]mod{a1: {synDrop}, a2: {synDrop}, b1: {synDrop}, b2: {synDrop}},
			host: func(h *Host, n uint64) {
				if n > 0 {
					h.Conntrack.Entries, h.Conntrack.Limit = 200, 200
				}
				h.Conntrack.Drop += 12 * n
			},
			want: map[string]want{"all": {verdict: HostConntrack, culprit: "conntrack"}, "to-a": {verdict: HostConntrack}, "to-b": {verdict: HostConntrack}}},
		{name: "11 local listener overflows",
			host: func(h *Host, n uint64) {
				h.Netstat["ListenOverflows"] += 20 * n
				if n > 0 {
					h.Listeners = []Listener{{Addr: netip.MustParseAddrPort("10.1.0.1:7000"), Queue: 2, Backlog: 1}}
				}
			},
			want: map[string]want{"all": {verdict: LocalApplication, culprit: "10.1.0.1:7000"}, "to-a": {verdict: Healthy}, "to-b": {verdict: Healthy}}},
		{name: "12 ENA bw_out allowance exceeded with retransmissions", mods: map[netip.Addr][]mod{a1: {loss(0.02)}, a2: {loss(0.02)}, b1: {loss(0.02)}, b2: {loss(0.02)}},
			host: func(h *Host, n uint64) { h.NICs[0].Exceeded["bw_out_allowance_exceeded"] += 37 * n },
			want: map[string]want{"all": {verdict: CloudNICLimit, culprit: "eth0 (bw_out_allowance_exceeded)"}, "to-a": {verdict: CloudNICLimit}, "to-b": {verdict: CloudNICLimit}}},
		{name: "13 jitter reorders without loss", mods: map[netip.Addr][]mod{a1: {reorder}, a2: {reorder}, b1: {reorder}, b2: {reorder}},
			host: func(h *Host, n uint64) { h.Netstat["TCPDSACKRecv"] += 40 * n },
			want: map[string]want{"all": {verdict: Healthy}, "to-a": {verdict: Healthy}, "to-b": {verdict: Healthy}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := New(DefaultConfig())
			now := t0
			var bad uint64
			eval := func(mods map[netip.Addr][]mod) Report {
				now = now.Add(time.Second)
				if mods != nil {
					bad++
				}
				return e.Evaluate(now, lab(now, mods), hostAt(now, bad, tc.host))
			}
			// A healthy baseline: healthy from the first evaluation
			// with traffic, nothing else.
			for i := range 40 {
				if r := eval(nil); r.Verdict != Healthy {
					t.Fatalf("baseline evaluation %d: %s (%+v)", i, r.Verdict, r.Monitors)
				}
			}
			impaired := tc.mods
			if impaired == nil {
				impaired = map[netip.Addr][]mod{}
			}
			// Entering takes two evaluations (the first window already
			// shows the impairment in the fixture).
			r := eval(impaired)
			for _, m := range r.Monitors {
				if m.Verdict.Degraded() {
					t.Fatalf("%s degraded after one evaluation: %s", m.Name, m.Verdict)
				}
			}
			for range 4 {
				r = eval(impaired)
			}
			for name, w := range tc.want {
				m, ok := r.Monitor(name)
				if !ok {
					t.Fatalf("no monitor %s", name)
				}
				if m.Verdict != w.verdict {
					t.Errorf("%s: verdict %s, want %s (summary %q, findings %+v)", name, m.Verdict, w.verdict, m.Summary, m.Findings)
					continue
				}
				if !strings.Contains(m.Culprit, w.culprit) {
					t.Errorf("%s: culprit %q, want it to name %q", name, m.Culprit, w.culprit)
				}
				if m.Scope != w.scope {
					t.Errorf("%s: scope %q, want %q", name, m.Scope, w.scope)
				}
				if m.Summary == "" || m.Evidence == nil || m.Confidence == "" {
					t.Errorf("%s: empty summary, evidence or confidence: %+v", name, m)
				}
			}
			// Removal: the windows clear at once in the fixture (the lab
			// keeps them ten more seconds); LeaveAfter healthy evaluations
			// bring healthy back, never fewer.
			// Host counters stay in the window's delta for a window
			// (10 s) after they stop growing.
			for i := range 16 {
				r = eval(nil)
				if i < 4 {
					for _, m := range r.Monitors {
						if w := tc.want[m.Name]; w.verdict.Degraded() && m.Verdict != w.verdict {
							t.Errorf("%s left %s after %d healthy evaluations (LeaveAfter 5)", m.Name, w.verdict, i+1)
						}
					}
				}
			}
			for _, m := range r.Monitors {
				if m.Verdict != Healthy {
					t.Errorf("%s: %s after the impairment ended, want healthy (%s)", m.Name, m.Verdict, m.Summary)
				}
			}
		})
	}
}
