package collectd_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/export/collectd"
	"github.com/netsight/netsight/export/delivery"
	"github.com/netsight/netsight/internal/receiver"
)

func TestIdentify(t *testing.T) {
	for _, tc := range []struct {
		ls   labels.Labels
		want string
		kind collectd.Kind
	}{
		{labels.FromStrings("__name__", "netsight_nftables_ct_packets_total", "family", "ipv4", "protocol", "tcp", "hook", "forward", "state", "new"),
			"nftables-netsight/packets-tcp_conntrack_fwd_new", collectd.Derive},
		{labels.FromStrings("__name__", "netsight_nftables_ct_packets_total", "family", "ipv6", "protocol", "udp", "hook", "input", "state", "invalid"),
			"nftables-netsight/packets-udp6_conntrack_input_invalid", collectd.Derive},
		{labels.FromStrings("__name__", "netsight_nftables_ct_bytes_total", "family", "ipv4", "protocol", "udp", "hook", "output", "state", "established"),
			"nftables-netsight/bytes-udp_conntrack_output_established", collectd.Gauge},
		{labels.FromStrings("__name__", "netsight_conntrack_entries"), "netsight-conntrack_entries/gauge-", collectd.Gauge},
		{labels.FromStrings("__name__", "netsight_nic_rx_bytes_total", "device", "eth0"), "netsight-nic_rx_bytes_total/derive-eth0", collectd.Derive},
		{labels.FromStrings("__name__", "process_cpu_seconds_total"), "netsight-process_cpu_seconds_total/gauge-", collectd.Gauge},
		{labels.FromStrings("__name__", "netsight_x", "a", "with/slash", "b", `q"uote`), `netsight-x/gauge-with_slash,q_uote`, collectd.Gauge},
	} {
		id := collectd.Identify(tc.ls)
		got := id.Plugin + "-" + id.PluginInstance + "/" + id.Type + "-" + id.TypeInstance
		if got != tc.want || id.Kind != tc.kind {
			t.Errorf("Identify(%s) = %s kind %v, want %s kind %v", tc.ls, got, id.Kind, tc.want, tc.kind)
		}
	}
	long := collectd.Identify(labels.FromStrings("__name__", "netsight_x", "a", string(make([]byte, 300))))
	if len(long.TypeInstance) > collectd.MaxNameLen {
		t.Errorf("type instance of %d bytes", len(long.TypeInstance))
	}
}

// relay forwards UDP datagrams to dst and records their sizes.
type relay struct {
	conn  *net.UDPConn
	mu    sync.Mutex
	sizes []int
}

func newRelay(t *testing.T, dst string) *relay {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	to, err := net.ResolveUDPAddr("udp", dst)
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{conn: c}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.sizes = append(r.sizes, n)
			r.mu.Unlock()
			_, _ = c.WriteToUDP(buf[:n], to)
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return r
}

// TestCollectdNetworkSign: samples sent with SecurityLevel Sign to a real
// collectd (network plugin on 127.0.0.1, csv plugin) land in its csv files
// with the values and timestamps sent; no packet exceeds 1452 bytes.
func TestCollectdNetworkSign(t *testing.T) {
	if testing.Short() {
		t.Skip("starts collectd")
	}
	cd := receiver.Collectd(t, receiver.CollectdOptions{SecurityLevel: "Sign", Username: "netsight", Password: "s3cret pass"})
	r := newRelay(t, cd.Addr)
	var series []labels.Labels
	for _, p := range []string{"tcp", "udp"} {
		for _, h := range []string{"input", "output", "forward"} {
			for _, st := range []string{"new", "established", "invalid"} {
				series = append(series, labels.FromStrings("__name__", "netsight_nftables_ct_packets_total",
					"family", "ipv4", "protocol", p, "hook", h, "state", st))
			}
		}
	}
	for i := 0; i < 6; i++ {
		series = append(series, labels.FromStrings("__name__", "netsight_lab_gauge", "i", strconv.Itoa(i), "scope", "two words,x=y"))
	}
	s := receiver.NewStore(t, series, func(i int, ts int64) float64 {
		if i < 18 {
			return float64(ts / 1000 % 100000 * int64(i+1)) // counters: integers
		}
		return float64(ts%100000)/8 - float64(i) // gauges: exact in %lf
	})
	now := time.Now().Truncate(time.Second)
	from, to := now.Add(-30*time.Second).UnixMilli(), now.UnixMilli()
	for ts := from; ts <= to; ts += 1000 {
		s.Add(t, ts)
	}
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cret pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := config.Output{Name: "cd", Type: "collectd", Address: r.conn.LocalAddr().String(), SecurityLevel: "sign",
		Username: "netsight", PasswordFile: pw}.WithDefaults(time.Second)
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	snd, err := collectd.NewSender(o)
	if err != nil {
		t.Fatal(err)
	}
	snd.SetHost("netsight-lab")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cd.cursor.json"), fmt.Appendf(nil, `{"acked_ms": %d}`, from-1), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := delivery.New(delivery.Options{Name: "cd", Dir: dir, Source: s, Sender: snd, Interval: time.Second, Lag: time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	upTo := d.Acked()
	want := map[string][]receiver.CSVPoint{}
	for k, v := range s.Local(t, ".*", from, upTo, nil, true) {
		ls, err := parseSeries(k.Series)
		if err != nil {
			t.Fatal(err)
		}
		id := collectd.Identify(ls)
		key := id.Plugin + "-" + id.PluginInstance + "/" + id.Type + "-" + id.TypeInstance
		want[key] = append(want[key], receiver.CSVPoint{T: k.T, V: v})
	}
	for _, pts := range want {
		sort.Slice(pts, func(i, j int) bool { return pts[i].T < pts[j].T })
	}
	var diff string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		got, err := cd.CSV("netsight-lab")
		if err != nil {
			t.Fatal(err)
		}
		if diff = compare(got, want); diff == "" {
			break
		}
	}
	if diff != "" {
		t.Fatalf("csv files differ from what was sent: %s\ncollectd log:\n%s", diff, cd.Logs())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	biggest := 0
	for _, n := range r.sizes {
		biggest = max(biggest, n)
	}
	if biggest > collectd.MaxPacket {
		t.Errorf("a packet of %d bytes > %d", biggest, collectd.MaxPacket)
	}
	if biggest < collectd.MaxPacket*3/4 {
		t.Errorf("largest packet %d bytes: values are not packed", biggest)
	}
	t.Logf("%d samples in %d packets (largest %d bytes)", countPts(want), len(r.sizes), biggest)
}

func countPts(m map[string][]receiver.CSVPoint) int {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	return n
}

func compare(got, want map[string][]receiver.CSVPoint) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d identifiers in csv, want %d", len(got), len(want))
	}
	var sum []string
	for id, w := range want {
		if len(got[id]) != len(w) {
			sum = append(sum, fmt.Sprintf("%s:%d/%d", id, len(got[id]), len(w)))
		}
	}
	if len(sum) > 0 {
		sort.Strings(sum)
		return fmt.Sprint(sum)
	}
	for id, w := range want {
		g := got[id]
		if len(g) != len(w) {
			return fmt.Sprintf("%s: %d rows, want %d", id, len(g), len(w))
		}
		for i := range w {
			if g[i] != w[i] {
				return fmt.Sprintf("%s row %d: got %+v want %+v", id, i, g[i], w[i])
			}
		}
	}
	return ""
}

func parseSeries(s string) (labels.Labels, error) {
	return parser.NewParser(parser.Options{}).ParseMetric(s)
}
