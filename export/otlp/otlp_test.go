package otlp_test

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/export/delivery"
	"github.com/netsight/netsight/export/otlp"
	"github.com/netsight/netsight/internal/receiver"
)

var bounds = []string{"0.001", "0.01", "0.1", "+Inf"}

// testSeries: gauges, counters and one classic histogram (two label sets).
func testSeries() []labels.Labels {
	var out []labels.Labels
	for i := 0; i < 3; i++ {
		out = append(out, labels.FromStrings("__name__", "otlptest_gauge", "i", strconv.Itoa(i), "scope", "two words,x=y"))
		out = append(out, labels.FromStrings("__name__", "otlptest_packets_total", "i", strconv.Itoa(i)))
	}
	for _, dev := range []string{"eth0", "eth1"} {
		for _, le := range bounds {
			out = append(out, labels.FromStrings("__name__", "otlptest_rtt_seconds_bucket", "dev", dev, "le", le))
		}
		out = append(out, labels.FromStrings("__name__", "otlptest_rtt_seconds_sum", "dev", dev))
		out = append(out, labels.FromStrings("__name__", "otlptest_rtt_seconds_count", "dev", dev))
	}
	return out
}

func testValue(series []labels.Labels) func(int, int64) float64 {
	return func(i int, ts int64) float64 {
		l := series[i]
		k := float64(ts/1000%1000) + 1
		switch l.Get("__name__") {
		case "otlptest_gauge":
			return k/3 - float64(i)
		case "otlptest_packets_total":
			return k * 1000
		case "otlptest_rtt_seconds_bucket":
			for j, b := range bounds {
				if b == l.Get("le") {
					return k * float64(j+1) // cumulative, +Inf = 4k
				}
			}
		case "otlptest_rtt_seconds_sum":
			return k * 0.0123
		case "otlptest_rtt_seconds_count":
			return k * 4
		}
		return math.NaN()
	}
}

// decode turns an export request back into Prometheus-style samples
// (histograms expanded into _bucket{le} cumulative, _sum, _count) and checks
// the metric types.
func decode(t *testing.T, req *colmetricspb.ExportMetricsServiceRequest, out receiver.Samples) {
	for _, rm := range req.GetResourceMetrics() {
		attrs := map[string]string{}
		for _, kv := range rm.GetResource().GetAttributes() {
			attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
		}
		if attrs["service.name"] != "netsight" || attrs["host.name"] == "" || attrs["service.instance.id"] == "" {
			t.Errorf("resource attributes %v", attrs)
		}
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				switch d := m.GetData().(type) {
				case *metricspb.Metric_Gauge:
					if m.GetName() != "otlptest_gauge" {
						t.Errorf("%s is a gauge", m.GetName())
					}
					for _, p := range d.Gauge.GetDataPoints() {
						out[key(m.GetName(), p.GetAttributes(), "", "", p.GetTimeUnixNano())] = p.GetAsDouble()
					}
				case *metricspb.Metric_Sum:
					if m.GetName() != "otlptest_packets_total" || !d.Sum.GetIsMonotonic() ||
						d.Sum.GetAggregationTemporality() != metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE {
						t.Errorf("%s: sum %v", m.GetName(), d.Sum.GetAggregationTemporality())
					}
					for _, p := range d.Sum.GetDataPoints() {
						out[key(m.GetName(), p.GetAttributes(), "", "", p.GetTimeUnixNano())] = p.GetAsDouble()
					}
				case *metricspb.Metric_Histogram:
					if m.GetName() != "otlptest_rtt_seconds" {
						t.Errorf("%s is a histogram", m.GetName())
					}
					for _, p := range d.Histogram.GetDataPoints() {
						cum := 0.0
						for j, c := range p.GetBucketCounts() {
							cum += float64(c)
							le := "+Inf"
							if j < len(p.GetExplicitBounds()) {
								le = strconv.FormatFloat(p.GetExplicitBounds()[j], 'g', -1, 64)
							}
							out[key(m.GetName()+"_bucket", p.GetAttributes(), "le", le, p.GetTimeUnixNano())] = cum
						}
						out[key(m.GetName()+"_sum", p.GetAttributes(), "", "", p.GetTimeUnixNano())] = p.GetSum()
						out[key(m.GetName()+"_count", p.GetAttributes(), "", "", p.GetTimeUnixNano())] = float64(p.GetCount())
					}
				default:
					t.Errorf("%s: unexpected type %T", m.GetName(), d)
				}
			}
		}
	}
}

func key(name string, kvs []*commonpb.KeyValue, extraK, extraV string, tns uint64) receiver.Key {
	m := map[string]string{"__name__": name}
	for _, kv := range kvs {
		m[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	if extraK != "" {
		m[extraK] = extraV
	}
	return receiver.Key{Series: receiver.SeriesString(m), T: int64(tns / 1e6)}
}

// deliver backfills one minute and runs one round against o.
func deliver(t *testing.T, o config.Output) (*receiver.Store, int64, int64) {
	t.Helper()
	series := testSeries()
	s := receiver.NewStore(t, series, testValue(series))
	now := time.Now().Truncate(time.Second)
	from, to := now.Add(-time.Minute).UnixMilli(), now.UnixMilli()
	for ts := from; ts <= to; ts += 1000 {
		s.Add(t, ts)
	}
	snd, err := otlp.NewSender(o.WithDefaults(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer snd.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "otlp.cursor.json"), fmt.Appendf(nil, `{"acked_ms": %d}`, from-1), 0o600); err != nil {
		t.Fatal(err)
	}
	// Lag 2s so the round's end is before the newest sample: the compared range is fixed.
	d, err := delivery.New(delivery.Options{Name: "otlp", Dir: dir, Source: s, Sender: snd, Interval: time.Second, Lag: 2 * time.Second,
		MaxSamplesPerSend: 500, MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Round(ctx); err != nil {
		t.Fatal(err)
	}
	return s, from, d.Acked()
}

// TestOTLPHTTP: OTLP/HTTP protobuf, gzipped by default and plain with
// compression: none; gauges, monotonic cumulative sums and histograms (with
// explicit bounds) carry exactly the store's samples.
func TestOTLPHTTP(t *testing.T) {
	for _, compression := range []string{"", config.CompressionNone} {
		t.Run("compression="+compression, func(t *testing.T) {
			var mu sync.Mutex
			got := receiver.Samples{}
			wantGzip := compression != config.CompressionNone
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var rd io.Reader = r.Body
				if enc := r.Header.Get("Content-Encoding"); (enc == "gzip") != wantGzip {
					http.Error(w, "Content-Encoding "+enc, http.StatusBadRequest)
					return
				}
				if wantGzip {
					zr, err := gzip.NewReader(r.Body)
					if err != nil {
						http.Error(w, err.Error(), http.StatusBadRequest)
						return
					}
					rd = zr
				}
				body, _ := io.ReadAll(rd)
				var req colmetricspb.ExportMetricsServiceRequest
				if r.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, &req) != nil {
					http.Error(w, "bad request", http.StatusBadRequest)
					return
				}
				mu.Lock()
				decode(t, &req, got)
				mu.Unlock()
				out, _ := proto.Marshal(&colmetricspb.ExportMetricsServiceResponse{})
				w.Header().Set("Content-Type", "application/x-protobuf")
				_, _ = w.Write(out)
			}))
			defer srv.Close()
			s, from, to := deliver(t, config.Output{Name: "otlp", Type: "otlp", URL: srv.URL + "/v1/metrics", Compression: compression})
			mu.Lock()
			defer mu.Unlock()
			if diff := receiver.Diff(got, s.Local(t, "otlptest_.*", from, to, nil, false)); diff != "" {
				t.Fatal(diff)
			}
		})
	}
}

type grpcServer struct {
	colmetricspb.UnimplementedMetricsServiceServer
	t     *testing.T
	mu    sync.Mutex
	got   receiver.Samples
	calls int
}

func (g *grpcServer) Export(_ context.Context, req *colmetricspb.ExportMetricsServiceRequest) (*colmetricspb.ExportMetricsServiceResponse, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.calls++; g.calls == 1 {
		return nil, status.Error(codes.Unavailable, "warming up") // retried
	}
	decode(g.t, req, g.got)
	return &colmetricspb.ExportMetricsServiceResponse{}, nil
}

// TestOTLPGRPC: the same over gRPC (a MetricsService server on 127.0.0.1);
// an Unavailable answer is retried.
func TestOTLPGRPC(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	impl := &grpcServer{t: t, got: receiver.Samples{}}
	colmetricspb.RegisterMetricsServiceServer(gs, impl)
	go func() { _ = gs.Serve(l) }()
	defer gs.Stop()
	s, from, to := deliver(t, config.Output{Name: "otlp", Type: "otlp", Protocol: "grpc", URL: "grpc://" + l.Addr().String()})
	impl.mu.Lock()
	defer impl.mu.Unlock()
	if impl.calls < 2 {
		t.Errorf("%d calls: Unavailable not retried", impl.calls)
	}
	if diff := receiver.Diff(impl.got, s.Local(t, "otlptest_.*", from, to, nil, false)); diff != "" {
		t.Fatal(diff)
	}
}
