package nic

import (
	"flag"
	"fmt"
	"github.com/netsight/netsight/collector"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/netsight/netsight/internal/kernel"
	"github.com/netsight/netsight/internal/metrictest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fixtureSource is a kernel.NICSource backed by `ethtool -S` listings in
// testdata; each interface advances through its list of files one update at
// a time (the last one repeats).
type fixtureSource struct {
	files   map[string][]string
	drivers map[string]string
	step    map[string]int
}

func (f *fixtureSource) Interfaces() ([]string, error) {
	var out []string
	for k := range f.files {
		out = append(out, k)
	}
	return append(out, "lo"), nil
}

func (f *fixtureSource) Driver(iface string) (string, error) { return f.drivers[iface], nil }

func (f *fixtureSource) Stats(iface string) ([]kernel.NICStat, error) {
	files, ok := f.files[iface]
	if !ok {
		return nil, fmt.Errorf("ethtool -S %s: %w", iface, kernel.ErrNoNICStats)
	}
	i := min(f.step[iface], len(files)-1)
	f.step[iface]++
	b, err := os.ReadFile(filepath.Join("testdata", files[i]))
	if err != nil {
		return nil, err
	}
	return kernel.ParseEthtoolStats(b)
}

func (f *fixtureSource) Close() error { return nil }

func newFixture(t *testing.T, cfg *Config, files map[string][]string, drivers map[string]string) *Collector {
	t.Helper()
	src := &fixtureSource{files: files, drivers: drivers, step: map[string]int{}}
	clock := time.Unix(1e9, 0)
	deps := collector.Deps{Now: func() time.Time { clock = clock.Add(15 * time.Second); return clock }}
	c, err := NewWithSource(cfg, deps, func() (kernel.NICSource, error) { return src, nil })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestENAAllowances(t *testing.T) {
	c := newFixture(t, DefaultConfig(), map[string][]string{
		"ens5": {"ena_ens5.txt", "ena_ens5_later.txt", "ena_ens5_after_reset.txt"},
		"ens6": {"ena_ens6_old_driver.txt"},
	}, map[string]string{"ens5": "ena", "ens6": "ena"})

	steps := []struct {
		name string
		want map[string]float64
	}{
		{"first read", map[string]float64{
			`netsight_nic_bw_in_allowance_exceeded_total{device="ens5"}`:        1840,
			`netsight_nic_bw_out_allowance_exceeded_total{device="ens5"}`:       97,
			`netsight_nic_pps_allowance_exceeded_total{device="ens5"}`:          4,
			`netsight_nic_conntrack_allowance_exceeded_total{device="ens5"}`:    12,
			`netsight_nic_linklocal_allowance_exceeded_total{device="ens5"}`:    3,
			`netsight_nic_conntrack_allowance_available{device="ens5"}`:         307829,
			`netsight_nic_conntrack_allowance_exceeded_total{device="ens6"}`:    0,
			`netsight_nic_driver_resets_total{device="ens5"}`:                   0,
			`netsight_nic_stat{device="ens5",stat="ena_admin_q_submitted_cmd"}`: 56,
			`netsight_nic_stat{device="ens5",stat="interface_up"}`:              1,
			`netsight_nic_info{device="ens5",driver="ena"}`:                     1,
		}},
		{"later", map[string]float64{
			`netsight_nic_bw_in_allowance_exceeded_total{device="ens5"}`:     1900,
			`netsight_nic_pps_allowance_exceeded_total{device="ens5"}`:       9,
			`netsight_nic_conntrack_allowance_exceeded_total{device="ens5"}`: 20,
			`netsight_nic_conntrack_allowance_available{device="ens5"}`:      301220,
		}},
		{"after driver reset: totals keep growing", map[string]float64{
			`netsight_nic_bw_in_allowance_exceeded_total{device="ens5"}`:     1905,
			`netsight_nic_bw_out_allowance_exceeded_total{device="ens5"}`:    97,
			`netsight_nic_pps_allowance_exceeded_total{device="ens5"}`:       10,
			`netsight_nic_conntrack_allowance_exceeded_total{device="ens5"}`: 22,
			`netsight_nic_linklocal_allowance_exceeded_total{device="ens5"}`: 3,
			`netsight_nic_conntrack_allowance_available{device="ens5"}`:      318002,
			`netsight_nic_driver_resets_total{device="ens5"}`:                1,
			`netsight_nic_stat{device="ens5",stat="wd_expired"}`:             1,
		}},
	}
	for _, s := range steps {
		got := metrictest.MustGather(t, c)
		for k, v := range s.want {
			if g, ok := got[k]; !ok || math.Abs(g-v) > 1e-9 {
				t.Errorf("%s: %s = %v (present %v), want %v", s.name, k, g, ok, v)
			}
		}
		for k := range got {
			if strings.Contains(k, "queue") {
				t.Errorf("%s: per-queue series %s exported with per_queue off", s.name, k)
			}
			if strings.Contains(k, `device="lo"`) {
				t.Errorf("lo exported: %s", k)
			}
		}
		if _, ok := got[`netsight_nic_conntrack_allowance_available{device="ens6"}`]; ok {
			t.Errorf("%s: ens6 (old driver) has no conntrack_allowance_available but got a series", s.name)
		}
	}
}

func TestPerQueueAndGolden(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PerQueue = true
	c := newFixture(t, cfg, map[string][]string{"ens5": {"ena_ens5.txt"}, "veth0": {"veth.txt"}},
		map[string]string{"ens5": "ena", "veth0": "veth"})
	got := metrictest.MustGather(t, c)
	for k, v := range map[string]float64{
		`netsight_nic_queue_stat{device="ens5",queue="1",stat="tx_cnt"}`:          139741500,
		`netsight_nic_queue_stat{device="ens5",queue="0",stat="rx_csum_good"}`:    15923815,
		`netsight_nic_queue_stat{device="veth0",queue="0",stat="rx_xdp_packets"}`: 0,
		`netsight_nic_queue_stat{device="veth0",queue="0",stat="tx_xdp_xmit"}`:    0,
		`netsight_nic_stat{device="veth0",stat="peer_ifindex"}`:                   2,
	} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	var lines []string
	for k, v := range got {
		lines = append(lines, fmt.Sprintf("%s %g", k, v))
	}
	sort.Strings(lines)
	golden(t, "golden_per_queue.txt", strings.Join(lines, "\n")+"\n")
}

func TestMaxStatsPerDevice(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxStatsPerDevice = 5
	c := newFixture(t, cfg, map[string][]string{"ens5": {"ena_ens5.txt"}}, nil)
	got := metrictest.MustGather(t, c)
	n := 0
	for k := range got {
		if strings.HasPrefix(k, "netsight_nic_stat{") {
			n++
		}
	}
	// ena_ens5.txt has 12 device-wide generic statistics (7 global + 5 admin queue).
	if n != 5 || got[`netsight_nic_stats_truncated{device="ens5"}`] != 7 {
		t.Errorf("generic series = %d, truncated = %v; want 5 and 7", n, got[`netsight_nic_stats_truncated{device="ens5"}`])
	}
	// Typed allowance series are never truncated.
	if _, ok := got[`netsight_nic_pps_allowance_exceeded_total{device="ens5"}`]; !ok {
		t.Error("typed allowance counter truncated")
	}
}

func TestSplitQueue(t *testing.T) {
	for _, tc := range []struct{ in, q, stat string }{
		{"queue_12_rx_bytes", "12", "rx_bytes"},
		{"rx_queue_0_xdp_packets", "0", "rx_xdp_packets"},
		{"tx_queue_3_bytes", "3", "tx_bytes"},
		{"rx3_packets", "3", "rx_packets"},
		{"tx-7.bytes", "7", "tx_bytes"},
		{"peer_ifindex", "", "peer_ifindex"},
		{"rx_bytes", "", "rx_bytes"},
		{"ena_admin_q_aborted_cmd", "", "ena_admin_q_aborted_cmd"},
	} {
		q, stat, ok := splitQueue(tc.in)
		if q != tc.q || stat != tc.stat || ok != (tc.q != "") {
			t.Errorf("splitQueue(%q) = %q, %q, %v; want %q, %q", tc.in, q, stat, ok, tc.q, tc.stat)
		}
	}
}

func TestResetSafe(t *testing.T) {
	for _, tc := range []struct {
		name   string
		raw    []uint64
		totals []uint64
		resets int
	}{
		{"monotonic", []uint64{5, 7, 7, 10}, []uint64{5, 7, 7, 10}, 0},
		{"reset to zero", []uint64{100, 120, 0, 3}, []uint64{100, 120, 120, 123}, 1},
		{"reset and climbed", []uint64{100, 4, 9}, []uint64{100, 104, 109}, 1},
		{"two resets", []uint64{10, 2, 1, 5}, []uint64{10, 12, 13, 17}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r resetSafe
			resets := 0
			for i, v := range tc.raw {
				if r.observe(v) {
					resets++
				}
				if r.total != tc.totals[i] {
					t.Fatalf("after %v: total %d, want %d", tc.raw[:i+1], r.total, tc.totals[i])
				}
			}
			if resets != tc.resets {
				t.Errorf("resets = %d, want %d", resets, tc.resets)
			}
		})
	}
}

func TestNeverPollsFasterThanOncePerSecond(t *testing.T) {
	src := &fixtureSource{files: map[string][]string{"ens5": {"ena_ens5.txt", "ena_ens5_later.txt"}}, step: map[string]int{}}
	clock := time.Unix(1e9, 0)
	deps := collector.Deps{Now: func() time.Time { return clock }}
	c, err := NewWithSource(DefaultConfig(), deps, func() (kernel.NICSource, error) { return src, nil })
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		metrictest.MustGather(t, c)
		clock = clock.Add(100 * time.Millisecond)
	}
	if src.step["ens5"] != 1 {
		t.Errorf("driver read %d times within 0.5s, want 1", src.step["ens5"])
	}
	clock = clock.Add(time.Second)
	got := metrictest.MustGather(t, c)
	if src.step["ens5"] != 2 || got[`netsight_nic_pps_allowance_exceeded_total{device="ens5"}`] != 9 {
		t.Errorf("after 1s: reads %d, pps %v; want 2 reads and the later value 9", src.step["ens5"], got[`netsight_nic_pps_allowance_exceeded_total{device="ens5"}`])
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"too fast", func(c *Config) { c.Interval = 500e6 }, "interval: must be at least 1s"},
		{"bad include", func(c *Config) { c.Include = "(" }, "include: invalid regular expression"},
		{"bad max", func(c *Config) { c.MaxStatsPerDevice = 0 }, "max_stats_per_device: must be at least 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestAllowanceAvailableSums checks the monitor's read interface: the sum
// over the interfaces that report conntrack_allowance_available (ens6's
// old driver does not), none before the first read.
func TestAllowanceAvailableSums(t *testing.T) {
	c := newFixture(t, DefaultConfig(), map[string][]string{
		"ens5": {"ena_ens5.txt"},
		"ens6": {"ena_ens6_old_driver.txt"},
	}, nil)
	if v, ok := c.ConntrackAllowanceAvailable(); ok {
		t.Errorf("before the first read: %d, true; want not ok", v)
	}
	metrictest.MustGather(t, c)
	if v, ok := c.ConntrackAllowanceAvailable(); !ok || v != 307829 {
		t.Errorf("ConntrackAllowanceAvailable() = %d, %v; want 307829, true", v, ok)
	}
	c2 := newFixture(t, DefaultConfig(), map[string][]string{"ens6": {"ena_ens6_old_driver.txt"}}, nil)
	metrictest.MustGather(t, c2)
	if v, ok := c2.ConntrackAllowanceAvailable(); ok {
		t.Errorf("old driver only: %d, true; want not ok", v)
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from output; run with -update after checking.\ngot:\n%s", p, got)
	}
}

func TestAllowanceExceededReader(t *testing.T) {
	c := newFixture(t, DefaultConfig(), map[string][]string{
		"ens5": {"ena_ens5.txt", "ena_ens5_later.txt"},
		"ens6": {"ena_ens6_old_driver.txt"},
	}, nil)
	if got := c.AllowanceExceeded(); got != nil {
		t.Errorf("before the first read: %v", got)
	}
	metrictest.MustGather(t, c)
	first := c.AllowanceExceeded()
	if first["ens5"]["bw_out_allowance_exceeded"] != 97 || first["ens5"]["bw_in_allowance_exceeded"] != 1840 {
		t.Errorf("first read: %v", first)
	}
	first["ens5"]["bw_in_allowance_exceeded"] = 0 // a copy: the collector keeps its own
	metrictest.MustGather(t, c)
	if got := c.AllowanceExceeded()["ens5"]["bw_in_allowance_exceeded"]; got != 1900 {
		t.Errorf("later read: bw_in %d, want 1900", got)
	}
}
