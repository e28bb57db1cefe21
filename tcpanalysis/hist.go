package tcpanalysis

import (
	"sort"
	"time"
)

// Bucket upper bounds (inclusive, like Prometheus "le") of the histograms.
var (
	// PacketSizeBuckets are IP packet lengths in bytes.
	PacketSizeBuckets = []uint64{64, 128, 256, 512, 1024, 1500, 9000, 65535}
	// PayloadSizeBuckets are TCP payload lengths in bytes.
	PayloadSizeBuckets = []uint64{0, 1, 64, 256, 536, 1024, 1460, 9000, 65535}
	// RTTBuckets are RTT bounds.
	RTTBuckets = []time.Duration{
		50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
		time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
		25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
		500 * time.Millisecond, time.Second, 2500 * time.Millisecond,
	}
)

// Histogram is a fixed-bucket histogram of unsigned values. Counts are not
// cumulative: Counts[i] holds values in (Bounds[i-1], Bounds[i]], and the
// last element values above every bound.
type Histogram struct {
	Bounds []uint64 `json:"bounds"`
	Counts []uint64 `json:"counts"`
	Sum    uint64   `json:"sum"`
	Count  uint64   `json:"count"`
}

// NewHistogram returns a histogram with the given bucket bounds.
func NewHistogram(bounds []uint64) Histogram {
	return Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds)+1)}
}

// Observe adds one value.
func (h *Histogram) Observe(v uint64) {
	i := 0
	for i < len(h.Bounds) && v > h.Bounds[i] {
		i++
	}
	h.Counts[i]++
	h.Sum += v
	h.Count++
}

// Merge adds o's counts (same bounds) into h.
func (h *Histogram) Merge(o *Histogram) {
	for i := range h.Counts {
		if i < len(o.Counts) {
			h.Counts[i] += o.Counts[i]
		}
	}
	h.Sum += o.Sum
	h.Count += o.Count
}

// Cumulative returns the Prometheus-style cumulative bucket counts keyed by
// upper bound (the +Inf bucket is Count).
func (h *Histogram) Cumulative() map[float64]uint64 {
	m := make(map[float64]uint64, len(h.Bounds))
	var c uint64
	for i, b := range h.Bounds {
		c += h.Counts[i]
		m[float64(b)] = c
	}
	return m
}

// DurationHistogram is a fixed-bucket histogram of durations.
type DurationHistogram struct {
	Bounds []time.Duration `json:"bounds_ns"`
	Counts []uint64        `json:"counts"`
	Sum    time.Duration   `json:"sum_ns"`
	Count  uint64          `json:"count"`
}

// NewDurationHistogram returns a histogram with the given bucket bounds.
func NewDurationHistogram(bounds []time.Duration) DurationHistogram {
	return DurationHistogram{Bounds: bounds, Counts: make([]uint64, len(bounds)+1)}
}

// Observe adds one value.
func (h *DurationHistogram) Observe(d time.Duration) {
	i := sort.Search(len(h.Bounds), func(i int) bool { return d <= h.Bounds[i] })
	h.Counts[i]++
	h.Sum += d
	h.Count++
}

// Cumulative returns cumulative bucket counts keyed by the upper bound in
// seconds.
func (h *DurationHistogram) Cumulative() map[float64]uint64 {
	m := make(map[float64]uint64, len(h.Bounds))
	var c uint64
	for i, b := range h.Bounds {
		c += h.Counts[i]
		m[b.Seconds()] = c
	}
	return m
}
