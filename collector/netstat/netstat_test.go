package netstat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/internal/kernel"
	"github.com/netsight/netsight/internal/metrictest"
)

// fixtureProc lays the captured 6.18 files out as <root>/net and
// <root>/1234/net.
func fixtureProc(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, dir := range []string{"net", "1234/net"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range kernel.NetStatFiles {
			b, err := os.ReadFile(filepath.Join("../../internal/kernel/testdata/netstat", f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, dir, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

func TestCollectorFixture(t *testing.T) {
	root := fixtureProc(t)
	c, err := New(DefaultConfig(), collector.Deps{Paths: kernel.Paths{ProcFS: root}})
	if err != nil {
		t.Fatal(err)
	}
	if m, at := c.HostNetStat(); m != nil || !at.IsZero() {
		t.Fatal("HostNetStat before the first update")
	}
	got := metrictest.MustGather(t, c)
	want, err := kernel.ReadNetStat(root, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Every counter of the list is on the 6.18 kernel, with its value.
	for _, k := range Counters {
		v, ok := got[k.Metric]
		if !ok {
			t.Errorf("%s (%s) not exported", k.Metric, k.Key)
			continue
		}
		if v != float64(want[k.Key]) {
			t.Errorf("%s = %v, want %d", k.Metric, v, want[k.Key])
		}
	}
	if len(got) != len(Counters)+1 || got["netsight_netstat_read_errors_total"] != 0 {
		t.Errorf("got %d series (%v), want %d counters and the error count", len(got), got, len(Counters))
	}
	host, at := c.HostNetStat()
	if at.IsZero() || host["TcpExt.ListenOverflows"] != want["TcpExt.ListenOverflows"] || len(host) != len(want) {
		t.Errorf("HostNetStat %d counters at %v", len(host), at)
	}
	other, err := c.NetStat(1234)
	if err != nil || len(other) != len(want) {
		t.Errorf("NetStat(1234): %d counters, %v", len(other), err)
	}
	if _, err := c.NetStat(99); err == nil {
		t.Error("NetStat of a missing pid")
	}
}

func TestCollectorMissingProc(t *testing.T) {
	c, err := New(DefaultConfig(), collector.Deps{Paths: kernel.Paths{ProcFS: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := metrictest.Gather(t.Context(), c)
	if err == nil || !strings.Contains(err.Error(), "net/netstat") {
		t.Fatalf("err %v, want one naming net/netstat", err)
	}
	if got["netsight_netstat_read_errors_total"] != 1 {
		t.Errorf("read errors %v, want 1", got["netsight_netstat_read_errors_total"])
	}
	if err := check(t.Context(), DefaultConfig(), collector.Deps{Paths: kernel.Paths{ProcFS: t.TempDir()}}); err == nil {
		t.Error("check passed without procfs files")
	}
}

func TestMetricsLint(t *testing.T) {
	c, err := New(DefaultConfig(), collector.Deps{Paths: kernel.Paths{ProcFS: fixtureProc(t)}})
	if err != nil {
		t.Fatal(err)
	}
	metrictest.Lint(t, c)
}

func TestNodeExporterName(t *testing.T) {
	if got := (Counter{Key: "TcpExt.ListenOverflows"}).NodeExporterName(); got != "node_netstat_TcpExt_ListenOverflows" {
		t.Errorf("got %s", got)
	}
	seen := map[string]bool{}
	for _, k := range Counters {
		if seen[k.Metric] || seen[k.Key] {
			t.Errorf("duplicate %s", k.Metric)
		}
		seen[k.Metric], seen[k.Key] = true, true
		if !strings.HasPrefix(k.Metric, "netsight_netstat_") || !strings.HasSuffix(k.Metric, "_total") {
			t.Errorf("metric name %s", k.Metric)
		}
	}
}
