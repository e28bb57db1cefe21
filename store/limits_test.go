package store

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// fakeSeries counts series by metric name: x has 100, up 10, and a
// __name__ regex matches all 110.
func fakeSeries(_ context.Context, _, _ int64, ms []*labels.Matcher) (int64, error) {
	counts := map[string]int64{"x": 100, "up": 10}
	for _, m := range ms {
		if m.Name != model.MetricNameLabel {
			continue
		}
		if m.Type == labels.MatchEqual {
			return counts[m.Value], nil
		}
		var n int64
		for name, c := range counts {
			if m.Matches(name) {
				n += c
			}
		}
		return n, nil
	}
	return 110, nil
}

func TestEstimateCost(t *testing.T) {
	T := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC).UnixMilli()
	const min, hour = int64(60_000), int64(3_600_000)
	env := costEnv{
		countSeries:  fakeSeries,
		interval:     5 * time.Second,
		lookback:     5 * time.Minute,
		subqueryStep: defaultSubqueryStep,
		dataMin:      T - 2*hour,
		dataMax:      T,
	}
	instant := evalWindow{start: T, end: T}
	range1h := evalWindow{start: T - hour, end: T, interval: 15_000}
	for _, tc := range []struct {
		name    string
		expr    string
		w       evalWindow
		dataMin int64 // 0: env's
		want    Cost
		err     string
	}{
		{name: "instant selector", expr: `up`, w: instant,
			want: Cost{Steps: 1, Samples: 10, Series: 10}},
		{name: "rate over 5m: 61 samples per window", expr: `rate(x[5m])`, w: instant,
			want: Cost{Steps: 1, Samples: 100 * 61, Series: 100}},
		{name: "dashboard chart: 1h at 15s", expr: `sum(rate(x[1m]))`, w: range1h,
			want: Cost{Steps: 241, Samples: 100 * 241 * 13, Series: 100}},
		{name: "binary op sums both sides", expr: `x / on() group_left up`, w: instant,
			want: Cost{Steps: 1, Samples: 110, Series: 110}},
		{name: "subquery 1h at 1m: 60 steps", expr: `max_over_time(rate(x[5m])[1h:1m])`, w: instant,
			want: Cost{Steps: 1, MaxSubquerySteps: 60, Subquery: `rate(x[5m])[1h:1m]`, Points: 100 * 60, Samples: 100 * 60 * 61, Series: 100}},
		{name: "subquery without step uses 1m", expr: `max_over_time(x[1h:])`, w: instant,
			want: Cost{Steps: 1, MaxSubquerySteps: 60, Subquery: `x[1h:]`, Points: 100 * 60, Samples: 100 * 60, Series: 100}},
		{name: "aggregation inside a subquery is one series", expr: `max_over_time(sum(x)[1h:1m])`, w: instant,
			want: Cost{Steps: 1, MaxSubquerySteps: 60, Subquery: `sum(x)[1h:1m]`, Points: 60, Samples: 100 * 60, Series: 100}},
		{name: "topk inside a subquery is k series", expr: `max_over_time(topk(5, x)[1h:1m])`, w: instant,
			want: Cost{Steps: 1, MaxSubquerySteps: 60, Subquery: `topk(5, x)[1h:1m]`, Points: 5 * 60, Samples: 100 * 60, Series: 100}},
		{name: "sum by keeps the series bound", expr: `max_over_time(sum by (device) (x)[1h:1m])`, w: instant,
			want: Cost{Steps: 1, MaxSubquerySteps: 60, Subquery: `sum by (device) (x)[1h:1m]`, Points: 100 * 60, Samples: 100 * 60, Series: 100}},
		// The inner subquery runs once over the outer one's whole window:
		// from T-59m-5m (exclusive) to T at 1s.
		{name: "nested subqueries", expr: `max_over_time(max_over_time(x[5m:1s])[1h:1m])`, w: instant,
			want: Cost{Steps: 1, MaxSubquerySteps: 64*60 - 1 + 1, Subquery: `x[5m:1s]`, Points: 100 * (64*60 - 1 + 1), Samples: 100 * 3840, Series: 100}},
		// Only 10 minutes of data: 11 of the 60 steps (T-10m .. T) can hold
		// points (the lookback adds none after T: T is the last step).
		{name: "points count steps with data only", expr: `max_over_time(x[1h:1m])`, w: instant, dataMin: T - 10*min,
			want: Cost{Steps: 1, MaxSubquerySteps: 60, Subquery: `x[1h:1m]`, Points: 100 * 11, Samples: 100 * 60, Series: 100}},
		{name: "subquery in a range query spans the range too", expr: `max_over_time(x[1h:1m])`, w: range1h,
			want: Cost{Steps: 241, MaxSubquerySteps: 120, Subquery: `x[1h:1m]`, Points: 100 * 120, Samples: 100 * 120, Series: 100}},
		{name: "subquery at the step limit passes", expr: `max_over_time(x[7d:1m])`, w: instant,
			want: Cost{Steps: 1, MaxSubquerySteps: 7 * 24 * 60, Subquery: `x[1w:1m]`, Points: 100 * 121, Samples: 100 * 7 * 24 * 60, Series: 100}},
		{name: "issue 11's query", expr: `max_over_time(rate({__name__=~".+"}[5m])[7d:1ms])`, w: instant,
			err: `subquery rate({__name__=~".+"}[5m])[1w:1ms] evaluates 604800000 steps, more than the limit of 11000 (store.query.max_subquery_steps): use a coarser resolution, e.g. [7d:1m]`},
		{name: "inner subquery over the limit", expr: `max_over_time(max_over_time(x[1h:1s])[4h:1h])`, w: instant,
			err: `subquery x[1h:1s] evaluates 14400 steps, more than the limit of 11000`},
		{name: "@ pins a subquery to one window", expr: `max_over_time(x[1h:1s] @ 1000)`, w: range1h,
			want: Cost{Steps: 241, MaxSubquerySteps: 3600, Subquery: `x[1h:1s] @ 1000.000`, Points: 0, Samples: 100 * 3600, Series: 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expr, err := parser.NewParser(parser.Options{}).ParseExpr(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			e := env
			if tc.dataMin != 0 {
				e.dataMin = tc.dataMin
			}
			got, err := estimateCost(context.Background(), expr, tc.w, e, 11000)
			if tc.err != "" {
				var el *errLimit
				if !errors.As(err, &el) || !strings.HasPrefix(err.Error(), tc.err) {
					t.Fatalf("err = %v, want prefix %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("cost\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestLane(t *testing.T) {
	l := newLane("heavy", 1, 1, 50*time.Millisecond)
	rel, err := l.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The slot is taken: a second request waits, then times out.
	start := time.Now()
	if _, err := l.acquire(context.Background()); !errors.Is(err, errQueueTimeout) {
		t.Fatalf("second acquire: %v, want queue timeout", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("queue timeout after %s, want >= 50ms", d)
	}
	// One waiter fills the queue: a third request is refused at once.
	waiting := make(chan error, 1)
	go func() {
		l2 := *l
		l2.timeout = 10 * time.Second
		r, err := l2.acquire(context.Background())
		if err == nil {
			r()
		}
		waiting <- err
	}()
	for len(l.waiting) == 0 {
		time.Sleep(time.Millisecond)
	}
	if _, err := l.acquire(context.Background()); !errors.Is(err, errLaneFull) || !strings.Contains(err.Error(), "store.query.max_queued") {
		t.Fatalf("third acquire: %v, want queue full naming the limit", err)
	}
	// Releasing the slot lets the waiter in.
	rel()
	if err := <-waiting; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	// A canceled request leaves the queue.
	rel, _ = l.acquire(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if _, err := l.acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled acquire: %v", err)
	}
	rel()
	if len(l.slots) != 0 || len(l.waiting) != 0 {
		t.Errorf("slots %d waiting %d after all released", len(l.slots), len(l.waiting))
	}
}

// The API's limits, each a 4xx/5xx answer that names the config key.
func TestQueryLimitsAPI(t *testing.T) {
	small := newTestStoreLimits(t, Limits{MaxSamples: 10_000})
	small.fill(t, 360) // 30 minutes
	ts := newTestStoreLimits(t, Limits{MaxConcurrent: 1, MaxQueued: -1, MaxResponseBytes: 1 << 20, QueueTimeout: 100 * time.Millisecond})
	ts.fill(t, 360)
	now := strconv.FormatInt(ts.now.Unix(), 10)
	from := strconv.FormatInt(ts.now.Add(-30*time.Minute).Unix(), 10)
	heavyQ := url.Values{"query": {`rate(test_latency_seconds_bucket[30m])`}, "start": {from}, "end": {now}, "step": {"1"}}
	tests := []struct {
		ts         *testStore
		name, path string
		form       url.Values
		code       int
		typ        string
		msg        string
		reason     string
	}{
		{ts, "subquery steps", "/api/v1/query", url.Values{"query": {`max_over_time(test_gauge[7d:1ms])`}, "time": {now}},
			400, ErrBadData, "store.query.max_subquery_steps", "max_subquery_steps"},
		{small, "subquery samples", "/api/v1/query", url.Values{"query": {`max_over_time({__name__=~"test_.+"}[30m:1s])`}, "time": {now}},
			400, ErrBadData, "(store.query.max_samples)", "max_samples"},
		{ts, "response size", "/api/v1/query_range", url.Values{"query": {`{__name__=~"test_.+"}`}, "start": {from}, "end": {now}, "step": {"0.2"}},
			422, ErrExecution, "more than the limit of 1048576 (store.query.max_response_bytes)", "max_response_bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.ToFloat64(tc.ts.m.queryRejected.WithLabelValues(tc.reason))
			code, r, raw := do(t, http.MethodPost, tc.ts.srv.URL+tc.path, tc.form)
			if code != tc.code || r.Status != "error" || r.ErrorType != tc.typ || !strings.Contains(r.Error, tc.msg) {
				t.Errorf("got %d %s", code, raw)
			}
			if got := testutil.ToFloat64(tc.ts.m.queryRejected.WithLabelValues(tc.reason)) - before; got != 1 {
				t.Errorf("rejected{reason=%q} grew by %v, want 1", tc.reason, got)
			}
		})
	}

	// With the heavy lane's only slot taken and no queue, a heavy query is
	// refused at once while a light one still answers.
	t.Run("heavy lane full, light lane answers", func(t *testing.T) {
		ts.api.heavy.slots <- struct{}{}
		defer func() { <-ts.api.heavy.slots }()
		code, r, raw := do(t, http.MethodPost, ts.srv.URL+"/api/v1/query_range", heavyQ)
		if code != 503 || r.ErrorType != ErrUnavailable || !strings.Contains(r.Error, "store.query.max_concurrent") {
			t.Errorf("heavy query with the lane full: %d %s", code, raw)
		}
		code, _, raw = do(t, http.MethodPost, ts.srv.URL+"/api/v1/query", url.Values{"query": {`sum(rate(test_events_total[5m]))`}, "time": {now}})
		if code != 200 {
			t.Errorf("light query with the heavy lane full: %d %s", code, raw)
		}
	})
	t.Run("queue timeout", func(t *testing.T) {
		ts.api.heavy.slots <- struct{}{}
		defer func() { <-ts.api.heavy.slots }()
		old := ts.api.heavy.waiting
		ts.api.heavy.waiting = make(chan struct{}, 1)
		defer func() { ts.api.heavy.waiting = old }()
		code, r, raw := do(t, http.MethodPost, ts.srv.URL+"/api/v1/query_range", heavyQ)
		if code != 503 || r.ErrorType != ErrUnavailable || !strings.Contains(r.Error, "store.query.queue_timeout") {
			t.Errorf("heavy query behind a busy slot: %d %s", code, raw)
		}
	})
	t.Run("heavy query runs when the slot is free", func(t *testing.T) {
		code, _, raw := do(t, http.MethodPost, ts.srv.URL+"/api/v1/query_range", heavyQ)
		if code != 200 {
			t.Errorf("%d %s", code, raw[:min(len(raw), 300)])
		}
	})
}

// A client that goes away cancels its query: the evaluation stops at once
// instead of running to its timeout.
func TestDisconnectCancelsQuery(t *testing.T) {
	if testing.Short() {
		t.Skip("fills an hour of 1000 series")
	}
	s, err := Open(Options{Dir: t.TempDir(), Gatherer: prometheusRegistry(), Query: Limits{MaxSamples: 50_000_000, Timeout: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	end := fillHour(t, s, 1000)
	mux := http.NewServeMux()
	api := NewAPI(s, BuildInfo{}, nil)
	api.Register(mux.Handle)
	srv := &http.Server{Handler: mux}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	// Seconds of CPU: a median over 720 samples, for 1000 series at 3601
	// steps.
	form := url.Values{"query": {`quantile_over_time(0.5, bench_bytes_total[1h])`},
		"start": {strconv.FormatInt(end.Add(-time.Hour).Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)}, "step": {"1"}}

	// Uninterrupted it is still running after 2 s: the timeout parameter
	// ends it.
	start := time.Now()
	code, r, _ := do(t, http.MethodPost, base+"/api/v1/query_range?timeout=2s", form)
	if code != 503 || r.ErrorType != ErrTimeout {
		t.Fatalf("query with timeout=2s: %d %s %s, want a timeout (the query is too cheap for this test)", code, r.ErrorType, r.Error)
	}
	t.Logf("uninterrupted: timed out after %s", time.Since(start).Round(time.Millisecond))

	running := func() float64 { return testutil.ToFloat64(s.m.queryRunning.WithLabelValues("heavy")) }
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/query_range", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for running() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if running() != 1 {
		t.Fatal("the query never started")
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	<-done
	gone := time.Now()
	for running() != 0 && time.Since(gone) < 10*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	if running() != 0 {
		t.Fatal("query still running 10 s after its client went away")
	}
	if d := time.Since(gone); d > time.Second {
		t.Errorf("query stopped %s after the client went away, want < 1 s", d)
	} else {
		t.Logf("query stopped %s after the client went away", d.Round(time.Millisecond))
	}
}

func prometheusRegistry() *prometheus.Registry { return prometheus.NewRegistry() }
