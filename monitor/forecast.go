package monitor

import (
	"math"
	"time"
)

// Forecast estimates the time until the table is full from recent samples
// of the entry count, by a least-squares line over a sliding window.
type Forecast struct {
	Window time.Duration
	// MaxSamples bounds memory; older samples are dropped first.
	MaxSamples int
	ts         []time.Time
	vs         []float64
}

// Add records a sample.
func (f *Forecast) Add(t time.Time, entries uint64) {
	f.ts = append(f.ts, t)
	f.vs = append(f.vs, float64(entries))
	cut := 0
	for cut < len(f.ts)-2 && t.Sub(f.ts[cut]) > f.Window {
		cut++
	}
	max := f.MaxSamples
	if max <= 2 {
		max = 512
	}
	if n := len(f.ts) - cut; n > max {
		cut += n - max
	}
	if cut > 0 {
		f.ts = append(f.ts[:0], f.ts[cut:]...)
		f.vs = append(f.vs[:0], f.vs[cut:]...)
	}
}

// Rate returns the growth in entries per second and whether there were
// enough samples (at least two, spread over time).
func (f *Forecast) Rate() (float64, bool) {
	n := len(f.ts)
	if n < 2 {
		return 0, false
	}
	t0 := f.ts[0]
	var sx, sy, sxx, sxy float64
	for i := range f.ts {
		x := f.ts[i].Sub(t0).Seconds()
		sx += x
		sy += f.vs[i]
		sxx += x * x
		sxy += x * f.vs[i]
	}
	fn := float64(n)
	den := fn*sxx - sx*sx
	if den <= 0 {
		return 0, false
	}
	return (fn*sxy - sx*sy) / den, true
}

// Exhaustion returns the seconds until entries reach limit at the current
// rate: 0 when already full, +Inf when not growing or unlimited.
func (f *Forecast) Exhaustion(entries, limit uint64) float64 {
	if limit == 0 {
		return math.Inf(1)
	}
	if entries >= limit {
		return 0
	}
	rate, ok := f.Rate()
	if !ok || rate <= 0 {
		return math.Inf(1)
	}
	return float64(limit-entries) / rate
}
