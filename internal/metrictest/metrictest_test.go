package metrictest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sys/unix"
)

var (
	gaugeDesc   = prometheus.NewDesc("t_queue_bytes", "A gauge.", []string{"dev", "a"}, nil)
	counterDesc = prometheus.NewDesc("t_events_total", "A counter.", nil, prometheus.Labels{"const": "c"})
	untypedDesc = prometheus.NewDesc("t_untyped", "An untyped metric.", nil, nil)
	histDesc    = prometheus.NewDesc("t_latency_seconds", "A histogram.", nil, nil)
	summaryDesc = prometheus.NewDesc("t_size_bytes", "A summary.", nil, nil)
)

// fake is a collector.Collector sending a fixed set of metrics.
type fake struct {
	metrics func() []prometheus.Metric
	err     error
	tid     int // thread of the last Update
}

func (f *fake) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	f.tid = unix.Gettid()
	for _, m := range f.metrics() {
		ch <- m
	}
	return f.err
}

func allTypes() []prometheus.Metric {
	return []prometheus.Metric{
		prometheus.MustNewConstMetric(gaugeDesc, prometheus.GaugeValue, 1.5, "eth0", `x"y`),
		prometheus.MustNewConstMetric(counterDesc, prometheus.CounterValue, 7),
		prometheus.MustNewConstMetric(untypedDesc, prometheus.UntypedValue, -2),
		prometheus.MustNewConstHistogram(histDesc, 12, 3.5, map[float64]uint64{0.1: 4, 1: 10}),
		prometheus.MustNewConstSummary(summaryDesc, 5, 100, map[float64]float64{0.5: 20}),
	}
}

func TestGather(t *testing.T) {
	f := &fake{metrics: allTypes}
	got, err := Gather(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		`t_queue_bytes{a="x\"y",dev="eth0"}`: 1.5,
		`t_events_total{const="c"}`:          7,
		`t_untyped`:                          -2,
		`t_latency_seconds`:                  12,
		`t_size_bytes`:                       5,
	}
	if len(got) != len(want) {
		t.Errorf("got %d keys, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

// TestGatherCallingThread: Update runs on the caller's OS thread, which is
// what keeps a Gather inside testlab's ns.Do in that namespace.
func TestGatherCallingThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f := &fake{metrics: allTypes}
	if _, err := Gather(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if tid := unix.Gettid(); f.tid != tid {
		t.Errorf("Update ran on thread %d, caller on %d", f.tid, tid)
	}
}

func TestGatherError(t *testing.T) {
	boom := errors.New("boom")
	f := &fake{metrics: func() []prometheus.Metric { return allTypes()[:1] }, err: boom}
	got, err := Gather(context.Background(), f)
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want boom", err)
	}
	if len(got) != 1 {
		t.Errorf("partial metrics lost: %v", got)
	}
	bad := &fake{metrics: func() []prometheus.Metric {
		return []prometheus.Metric{prometheus.NewInvalidMetric(gaugeDesc, errors.New("broken"))}
	}}
	if _, err := Gather(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("invalid metric: err = %v", err)
	}
}

func TestKey(t *testing.T) {
	k, v := Key(prometheus.MustNewConstMetric(untypedDesc, prometheus.UntypedValue, 3))
	if k != "t_untyped" || v != 3 {
		t.Errorf("Key = %q, %v", k, v)
	}
	defer func() {
		if recover() == nil {
			t.Error("Key of an invalid metric did not panic")
		}
	}()
	Key(prometheus.NewInvalidMetric(gaugeDesc, errors.New("broken")))
}

func TestAsPrometheus(t *testing.T) {
	pc := AsPrometheus(&fake{metrics: allTypes, err: errors.New("partial")})
	if n := testutil.CollectAndCount(pc); n != 5 {
		t.Errorf("CollectAndCount = %d, want 5", n)
	}
	if n := testutil.CollectAndCount(pc, "t_events_total"); n != 1 {
		t.Errorf("CollectAndCount(t_events_total) = %d, want 1", n)
	}
}

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	errors []string
	fatal  string
}

type fatalStop struct{}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	panic(fatalStop{})
}

func lint(t *testing.T, f *fake) (r *recorder, n int) {
	r = &recorder{TB: t}
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(fatalStop); !ok {
				panic(p)
			}
		}
	}()
	return r, len(Lint(r, f))
}

func TestLint(t *testing.T) {
	r, n := lint(t, &fake{metrics: allTypes})
	if len(r.errors) != 0 || r.fatal != "" || n != 5 {
		t.Errorf("clean collector: errors %q, fatal %q, %d families", r.errors, r.fatal, n)
	}

	badCounter := prometheus.NewDesc("t_events", "A counter without _total.", nil, nil)
	r, _ = lint(t, &fake{metrics: func() []prometheus.Metric {
		return append(allTypes(), prometheus.MustNewConstMetric(badCounter, prometheus.CounterValue, 1))
	}})
	if len(r.errors) != 1 || !strings.Contains(r.errors[0], "t_events") || !strings.Contains(r.errors[0], "_total") {
		t.Errorf("counter without _total: errors %q", r.errors)
	}

	r, _ = lint(t, &fake{metrics: func() []prometheus.Metric { return append(allTypes(), allTypes()[1]) }})
	if r.fatal == "" || !strings.Contains(r.fatal, "t_events_total") {
		t.Errorf("duplicate series: fatal %q", r.fatal)
	}
}
