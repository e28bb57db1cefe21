package remotewrite_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/export/delivery"
	"github.com/netsight/netsight/export/remotewrite"
	"github.com/netsight/netsight/internal/receiver"
)

func openStore(t testing.TB, n int, value func(int, int64) float64) *receiver.Store {
	t.Helper()
	var series []labels.Labels
	for i := 0; i < n; i++ {
		series = append(series, labels.FromStrings("__name__", fmt.Sprintf("rwtest_m%d", i%4),
			"i", strconv.Itoa(i), "job", "netsight", "path", `a "quoted" \ value, with=signs`))
	}
	return receiver.NewStore(t, series, value)
}

// fullValue is awkward on purpose: fractions with 17 significant digits,
// integers above 2^53, tiny and negative numbers. Prometheus stores float64
// bit for bit.
func fullValue(i int, ts int64) float64 {
	switch i % 4 {
	case 0:
		return float64(ts/1000) + 0.1
	case 1:
		return -float64(i) * 1e-9 * float64(ts%977)
	case 2:
		return math.Pow(2, 60) + float64(ts)
	}
	return float64(ts%1000) / 3
}

// decimalValue has at most 15 significant decimal digits: VictoriaMetrics
// stores a float64 as a decimal mantissa and exponent, which rounds values
// with more digits (e.g. -7.614000000000001e-06 comes back -7.614e-06).
func decimalValue(i int, ts int64) float64 {
	switch i % 4 {
	case 0:
		return float64(ts/1000) + 0.25
	case 1:
		return -float64(ts%977) / 1024
	case 2:
		return math.Pow(2, 50) + float64(ts%1000)
	}
	return float64(ts%1000) / 8
}

func newDelivery(t testing.TB, src delivery.Source, url string, version int, dir string, interval time.Duration) *delivery.Delivery {
	t.Helper()
	snd, err := remotewrite.NewSender(config.Output{Name: "rw", Type: "remote_write", URL: url, Version: version}.WithDefaults(interval))
	if err != nil {
		t.Fatal(err)
	}
	d, err := delivery.New(delivery.Options{Name: "rw", Dir: dir, Source: src, Sender: snd, Interval: interval, Lag: interval,
		KeepStale: true, MaxSamplesPerSend: 500, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second,
		Logger: slog.New(slog.NewTextHandler(tlog{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type readFunc func(ctx context.Context, p *receiver.Proc, match string, start, end int64) (receiver.Samples, error)

// waitEqual polls the receiver until it holds exactly want.
func waitEqual(t *testing.T, p *receiver.Proc, read readFunc, want receiver.Samples, from, to int64) receiver.Samples {
	t.Helper()
	var got receiver.Samples
	var diff string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		var err error
		got, err = read(context.Background(), p, `{__name__=~"rwtest_.*"}`, from, to)
		if err != nil {
			diff = err.Error()
			continue
		}
		if diff = receiver.Diff(got, want); diff == "" {
			return got
		}
	}
	t.Fatalf("receiver samples differ from the store's over [%d, %d]:\n%s\nreceiver log:\n%s", from, to, diff, p.Logs())
	return nil
}

// backfill writes five minutes of 1s samples and delivers them in one round.
func backfill(t *testing.T, url string, version int, value func(int, int64) float64) (*receiver.Store, int64, int64) {
	s := openStore(t, 40, value)
	now := time.Now().Truncate(time.Second)
	from, to := now.Add(-5*time.Minute).UnixMilli(), now.UnixMilli()
	for ts := from; ts <= to; ts += 1000 {
		s.Add(t, ts)
	}
	dir := t.TempDir()
	// Start the cursor before the data: a 5-minute backlog.
	if err := os.WriteFile(dir+"/rw.cursor.json", fmt.Appendf(nil, `{"acked_ms": %d}`, from-1), 0o600); err != nil {
		t.Fatal(err)
	}
	d2 := newDelivery(t, s, url, version, dir, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	if err := d2.Round(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("delivered %d samples in %v", 40*((to-from)/1000+1), time.Since(start))
	return s, from, to - 1000 // Round reads up to now-lag
}

// TestVictoriaMetricsExact: five minutes of samples read back raw from
// VictoriaMetrics' /api/v1/export equal the store's, exactly.
func TestVictoriaMetricsExact(t *testing.T) {
	if testing.Short() {
		t.Skip("starts victoria-metrics")
	}
	vm := receiver.VictoriaMetrics(t)
	s, from, to := backfill(t, vm.URL("/api/v1/write"), 1, decimalValue)
	want := s.Local(t, "rwtest_.*", from, to, nil, false)
	if len(want) != 40*int((to-from)/1000+1) {
		t.Fatalf("store holds %d samples", len(want))
	}
	waitEqual(t, vm, receiver.VMExport, want, from, to)
}

// TestPrometheusExact: the same against Prometheus' remote-write receiver.
func TestPrometheusExact(t *testing.T) {
	if testing.Short() {
		t.Skip("starts prometheus")
	}
	p := receiver.Prometheus(t)
	s, from, to := backfill(t, p.URL("/api/v1/write"), 1, fullValue)
	waitEqual(t, p, receiver.PromRaw, s.Local(t, "rwtest_.*", from, to, nil, false), from, to)
}

// TestReceiverOutageNoGap: samples are written every second while the
// delivery runs; VictoriaMetrics is stopped for an outage (2m, the figure, or
// NETSIGHT_EXPORT_OUTAGE) and started again. Afterwards it holds exactly
// the store's samples, so no series has a gap over 1.5x the interval.
func TestReceiverOutageNoGap(t *testing.T) {
	if testing.Short() {
		t.Skip("starts victoria-metrics")
	}
	outage := 2 * time.Minute
	if v := os.Getenv("NETSIGHT_EXPORT_OUTAGE"); v != "" {
		var err error
		if outage, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	vm := receiver.VictoriaMetrics(t)
	s := openStore(t, 20, decimalValue)
	interval := time.Second
	d := newDelivery(t, s, vm.URL("/api/v1/write"), 1, t.TempDir(), interval)
	first := time.Now().Truncate(time.Second).UnixMilli()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var last int64
	wg.Add(1)
	go func() { // the store's scrape loop
		defer wg.Done()
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			ts := time.Now().Truncate(time.Millisecond).UnixMilli()
			s.Add(t, ts)
			last = ts
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
		}
	}()
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	vm.Stop()
	t.Logf("receiver down for %s", outage)
	time.Sleep(outage)
	vm.Start()
	time.Sleep(5 * time.Second)
	cancel()
	wg.Wait()
	for deadline := time.Now().Add(time.Minute); d.Acked() < last && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
	}
	sctx, c2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer c2()
	_ = d.Shutdown(sctx)
	want := s.Local(t, "rwtest_.*", first-1000, last, nil, false)
	got := waitEqual(t, vm, receiver.VMExport, want, first-1000, last)
	if gap := maxGap(got); gap > interval*3/2 {
		t.Errorf("largest gap between two samples of a series: %v > 1.5x interval", gap)
	}
}

// maxGap is the largest step between consecutive samples of any series.
func maxGap(s receiver.Samples) time.Duration {
	per := map[string][]int64{}
	for k := range s {
		per[k.Series] = append(per[k.Series], k.T)
	}
	var gap int64
	for _, ts := range per {
		sortInt64(ts)
		for i := 1; i < len(ts); i++ {
			gap = max(gap, ts[i]-ts[i-1])
		}
	}
	return time.Duration(gap) * time.Millisecond
}

func sortInt64(s []int64) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

type tlog struct{ t testing.TB }

func (l tlog) Write(b []byte) (int, error) { l.t.Log(string(b)); return len(b), nil }
