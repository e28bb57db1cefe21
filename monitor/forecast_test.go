package monitor

import (
	"math"
	"testing"
	"time"
)

func TestForecastExhaustion(t *testing.T) {
	t0 := time.Unix(0, 0)
	for _, tc := range []struct {
		name    string
		samples []float64 // one per 10s
		limit   uint64
		want    float64
	}{
		{"growing", []float64{100, 200, 300, 400}, 1400, 100},         // 10/s, 1000 left
		{"flat", []float64{500, 500, 500}, 1000, math.Inf(1)},         // not growing
		{"shrinking", []float64{500, 400, 300}, 1000, math.Inf(1)},    // shrinking
		{"one sample", []float64{500}, 1000, math.Inf(1)},             // unknown
		{"full", []float64{900, 1000}, 1000, 0},                       // at the limit
		{"unlimited", []float64{1, 2, 3}, 0, math.Inf(1)},             // nf_conntrack_max 0
		{"noisy growth", []float64{100, 90, 300, 280, 500}, 10000, 0}, // checked below: finite
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := Forecast{Window: time.Hour}
			var last uint64
			for i, v := range tc.samples {
				f.Add(t0.Add(time.Duration(i)*10*time.Second), uint64(v))
				last = uint64(v)
			}
			got := f.Exhaustion(last, tc.limit)
			if tc.name == "noisy growth" {
				if math.IsInf(got, 0) || got <= 0 {
					t.Errorf("got %v, want finite > 0", got)
				}
				return
			}
			if math.Abs(got-tc.want) > 1e-6 && !(math.IsInf(got, 1) && math.IsInf(tc.want, 1)) {
				t.Errorf("Exhaustion = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestForecastWindowBounded(t *testing.T) {
	f := Forecast{Window: time.Minute, MaxSamples: 50}
	t0 := time.Unix(0, 0)
	for i := 0; i < 1000; i++ {
		f.Add(t0.Add(time.Duration(i)*time.Second), uint64(i))
	}
	if len(f.ts) > 50 {
		t.Errorf("kept %d samples, want <= 50", len(f.ts))
	}
	if span := f.ts[len(f.ts)-1].Sub(f.ts[0]); span > time.Minute {
		t.Errorf("window spans %s, want <= 1m", span)
	}
	// Old growth must not mask a flat recent minute.
	for i := 1000; i < 1100; i++ {
		f.Add(t0.Add(time.Duration(i)*time.Second), 1000)
	}
	if r, _ := f.Rate(); r != 0 {
		t.Errorf("rate after a flat minute = %v, want 0", r)
	}
}
