package probe

import (
	"bytes"
	"context"
	"github.com/netsight/netsight/collector"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/netsight/netsight/internal/metrictest"
	"github.com/netsight/netsight/internal/testlab"
)

func gather(t *testing.T, c *Collector) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrictest.AsPrometheus(c))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return out, buf.String()
}

// value returns the value of the series of family name whose labels
// include want, and whether it exists.
func value(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

type hostsResolver struct {
	mu sync.Mutex
	m  map[string]netip.Addr
}

func (h *hostsResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if a, ok := h.m[host]; ok && (network == "ip" || (network == "ip4") == a.Is4()) {
		return []netip.Addr{a}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// TestCollectorLoopback runs the collector over loopback TCP (no root): an
// open port, a closed port and a name that never resolves, with 1 s
// periods, and checks the exported series.
func TestCollectorLoopback(t *testing.T) {
	port := int((*testlab.NetNS)(nil).StartSinkServer(t, "127.0.0.1:0").Addr().Port())
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	cfg := DefaultConfig()
	cfg.Period = time.Second
	cfg.Targets = []Target{
		{Name: "open", Address: "svc.lab", Protocol: "tcp", Port: port, Interval: 50 * time.Millisecond, Timeout: 500 * time.Millisecond, Labels: map[string]string{"site": "lab"}},
		{Name: "closed", Address: "127.0.0.1", Protocol: "tcp", Port: closedPort, Interval: 50 * time.Millisecond, Timeout: 500 * time.Millisecond},
		{Name: "nxdomain", Address: "nx.lab", Protocol: "tcp", Port: port, Interval: 50 * time.Millisecond, Timeout: 500 * time.Millisecond},
	}
	res := &hostsResolver{m: map[string]netip.Addr{"svc.lab": netip.MustParseAddr("127.0.0.1")}}
	c, err := newCollector(cfg, collector.Deps{}, options{Resolver: res})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	// Wait until a full 1 s period plus its grace (timeout + 1 s) closed.
	deadline := time.Now().Add(10 * time.Second)
	var mfs map[string]*dto.MetricFamily
	var text string
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		mfs, text = gather(t, c)
		if _, ok := value(mfs, "netsight_probe_period_loss_ratio", map[string]string{"target": "nxdomain"}); ok {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name   string
		labels map[string]string
		check  func(v float64, ok bool) bool
		what   string
	}{
		{"netsight_probe_period_loss_ratio", map[string]string{"target": "open", "site": "lab"}, func(v float64, ok bool) bool { return ok && v == 0 }, "open port: loss 0"},
		{"netsight_probe_period_rtt_avg_seconds", map[string]string{"target": "open"}, func(v float64, ok bool) bool { return ok && v > 0 && v < 0.1 }, "open port: RTT"},
		{"netsight_probe_results_total", map[string]string{"target": "open", "outcome": "ok"}, func(v float64, ok bool) bool { return ok && v > 10 }, "open port: ok results"},
		{"netsight_probe_results_total", map[string]string{"target": "closed", "outcome": "refused"}, func(v float64, ok bool) bool { return ok && v > 10 }, "closed port: refused"},
		{"netsight_probe_results_total", map[string]string{"target": "closed", "outcome": "ok"}, func(v float64, ok bool) bool { return ok && v == 0 }, "closed port: never ok"},
		{"netsight_probe_period_loss_ratio", map[string]string{"target": "nxdomain"}, func(v float64, ok bool) bool { return ok && v == 1 }, "unresolvable: loss 1"},
		{"netsight_probe_period_rtt_avg_seconds", map[string]string{"target": "nxdomain"}, func(_ float64, ok bool) bool { return !ok }, "unresolvable: no RTT series (never 0)"},
		{"netsight_probe_period_rtt_min_seconds", map[string]string{"target": "nxdomain"}, func(_ float64, ok bool) bool { return !ok }, "unresolvable: no RTT min"},
		{"netsight_probe_resolve_errors_total", map[string]string{"target": "nxdomain"}, func(v float64, ok bool) bool { return ok && v >= 1 }, "resolve errors counted"},
		{"netsight_probe_rtt_seconds", map[string]string{"target": "open"}, func(v float64, ok bool) bool { return ok && v > 10 }, "RTT histogram"},
		{"netsight_probe_target_info", map[string]string{"target": "open", "address": "127.0.0.1"}, func(v float64, ok bool) bool { return ok && v == 1 }, "info with resolved address"},
	}
	for _, ck := range checks {
		v, ok := value(mfs, ck.name, ck.labels)
		if !ck.check(v, ok) {
			t.Errorf("%s: %s%v = %v (present %v)", ck.what, ck.name, ck.labels, v, ok)
		}
	}
	// The histogram carries native buckets next to the classic ones.
	if h := mfs["netsight_probe_rtt_seconds"]; h == nil || h.Metric[0].Histogram.GetSchema() == 0 && len(h.Metric[0].Histogram.PositiveSpan) == 0 {
		t.Error("netsight_probe_rtt_seconds has no native histogram buckets")
	}
	if t.Failed() {
		t.Log(text)
	}
	promtoolCheck(t, text)
}

func promtoolCheck(t *testing.T, text string) {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		testlab.RequireBinary(t, "promtool")
		return
	}
	cmd := exec.Command(p, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestCollectorLabICMP runs ICMP targets from a lab namespace: a live
// address and a dead one. The dead one must be loss 1 with no RTT.
func TestCollectorLabICMP(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test: skipped with -short")
	}
	testlab.RequireRoot(t)
	sub := testlab.RandomSubnetBits(24)
	pair := testlab.NewPair(t, testlab.WithSubnet(sub))
	dead, err := sub.Host4(99) // in the client's subnet, but nobody has it
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Period = time.Second
	cfg.Targets = []Target{
		{Name: "live", Address: pair.Link.B.Addr4().String(), Interval: 20 * time.Millisecond, Timeout: 300 * time.Millisecond},
		{Name: "dead", Address: dead.Addr().String(), Interval: 20 * time.Millisecond, Timeout: 300 * time.Millisecond},
	}
	col, err := newCollector(cfg, collector.Deps{}, options{Socket: pair.A.Socket})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- col.Run(ctx) }()
	var mfs map[string]*dto.MetricFamily
	var text string
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
		time.Sleep(200 * time.Millisecond)
		mfs, text = gather(t, col)
		if _, ok := value(mfs, "netsight_probe_period_loss_ratio", map[string]string{"target": "dead"}); ok {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v, ok := value(mfs, "netsight_probe_period_loss_ratio", map[string]string{"target": "dead"}); !ok || v != 1 {
		t.Errorf("dead: loss %v present %v, want 1", v, ok)
	}
	if _, ok := value(mfs, "netsight_probe_period_rtt_avg_seconds", map[string]string{"target": "dead"}); ok {
		t.Error("dead: RTT series present")
	}
	if v, ok := value(mfs, "netsight_probe_period_loss_ratio", map[string]string{"target": "live"}); !ok || v != 0 {
		t.Errorf("live: loss %v present %v, want 0", v, ok)
	}
	// ~50 packets in a 1 s period at 20 ms; fewer if the scheduler was
	// starved on a loaded machine (it skips rather than bursts).
	skipped, _ := value(mfs, "netsight_probe_skipped_total", nil)
	if v, ok := value(mfs, "netsight_probe_period_packets_sent", map[string]string{"target": "live"}); !ok || v < 10 || v > 55 {
		t.Errorf("live: %v packets in a 1 s period at 20 ms, want ~50 (skipped %v)", v, skipped)
	}
	if _, ok := value(mfs, "netsight_probe_icmp_socket_info", map[string]string{"family": "ipv4", "mode": "raw"}); !ok {
		t.Error("no raw ipv4 socket reported (ping_group_range is \"1 0\" in a new namespace)")
	}
	if t.Failed() {
		t.Log(text)
	}
	promtoolCheck(t, text)
}
