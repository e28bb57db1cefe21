package store

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
)

// BenchmarkIngest measures one steady-state ingest round (gather the
// registry, append every sample, commit = one WAL write) and reports the
// cost per gathered series.
func BenchmarkIngest(b *testing.B) {
	for _, n := range []int{200, 2000, 20000} {
		b.Run(fmt.Sprintf("series=%d", n), func(b *testing.B) {
			reg := prometheus.NewRegistry()
			g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bench_value", Help: "x"}, []string{"device", "stat"})
			reg.MustRegister(g)
			for i := range n {
				g.WithLabelValues("eth"+strconv.Itoa(i%16), "stat_"+strconv.Itoa(i)).Set(float64(i))
			}
			now := time.Now().Add(-time.Hour)
			s, err := Open(Options{Dir: b.TempDir(), Gatherer: reg, Now: func() time.Time { return now }})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Shutdown(context.Background())
			ctx := context.Background()
			if _, err := s.Ingest(ctx); err != nil { // first round creates the series
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				now = now.Add(5 * time.Second)
				res, err := s.Ingest(ctx)
				if err != nil || res.Series != n {
					b.Fatalf("ingest: %+v %v", res, err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/series")
		})
	}
}

// BenchmarkAppendOnly isolates the store's part (no registry gather): the
// append path over pre-gathered families.
func BenchmarkAppendOnly(b *testing.B) {
	const n = 2000
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bench_value", Help: "x"}, []string{"device", "stat"})
	reg.MustRegister(g)
	for i := range n {
		g.WithLabelValues("eth"+strconv.Itoa(i%16), "stat_"+strconv.Itoa(i)).Set(float64(i))
	}
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	s, err := Open(Options{Dir: b.TempDir(), Gatherer: reg})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	t := time.Now().Add(-time.Hour).UnixMilli()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t += 5000
		app := s.db.Appender(context.Background())
		if _, err := s.cache.append(app, mfs, t); err != nil {
			b.Fatal(err)
		}
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/series")
}

// fillHour writes `series` series with one sample every 5 s over the last
// hour (720 samples each): counters growing at different rates.
func fillHour(b testing.TB, s *Store, series int) time.Time {
	end := time.Now().Truncate(time.Second)
	start := end.Add(-time.Hour)
	refs := make([]labels.Labels, series)
	for i := range refs {
		refs[i] = labels.FromStrings("__name__", "bench_bytes_total", "device", "eth"+strconv.Itoa(i%16), "peer", "p"+strconv.Itoa(i))
	}
	for ts := start; !ts.After(end); ts = ts.Add(5 * time.Second) {
		app := s.db.Appender(context.Background())
		for i, l := range refs {
			if _, err := app.Append(0, l, ts.UnixMilli(), float64(ts.Sub(start).Seconds())*float64(i+1)); err != nil {
				b.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	return end
}

// BenchmarkQueryRange1h2k: range queries over 1 h of 2,000 series (1.44 M
// samples), at Grafana's default resolution for a 1 h panel (step 15 s, 241
// points), through the HTTP API (parse, evaluate, JSON encode).
func BenchmarkQueryRange1h2k(b *testing.B) {
	s, err := Open(Options{Dir: b.TempDir(), Gatherer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	end := fillHour(b, s, 2000)
	mux := http.NewServeMux()
	NewAPI(s, BuildInfo{}, nil).Register(mux.Handle)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, q := range []struct{ name, expr string }{
		{"sum_rate", `sum(rate(bench_bytes_total[1m]))`},
		{"sum_by_device", `sum by (device) (rate(bench_bytes_total[1m]))`},
		{"topk10", `topk(10, rate(bench_bytes_total[1m]))`},
		{"raw_2k_series", `bench_bytes_total`},
	} {
		b.Run(q.name, func(b *testing.B) {
			form := url.Values{"query": {q.expr}, "start": {strconv.FormatInt(end.Add(-time.Hour).Unix(), 10)},
				"end": {strconv.FormatInt(end.Unix(), 10)}, "step": {"15"}}
			// Warm-up: the first query of a fresh head pays one-off costs.
			resp, err := http.PostForm(srv.URL+"/api/v1/query_range", form)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = drain(resp)
			var bytes int64
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resp, err := http.PostForm(srv.URL+"/api/v1/query_range", form)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := drain(resp)
				bytes = n
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			b.ReportMetric(float64(bytes), "resp_bytes")
		})
	}
}

func drain(resp *http.Response) (int64, error) {
	defer resp.Body.Close()
	return io.Copy(io.Discard, resp.Body)
}

// BenchmarkEstimateCost is what the query limits add in front of each query
// of BenchmarkQueryRange1h2k: the cost estimate (syntax walk and series
// count in the index) over 2,000 series.
func BenchmarkEstimateCost(b *testing.B) {
	s, err := Open(Options{Dir: b.TempDir(), Gatherer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	end := fillHour(b, s, 2000)
	a := NewAPI(s, BuildInfo{}, nil)
	w := evalWindow{start: end.Add(-time.Hour).UnixMilli(), end: end.UnixMilli(), interval: 15000}
	for _, q := range []struct{ name, expr string }{
		{"sum_rate", `sum(rate(bench_bytes_total[1m]))`},
		{"topk10", `topk(10, rate(bench_bytes_total[1m]))`},
		{"subquery", `max_over_time(rate(bench_bytes_total[5m])[1h:1m])`},
	} {
		b.Run(q.name, func(b *testing.B) {
			expr, err := a.parser.ParseExpr(q.expr)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := estimateCost(context.Background(), expr, w, a.costEnv(), 11000); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
