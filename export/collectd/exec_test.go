package collectd_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netsight/netsight/export/collectd"
)

func TestParseInterval(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"60": time.Minute, "60.000": time.Minute, "60,000": time.Minute, "0.5": 500 * time.Millisecond, "10,5": 10500 * time.Millisecond,
		"": collectd.DefaultExecInterval, "abc": collectd.DefaultExecInterval, "-1": collectd.DefaultExecInterval, "0": collectd.DefaultExecInterval,
	} {
		got, err := collectd.ParseInterval(in)
		if got != want {
			t.Errorf("ParseInterval(%q) = %v, want %v", in, got, want)
		}
		if (err != nil) != (want == collectd.DefaultExecInterval) {
			t.Errorf("ParseInterval(%q) error %v", in, err)
		}
	}
}

func TestHostname(t *testing.T) {
	t.Setenv("COLLECTD_HOSTNAME", "router.lan")
	if h := collectd.Hostname(); h != "router.lan" {
		t.Errorf("Hostname() = %q", h)
	}
}

// TestWritePutval: the seed 003 counters print exactly as the seed's
// script printed them (with netsight's table as plugin instance).
func TestWritePutval(t *testing.T) {
	reg := prometheus.NewRegistry()
	ct := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netsight_nftables_ct_packets_total"}, []string{"family", "protocol", "hook", "state"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "netsight_conntrack_entries"})
	reg.MustRegister(ct, g)
	ct.WithLabelValues("ipv4", "tcp", "forward", "new").Add(14243)
	ct.WithLabelValues("ipv4", "udp", "output", "invalid").Add(0)
	g.Set(12.5)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := collectd.WritePutval(&buf, mfs, "localhost", time.Minute)
	if err != nil || n != 3 {
		t.Fatalf("WritePutval = %d, %v", n, err)
	}
	want := `PUTVAL "localhost/netsight-conntrack_entries/gauge" interval=60.000 N:12.5
PUTVAL "localhost/nftables-netsight/packets-tcp_conntrack_fwd_new" interval=60.000 N:14243
PUTVAL "localhost/nftables-netsight/packets-udp_conntrack_output_invalid" interval=60.000 N:0
`
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if strings.Count(l, `"`) != 2 {
			t.Errorf("bad quoting: %s", l)
		}
	}
}
