package influx_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/export/delivery"
	"github.com/netsight/netsight/export/influx"
	"github.com/netsight/netsight/internal/receiver"
)

// awkward label values: spaces, commas, =, quotes, backslashes, UTF-8.
var awkward = []string{"plain", "two words", "a,b", "k=v", `say "hi"`, `back\slash`, "tab-free ünïcode", " lead and trail ", "=,= ,"}

func series(prefix string) []labels.Labels {
	var out []labels.Labels
	for i, v := range awkward {
		out = append(out, labels.FromStrings("__name__", fmt.Sprintf("%s_m%d", prefix, i%3), "i", strconv.Itoa(i), "scope", v,
			"zone", "eu west,1"))
	}
	return out
}

func fullValue(i int, ts int64) float64 {
	switch i % 3 {
	case 0:
		return float64(ts/1000) + 0.1
	case 1:
		return -1e-9 * float64(ts%977) * float64(i)
	}
	return math.Pow(2, 60) + float64(ts)
}

func decimalValue(i int, ts int64) float64 {
	return float64(ts%100000)/8 - float64(i)
}

// deliver backfills s with 2 minutes of 1s samples and delivers them to o.
func deliver(t *testing.T, s *receiver.Store, o config.Output, reg prometheus.Registerer) (*delivery.Delivery, int64, int64) {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	from, to := now.Add(-2*time.Minute).UnixMilli(), now.UnixMilli()
	for ts := from; ts <= to; ts += 1000 {
		s.Add(t, ts)
	}
	o = o.WithDefaults(time.Second)
	o.MaxSamplesPerSend = 300
	snd, err := influx.NewSender(o)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, o.Name+".cursor.json"), fmt.Appendf(nil, `{"acked_ms": %d}`, from-1), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := delivery.New(delivery.Options{Name: o.Name, Dir: dir, Source: s, Sender: snd, Interval: time.Second, Lag: time.Second,
		MaxSamplesPerSend: o.MaxSamplesPerSend, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.Round(ctx); err != nil {
		t.Fatal(err)
	}
	return d, from, to - 1000
}

func waitEqual(t *testing.T, read func() (receiver.Samples, error), want receiver.Samples) {
	t.Helper()
	var diff string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		got, err := read()
		if err != nil {
			diff = err.Error()
			continue
		}
		if diff = receiver.Diff(got, want); diff == "" {
			return
		}
	}
	t.Fatalf("receiver differs from the store:\n%s", diff)
}

func createDB(t *testing.T, p *receiver.Proc, db string) {
	t.Helper()
	if _, err := receiver.InfluxQuery(context.Background(), p, "", "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
}

// TestInfluxDBRoundTrip: tag values with spaces, commas, = and quotes, and
// float64 values to the last bit, come back from InfluxDB 1.6 exactly; NaN
// and Inf are dropped and counted.
func TestInfluxDBRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("starts influxd")
	}
	p := receiver.InfluxDB(t)
	createDB(t, p, "netsight")
	s := receiver.NewStore(t, series("lp"), func(i int, ts int64) float64 {
		if i == 4 && ts%10000 == 0 {
			return math.NaN()
		}
		if i == 5 && ts%10000 == 0 {
			return math.Inf(-1)
		}
		return fullValue(i, ts)
	})
	reg := prometheus.NewRegistry()
	d, from, to := deliver(t, s, config.Output{Name: "influx", Type: "influxdb", URL: p.URL(""), Database: "netsight"}, reg)
	want := s.Local(t, "lp_.*", from, to, nil, true)
	waitEqual(t, func() (receiver.Samples, error) {
		return receiver.InfluxSamples(context.Background(), p, "netsight", "lp_.*")
	}, want)
	nonFinite := len(s.Local(t, "lp_.*", from, to, nil, false)) - len(want)
	if nonFinite == 0 {
		t.Fatal("test store has no NaN/Inf samples")
	}
	got := dropped(t, reg, "unsupported")
	if int(got) != nonFinite {
		t.Errorf("dropped{unsupported} = %v, want %d (NaN and Inf)", got, nonFinite)
	}
	_ = d
}

// TestInfluxDBTypeConflict: a field that already exists as an integer makes
// InfluxDB refuse those points (partial write); they are counted as
// dropped, the rest lands and the output goes on.
func TestInfluxDBTypeConflict(t *testing.T) {
	if testing.Short() {
		t.Skip("starts influxd")
	}
	p := receiver.InfluxDB(t)
	createDB(t, p, "netsight")
	// Someone else wrote conflict_m0 with an integer "value".
	resp, err := http.Post(p.URL("/write?db=netsight"), "text/plain", strings.NewReader("conflict_m0,i=x value=1i\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("seed write: %s", resp.Status)
	}
	s := receiver.NewStore(t, series("conflict"), fullValue)
	reg := prometheus.NewRegistry()
	d, from, to := deliver(t, s, config.Output{Name: "influx", Type: "influxdb", URL: p.URL(""), Database: "netsight"}, reg)
	conflicting := s.Local(t, "conflict_m0", from, to, nil, true)
	if n := dropped(t, reg, "rejected"); int(n) != len(conflicting) {
		t.Errorf("dropped{rejected} = %v, want %d (every conflict_m0 sample)", n, len(conflicting))
	}
	waitEqual(t, func() (receiver.Samples, error) {
		return receiver.InfluxSamples(context.Background(), p, "netsight", "conflict_m[12]")
	}, s.Local(t, "conflict_m[12]", from, to, nil, true))
	if d.Acked() < to {
		t.Errorf("output stuck at %d, want >= %d", d.Acked(), to)
	}
}

// TestVictoriaMetricsInflux: VictoriaMetrics' InfluxDB v1 (/write) and v2
// (/api/v2/write) paths store <measurement>_value with the tags as labels.
func TestVictoriaMetricsInflux(t *testing.T) {
	if testing.Short() {
		t.Skip("starts victoria-metrics")
	}
	vm := receiver.VictoriaMetrics(t)
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		prefix string
		out    config.Output
	}{
		{"vone", config.Output{Name: "v1", Type: "influxdb", URL: vm.URL(""), Database: "netsight"}},
		{"vtwo", config.Output{Name: "v2", Type: "influxdb", URL: vm.URL(""), Org: "lab", Bucket: "netsight", TokenFile: tok}},
	} {
		t.Run(tc.out.Name, func(t *testing.T) {
			s := receiver.NewStore(t, series(tc.prefix), decimalValue)
			_, from, to := deliver(t, s, tc.out, prometheus.NewRegistry())
			want := s.Local(t, tc.prefix+"_.*", from, to, func(n string) string { return n + "_value" }, true)
			waitEqual(t, func() (receiver.Samples, error) {
				got, err := receiver.VMExport(context.Background(), vm, `{__name__=~"`+tc.prefix+`_.*"}`, from, to)
				for k, v := range got { // VictoriaMetrics adds the db label of v1 writes
					if strings.Contains(k.Series, `db="netsight", `) {
						delete(got, k)
						got[receiver.Key{Series: strings.Replace(k.Series, `db="netsight", `, "", 1), T: k.T}] = v
					}
				}
				return got, err
			}, want)
		})
	}
}

// dropped reads netsight_export_samples_dropped_total{reason}.
func dropped(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "netsight_export_samples_dropped_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("netsight_export_samples_dropped_total{reason=%q} not found", reason)
	return 0
}

// TestCompression: bodies are gzipped by default (Content-Encoding: gzip,
// decompressing to the line protocol Encode gives) and plain with
// compression: none.
func TestCompression(t *testing.T) {
	var b delivery.Batch
	for i := range 50 {
		ls := labels.FromStrings("__name__", "netsight_flow_retransmits_total", "direction", []string{"client", "server"}[i%2],
			"instance", "node-17.example:9101", "monitor", fmt.Sprintf("zone-%d", i%5))
		var ss []delivery.Sample
		for j := range 40 {
			ss = append(ss, delivery.Sample{T: 1_790_000_000_000 + int64(j)*10_000, V: float64(i*1000 + j*7)})
		}
		b.Series = append(b.Series, delivery.Series{Labels: ls, Samples: ss})
	}
	for _, c := range []string{"", config.CompressionGzip, config.CompressionNone} {
		var enc string
		var body []byte
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			enc = r.Header.Get("Content-Encoding")
			body, _ = io.ReadAll(r.Body)
			w.WriteHeader(http.StatusNoContent)
		}))
		s, err := influx.NewSender(config.Output{Type: "influxdb", URL: srv.URL, Database: "d", Compression: c})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(context.Background(), &b); err != nil {
			t.Fatalf("compression %q: %v", c, err)
		}
		srv.Close()
		plain, err := s.Encode(&b)
		if err != nil {
			t.Fatal(err)
		}
		got := body
		if c != config.CompressionNone {
			if enc != "gzip" {
				t.Fatalf("compression %q: Content-Encoding %q, want gzip", c, enc)
			}
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if got, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d samples: %d bytes of line protocol, %d gzipped (%.1fx)", b.Len(), len(plain), len(body), float64(len(plain))/float64(len(body)))
		} else if enc != "" {
			t.Fatalf("compression none: Content-Encoding %q", enc)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("compression %q: body differs from the encoded batch", c)
		}
	}
}
