package remotewrite_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/netsight/netsight/internal/receiver"
)

// BenchmarkCatchUp1h measures how fast a one-hour backlog (200 series at
// the default 5s interval: 144,000 samples) reaches VictoriaMetrics after
// an outage. Run: go test -run x -bench CatchUp1h -benchtime 1x ./export/remotewrite/
func BenchmarkCatchUp1h(b *testing.B) {
	vm := receiver.VictoriaMetrics(b)
	var series []labels.Labels
	for i := 0; i < 200; i++ {
		series = append(series, labels.FromStrings("__name__", fmt.Sprintf("catchup_m%d_total", i%10), "i", strconv.Itoa(i), "zone", "eu-west-1a"))
	}
	s := receiver.NewStore(b, series, decimalValue)
	now := time.Now().Truncate(time.Second)
	from := now.Add(-time.Hour).UnixMilli()
	for ts := from; ts <= now.UnixMilli(); ts += 5000 {
		s.Add(b, ts)
	}
	b.ResetTimer()
	total := 0
	for b.Loop() {
		dir := b.TempDir()
		if err := os.WriteFile(dir+"/rw.cursor.json", fmt.Appendf(nil, `{"acked_ms": %d}`, from-1), 0o600); err != nil {
			b.Fatal(err)
		}
		d := newDelivery(b, s, vm.URL("/api/v1/write"), 1, dir, 5*time.Second)
		if err := d.Round(context.Background()); err != nil {
			b.Fatal(err)
		}
		total += 200 * int(time.Hour/(5*time.Second))
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "samples/s")
}
