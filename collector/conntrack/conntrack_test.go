package conntrack

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/internal/kernel"
	"github.com/netsight/netsight/internal/metrictest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestUpdateFromFixture(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxDumpEntries = 0 // no netlink in unit tests
	now := time.Unix(1e9, 0)
	c, err := New(cfg, collector.Deps{Paths: kernel.Paths{ProcFS: "testdata/proc"}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	got, err := metrictest.Gather(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for k, v := range got {
		lines = append(lines, fmt.Sprintf("%s %g", k, v))
	}
	sort.Strings(lines)
	golden(t, "golden_fixture.txt", strings.Join(lines, "\n")+"\n")
	for k, v := range map[string]float64{
		"netsight_conntrack_entries":              61234,
		"netsight_conntrack_entries_limit":        65536,
		"netsight_conntrack_drop_total":           0x12,
		"netsight_conntrack_insert_failed_total":  0x3 + 0x1 + 0xffffffff,
		"netsight_conntrack_search_restart_total": 0x2a,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if _, ok := got["netsight_conntrack_entries_total"]; ok {
		t.Error("the entries column of the per-CPU file must not become a counter")
	}
}

func TestNoConntrackIsNotSupported(t *testing.T) {
	cfg := DefaultConfig()
	c, err := New(cfg, collector.Deps{Paths: kernel.Paths{ProcFS: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = metrictest.Gather(context.Background(), c)
	if !errors.Is(err, collector.ErrNotSupported) || !strings.Contains(err.Error(), "nf_conntrack") {
		t.Errorf("err = %v, want ErrNotSupported naming nf_conntrack", err)
	}
}

func TestCPUStatsWrap(t *testing.T) {
	var acc CPUStats
	read := func(rows ...[]uint32) map[string]uint64 {
		tot, _ := acc.Observe(kernel.ConntrackCPUStats{Columns: []string{"entries", "drop"}, Rows: rows})
		return tot
	}
	steps := []struct {
		rows [][]uint32
		want uint64
	}{
		{[][]uint32{{1, 10}, {1, 0xfffffff0}}, 10 + 0xfffffff0},
		{[][]uint32{{1, 12}, {1, 0xfffffff8}}, 12 + 0xfffffff8},
		{[][]uint32{{1, 12}, {1, 0x00000004}}, 12 + 0xfffffff8 + 12}, // CPU 1 wrapped past 2^32
		{[][]uint32{{1, 13}, {1, 0x00000004}}, 12 + 0xfffffff8 + 13},
	}
	for i, s := range steps {
		if got := read(s.rows...)["drop"]; got != s.want {
			t.Fatalf("step %d: drop total %d, want %d", i, got, s.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"defaults", func(*Config) {}, ""},
		{"negative ceiling", func(c *Config) { c.MaxDumpEntries = -1 }, "max_dump_entries: must not be negative"},
		{"bad over_limit", func(c *Config) { c.OverLimit = "drop" }, `over_limit: must be skip or sample, got "drop"`},
		{"short window", func(c *Config) { c.ForecastWindow = time.Second }, "forecast_window: must be at least two intervals"},
		{"fast interval", func(c *Config) { c.Interval = time.Millisecond }, "interval: must be at least 100ms"},
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

func TestStateNames(t *testing.T) {
	for _, tc := range []struct {
		proto    uint8
		has      bool
		state    uint8
		status   uint32
		wantName string
	}{
		{6, true, 3, 6, "established"},
		{6, true, 7, 6, "time_wait"},
		{6, true, 200, 6, "unknown"},
		{17, false, 0, 0, "unreplied"},
		{17, false, 0, 2, "replied"},
		{17, false, 0, 6, "assured"},
		{132, true, 4, 6, "established"},
		{47, false, 0, 6, "assured"},
	} {
		pi := protoIndex(tc.proto)
		if got := stateName(pi, stateIndex(pi, tc.has, tc.state, tc.status)); got != tc.wantName {
			t.Errorf("proto %d state %d status %#x: %q, want %q", tc.proto, tc.state, tc.status, got, tc.wantName)
		}
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
		t.Errorf("%s differs; got:\n%s", p, got)
	}
}
