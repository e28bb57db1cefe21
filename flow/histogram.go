package flow

import (
	"encoding/json"
	"math"
	"slices"
	"time"
)

// Value is what a Hist counts: seconds or bytes as float64, bytes as
// uint64, or a time.Duration.
type Value interface {
	~float64 | ~uint64 | ~int64
}

// Hist is netsight's one histogram type: fixed upper bounds (inclusive,
// like Prometheus "le"), non-cumulative counts, sum and count. It is not
// safe for concurrent use (its owner guards it). The flow table, the live
// capture and `netsight analyze` all use it, with the bucket sets below.
type Hist[T Value] struct {
	Bounds []T      // upper bounds, ascending
	Counts []uint64 // per bucket (not cumulative); len(Bounds)+1, last is +Inf
	Sum    T
	Count  uint64
}

// Histogram is a histogram of float64 values (seconds).
type Histogram = Hist[float64]

// DurationHistogram is a histogram of durations.
type DurationHistogram = Hist[time.Duration]

// NewHist returns an empty histogram with the given bounds.
func NewHist[T Value](bounds []T) Hist[T] {
	return Hist[T]{Bounds: bounds, Counts: make([]uint64, len(bounds)+1)}
}

// NewHistogram returns an empty float64 histogram with the given bounds.
func NewHistogram(bounds []float64) Histogram { return NewHist(bounds) }

// Observe adds one value.
func (h *Hist[T]) Observe(v T) {
	i, _ := slices.BinarySearch(h.Bounds, v) // first bound >= v
	h.Counts[i]++
	h.Sum += v
	h.Count++
}

// Merge adds o's counts (same bounds) into h.
func (h *Hist[T]) Merge(o *Hist[T]) {
	for i := range h.Counts {
		if i < len(o.Counts) {
			h.Counts[i] += o.Counts[i]
		}
	}
	h.Sum += o.Sum
	h.Count += o.Count
}

// Cumulative returns the Prometheus-style cumulative bucket counts keyed by
// upper bound (without +Inf; durations in seconds).
func (h *Hist[T]) Cumulative() map[float64]uint64 {
	out := make(map[float64]uint64, len(h.Bounds))
	var c uint64
	for i, b := range h.Bounds {
		c += h.Counts[i]
		out[toFloat(b)] = c
	}
	return out
}

// SumFloat is Sum as Prometheus wants it (durations in seconds).
func (h *Hist[T]) SumFloat() float64 { return toFloat(h.Sum) }

// Clone returns a deep copy.
func (h Hist[T]) Clone() Hist[T] {
	h.Counts = append([]uint64(nil), h.Counts...)
	return h
}

// MarshalJSON writes {"bounds", "counts", "sum", "count"}; a duration
// histogram writes its bounds and sum in seconds (floats) as
// "bounds_seconds" and "sum_seconds" (the `netsight analyze --json` format:
// seconds as *_seconds floats, never nanoseconds).
func (h Hist[T]) MarshalJSON() ([]byte, error) {
	if _, ok := any(h.Sum).(time.Duration); ok {
		bounds := make([]float64, len(h.Bounds))
		for i, b := range h.Bounds {
			bounds[i] = toFloat(b)
		}
		return json.Marshal(struct {
			Bounds []float64 `json:"bounds_seconds"`
			Counts []uint64  `json:"counts"`
			Sum    float64   `json:"sum_seconds"`
			Count  uint64    `json:"count"`
		}{bounds, h.Counts, toFloat(h.Sum), h.Count})
	}
	return json.Marshal(struct {
		Bounds []T      `json:"bounds"`
		Counts []uint64 `json:"counts"`
		Sum    T        `json:"sum"`
		Count  uint64   `json:"count"`
	}{h.Bounds, h.Counts, h.Sum, h.Count})
}

func toFloat[T Value](v T) float64 {
	if d, ok := any(v).(time.Duration); ok {
		return d.Seconds()
	}
	return float64(v)
}

// The bucket sets, one per quantity.
var (
	// RTTBuckets are the bounds (seconds) of every RTT histogram: kernel
	// flows, probes and live capture.
	RTTBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
	// HandshakeBuckets are the bounds (seconds) of connect latency and
	// handshake times: the RTT set, since a handshake is one round trip.
	HandshakeBuckets = RTTBuckets
	// PacketSizeBuckets are IP packet lengths in bytes.
	PacketSizeBuckets = []uint64{64, 128, 256, 512, 1024, 1500, 9000, 65535}
	// PayloadSizeBuckets are TCP payload lengths in bytes.
	PayloadSizeBuckets = []uint64{0, 1, 64, 256, 536, 1024, 1460, 9000, 65535}
)

// DurationBuckets converts bounds in seconds to durations (rounded to the
// nanosecond).
func DurationBuckets(seconds []float64) []time.Duration {
	out := make([]time.Duration, len(seconds))
	for i, s := range seconds {
		out[i] = time.Duration(math.Round(s * float64(time.Second)))
	}
	return out
}
