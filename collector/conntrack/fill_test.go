package conntrack

import (
	"context"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/internal/metrictest"
	"github.com/netsight/netsight/monitor"
)

// gatherWithMonitor runs one update of c and adds what the agent's monitor
// derives from it (the exhaustion forecast).
func gatherWithMonitor(c *Collector, mon *monitor.Collector) (map[string]float64, error) {
	got, err := metrictest.Gather(context.Background(), c)
	ch := make(chan prometheus.Metric, 16)
	mon.Collect(ch)
	close(ch)
	for m := range ch {
		k, v := metrictest.Key(m)
		got[k] = v
	}
	return got, err
}

const globalMax = "/proc/sys/net/netfilter/nf_conntrack_max"

// TestLabFillTable fills a namespace's table to the limit and checks that
// drop/insert_failed rise and that the forecast is finite.
//
// nf_conntrack_max is read-only inside non-initial namespaces on this kernel
// (one global limit compared with each namespace's own count), so the test
// lowers the GLOBAL limit to exactly this namespace's count for well under a
// second, then restores it (also in Cleanup should the test die early).
// Namespaces holding more entries than that would drop new flows during the
// window, so the test holds more entries than the host namespace has
// (at least 60), and keeps the window to a few hundred milliseconds.
func TestLabFillTable(t *testing.T) {
	ns := labNS(t)
	orig, err := os.ReadFile(globalMax)
	if err != nil {
		t.Fatal(err)
	}
	restore := func() {
		if err := os.WriteFile(globalMax, orig, 0o644); err != nil {
			t.Errorf("restore nf_conntrack_max: %v", err)
		}
	}
	t.Cleanup(restore)

	clock := time.Unix(1_000_000, 0)
	c, err := New(DefaultConfig(), collector.Deps{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	mon := monitor.NewCollector(func(name string) any {
		if name == Name {
			return c
		}
		return nil
	})
	var before, full map[string]float64
	if err := ns.Do(func() error { var e error; before, e = gatherWithMonitor(c, mon); return e }); err != nil {
		t.Fatal(err)
	}
	if v := before["netsight_conntrack_exhaustion_seconds"]; !math.IsInf(v, 1) {
		t.Errorf("exhaustion with one sample = %v, want +Inf", v)
	}
	// Hold more assured entries than the host namespace has, so lowering
	// the global limit to our count cannot make the host drop anything.
	held := 60
	if b, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_count"); err == nil {
		if host, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && host+50 > held {
			held = host + 50
		}
	}
	if held > 4000 {
		t.Fatalf("host namespace holds %d conntrack entries: too many to lower the global limit safely", held-50)
	}
	addr := holdTCP(t, ns, held)
	clock = clock.Add(30 * time.Second)

	count := conntrackC(t, ns)
	if err := os.WriteFile(globalMax, []byte(strconv.Itoa(count)), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// New connections now need an entry the table cannot give: SYNs are
	// dropped. Each dial gives up after 300ms (before the first SYN retransmit).
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if c, err := ns.Dial(ctx, "tcp", addr); err == nil {
				c.Close()
			}
		}()
	}
	wg.Wait()
	err = ns.Do(func() error { var e error; full, e = gatherWithMonitor(c, mon); return e })
	restore()
	t.Logf("global nf_conntrack_max lowered to %d for %v", count, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if got := full["netsight_conntrack_entries_limit"]; int(got) != count {
		t.Errorf("entries_limit = %v during fill, want %d", got, count)
	}
	dropped := full["netsight_conntrack_drop_total"] - before["netsight_conntrack_drop_total"]
	failed := full["netsight_conntrack_insert_failed_total"] - before["netsight_conntrack_insert_failed_total"]
	t.Logf("entries=%v limit=%v drop +%v insert_failed +%v early_drop +%v exhaustion=%vs growth=%v/s",
		full["netsight_conntrack_entries"], full["netsight_conntrack_entries_limit"], dropped, failed,
		full["netsight_conntrack_early_drop_total"]-before["netsight_conntrack_early_drop_total"],
		full["netsight_conntrack_exhaustion_seconds"], full["netsight_conntrack_entries_growth_per_second"])
	if dropped+failed < 10 {
		t.Errorf("drop+insert_failed rose by %v, want >= 10 (one per refused SYN)", dropped+failed)
	}
	if v := full["netsight_conntrack_exhaustion_seconds"]; math.IsInf(v, 0) || math.IsNaN(v) || v != 0 {
		t.Errorf("exhaustion_seconds = %v with a full table, want 0 (finite)", v)
	}
	if g, want := full["netsight_conntrack_entries_growth_per_second"], float64(count)/30; g < want*0.9 || g > want*1.1 {
		t.Errorf("growth = %v/s, want ~%v/s (%d entries in 30s)", g, want, count)
	}

	// The kernel's own per-CPU counters over netlink (conntrack -S) must
	// agree with the procfs totals we export.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := ns.Run(ctx, "conntrack", "-S")
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]float64
	if err := ns.Do(func() error { var e error; s, e = metrictest.Gather(context.Background(), c); return e }); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"drop", "insert_failed", "early_drop", "invalid", "search_restart"} {
		if got, want := s["netsight_conntrack_"+k+"_total"], sumField(out, k); got != want {
			t.Errorf("%s_total = %v, conntrack -S sums to %v", k, got, want)
		}
	}
}

func sumField(out, key string) float64 {
	var s float64
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			n, _ := strconv.ParseFloat(v, 64)
			s += n
		}
	}
	return s
}
