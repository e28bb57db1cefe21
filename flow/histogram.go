package flow

import "sort"

// Histogram is a cumulative histogram with fixed bounds (not safe for
// concurrent use; the Table guards it).
type Histogram struct {
	Bounds []float64 // upper bounds, ascending
	Counts []uint64  // per bucket (not cumulative); len(Bounds)+1, last is +Inf
	Sum    float64
	Count  uint64
}

// NewHistogram returns an empty histogram with the given bounds.
func NewHistogram(bounds []float64) Histogram {
	return Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds)+1)}
}

// Observe adds one value.
func (h *Histogram) Observe(v float64) {
	i := sort.SearchFloat64s(h.Bounds, v) // first bound >= v
	h.Counts[i]++
	h.Sum += v
	h.Count++
}

// Cumulative returns the Prometheus-style cumulative bucket counts keyed by
// upper bound (without +Inf).
func (h *Histogram) Cumulative() map[float64]uint64 {
	out := make(map[float64]uint64, len(h.Bounds))
	var c uint64
	for i, b := range h.Bounds {
		c += h.Counts[i]
		out[b] = c
	}
	return out
}

// Clone returns a deep copy.
func (h Histogram) Clone() Histogram {
	h.Counts = append([]uint64(nil), h.Counts...)
	return h
}
