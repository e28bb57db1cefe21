package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// snapshot emits n pre-built const metrics, as the collector manager does
// on every scrape (collectors' snapshots are built at update time).
type snapshot []prometheus.Metric

func (s snapshot) Describe(chan<- *prometheus.Desc) {}
func (s snapshot) Collect(ch chan<- prometheus.Metric) {
	for _, m := range s {
		ch <- m
	}
}

// BenchmarkMetricsRender measures one /metrics scrape of 2,000 series
// (text format and OpenMetrics): gather, sort and encode.
func BenchmarkMetricsRender(b *testing.B) {
	desc := prometheus.NewDesc("netsight_bench_value", "bench", []string{"device", "state"}, nil)
	var snap snapshot
	for i := 0; i < 2000; i++ {
		snap = append(snap, prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(i),
			fmt.Sprintf("dev%d", i/20), fmt.Sprintf("s%d", i%20)))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(snap)
	s := New(Options{Listen: "127.0.0.1:0", Gatherer: reg})
	for _, tc := range []struct{ name, accept string }{
		{"text", "text/plain"},
		{"openmetrics", "application/openmetrics-text;version=1.0.0"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.Header.Set("Accept", tc.accept)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				w := httptest.NewRecorder()
				s.Mux().ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
