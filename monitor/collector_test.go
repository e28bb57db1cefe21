package monitor

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netsight/netsight/internal/metrictest"
)

// Values a source last read, as the read interfaces hand them out.
type (
	allowance struct {
		v  uint64
		ok bool
	}
	tracked struct {
		v  uint64
		ok bool
	}
	conntrackReading struct {
		at             time.Time
		entries, limit uint64
		window         time.Duration
	}
)

func (a *allowance) ConntrackAllowanceAvailable() (uint64, bool) { return a.v, a.ok }
func (t *tracked) TrackedConnections() (uint64, bool)            { return t.v, t.ok }
func (r *conntrackReading) ConntrackReading() (time.Time, uint64, uint64, time.Duration) {
	return r.at, r.entries, r.limit, r.window
}

func collect(c prometheus.Collector) map[string]float64 {
	ch := make(chan prometheus.Metric, 64)
	c.Collect(ch)
	close(ch)
	out := map[string]float64{}
	for m := range ch {
		k, v := metrictest.Key(m)
		out[k] = v
	}
	return out
}

func TestCollectorCapacity(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sources map[string]any
		want    map[string]float64 // nil: no capacity families
	}{
		{"ena and sockets", map[string]any{"nic": &allowance{307829, true}, "sockets": &tracked{1171, true}},
			map[string]float64{
				"netsight_nic_conntrack_capacity":            309000,
				"netsight_nic_conntrack_tracked_connections": 1171,
				"netsight_nic_conntrack_utilisation_ratio":   1171.0 / 309000,
			}},
		{"zero capacity: no ratio", map[string]any{"nic": &allowance{0, true}, "sockets": &tracked{0, true}},
			map[string]float64{"netsight_nic_conntrack_capacity": 0, "netsight_nic_conntrack_tracked_connections": 0}},
		{"no allowance counter (not ENA)", map[string]any{"nic": &allowance{}, "sockets": &tracked{5, true}}, nil},
		{"sockets not counted yet", map[string]any{"nic": &allowance{10, true}, "sockets": &tracked{}}, nil},
		{"sockets collector off", map[string]any{"nic": &allowance{10, true}}, nil},
		{"nic collector off", map[string]any{"sockets": &tracked{5, true}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCollector(func(name string) any { return tc.sources[name] })
			got := collect(c)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

// TestCollectorForecast feeds conntrack reads as the collector would see
// them between gathers: a read gathered twice counts once, a reload that
// changes forecast_window starts over.
func TestCollectorForecast(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	r := &conntrackReading{}
	c := NewCollector(func(name string) any {
		if name == "conntrack" {
			return r
		}
		return nil
	})
	if got := collect(c); len(got) != 0 {
		t.Fatalf("before the first conntrack read: %v, want nothing", got)
	}
	steps := []struct {
		name          string
		at            time.Duration
		entries       uint64
		window        time.Duration
		exhaustion    float64
		growth        float64 // NaN: family absent
		wantSamplesIn int
	}{
		{"first read", 0, 100, time.Hour, math.Inf(1), math.NaN(), 1},
		{"same read gathered again", 0, 100, time.Hour, math.Inf(1), math.NaN(), 1},
		{"growing 10/s", 10 * time.Second, 200, time.Hour, 80, 10, 2},
		{"still 10/s", 20 * time.Second, 300, time.Hour, 70, 10, 3},
		{"full", 30 * time.Second, 1000, time.Hour, 0, 0, 4},
		{"window changed by a reload", 40 * time.Second, 500, time.Minute, math.Inf(1), math.NaN(), 1},
	}
	for _, st := range steps {
		*r = conntrackReading{at: t0.Add(st.at), entries: st.entries, limit: 1000, window: st.window}
		got := collect(c)
		if ex := got["netsight_conntrack_exhaustion_seconds"]; ex != st.exhaustion && math.Abs(ex-st.exhaustion) > 1e-9 {
			t.Errorf("%s: exhaustion = %v, want %v", st.name, ex, st.exhaustion)
		}
		g, ok := got["netsight_conntrack_entries_growth_per_second"]
		switch {
		case math.IsNaN(st.growth) && ok:
			t.Errorf("%s: growth = %v, want absent", st.name, g)
		case !math.IsNaN(st.growth) && st.name != "full" && math.Abs(g-st.growth) > 1e-9:
			t.Errorf("%s: growth = %v, want %v", st.name, g, st.growth)
		}
		if n := len(c.forecast.ts); n != st.wantSamplesIn {
			t.Errorf("%s: %d samples in the forecast, want %d", st.name, n, st.wantSamplesIn)
		}
	}
}

func TestCollectorLint(t *testing.T) {
	c := NewCollector(func(name string) any {
		switch name {
		case "nic":
			return &allowance{10, true}
		case "sockets":
			return &tracked{5, true}
		case "conntrack":
			return &conntrackReading{at: time.Unix(1, 0), entries: 1, limit: 10, window: time.Minute}
		}
		return nil
	})
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	if n := testutil.CollectAndCount(c); n != 4 {
		t.Errorf("%d series, want 4 (exhaustion, capacity, tracked, utilisation)", n)
	}
}
