package tcpanalysis

import (
	"time"

	"github.com/netsight/netsight/flow"
)

// Bucket upper bounds (inclusive, like Prometheus "le") of the histograms:
// the bucket sets of package flow, one per quantity.
var (
	// PacketSizeBuckets are IP packet lengths in bytes.
	PacketSizeBuckets = flow.PacketSizeBuckets
	// PayloadSizeBuckets are TCP payload lengths in bytes.
	PayloadSizeBuckets = flow.PayloadSizeBuckets
	// RTTBuckets are RTT bounds (flow.RTTBuckets as durations).
	RTTBuckets = flow.DurationBuckets(flow.RTTBuckets)
	// HandshakeBuckets are handshake time bounds (flow.HandshakeBuckets).
	HandshakeBuckets = flow.DurationBuckets(flow.HandshakeBuckets)
)

// Histogram is a histogram of unsigned values (bytes): flow.Hist, the one
// histogram type.
type Histogram = flow.Hist[uint64]

// DurationHistogram is a histogram of durations (flow.DurationHistogram).
type DurationHistogram = flow.DurationHistogram

// NewHistogram returns a histogram with the given bucket bounds.
func NewHistogram(bounds []uint64) Histogram { return flow.NewHist(bounds) }

// NewDurationHistogram returns a histogram with the given bucket bounds.
func NewDurationHistogram(bounds []time.Duration) DurationHistogram { return flow.NewHist(bounds) }
