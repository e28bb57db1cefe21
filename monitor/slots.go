package monitor

import (
	"time"

	"github.com/netsight/netsight/flow"
)

// Slot widths and how many of each the engine keeps: 10 s slots for 5
// minutes, 1 min slots for 1 hour.
const (
	FineSlot     = 10 * time.Second
	FineSlots    = 30
	CoarseSlot   = time.Minute
	CoarseSlots  = 60
	fineWidth    = int64(FineSlot / time.Second)
	coarseWidth  = int64(CoarseSlot / time.Second)
	rttBucketLen = 16 // len(flow.RTTBuckets)+1
)

func init() {
	if len(flow.RTTBuckets)+1 != rttBucketLen || len(flow.HandshakeBuckets)+1 != rttBucketLen {
		panic("monitor: rttBucketLen does not match flow.RTTBuckets")
	}
}

// hist is a compact histogram over flow.RTTBuckets (counts per bucket, the
// last +Inf, and the sum in seconds).
type hist struct {
	counts [rttBucketLen]uint32
	sum    float64
}

func bucketOf(v float64) int {
	b := flow.RTTBuckets
	lo, hi := 0, len(b)
	for lo < hi { // first bound >= v
		m := (lo + hi) / 2
		if b[m] < v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func (h *hist) observe(i int, v float64) {
	h.counts[i]++
	h.sum += v
}

func (h *hist) merge(o *hist) {
	for i := range h.counts {
		h.counts[i] += o.counts[i]
	}
	h.sum += o.sum
}

func (h *hist) count() uint64 {
	var n uint64
	for _, c := range h.counts {
		n += uint64(c)
	}
	return n
}

// histogram converts to the shared type.
func (h *hist) histogram() flow.Histogram {
	out := flow.NewHistogram(flow.RTTBuckets)
	for i, c := range h.counts {
		out.Counts[i] = uint64(c)
		out.Count += uint64(c)
	}
	out.Sum = h.sum
	return out
}

// quantile estimates the q-quantile (linear within the bucket; the +Inf
// bucket answers its lower bound); 0 without observations.
func (h *hist) quantile(q float64) float64 {
	n := h.count()
	if n == 0 {
		return 0
	}
	rank := q * float64(n)
	var c float64
	b := flow.RTTBuckets
	for i, k := range h.counts {
		if k == 0 {
			continue
		}
		if c+float64(k) >= rank {
			if i == len(b) {
				return b[len(b)-1]
			}
			lo := 0.0
			if i > 0 {
				lo = b[i-1]
			}
			return lo + (b[i]-lo)*(rank-c)/float64(k)
		}
		c += float64(k)
	}
	return b[len(b)-1]
}

// acc is what one scope or group did in one slot.
type acc struct {
	bytesSent, bytesRecv, segsOut, segsIn uint64
	retrans, synRetrans, rtos, dsack      uint64
	// newConns were first seen in the slot, closed closed (or left the
	// table while open), opened established.
	newConns, closed, opened          uint64
	ok, refused, timeout, reset, estR uint64
	busy, rwnd, sndbuf                time.Duration
	zwSent, zwRecv                    uint64
	recvQMax                          uint32
	minRTT                            time.Duration
	rtt, hs                           hist
}

// lite is the coarse (1 min) slot of a group: what the top contributors
// rank by.
type lite struct {
	bytesSent, bytesRecv       uint64
	retrans, rtos              uint64
	newConns, closed, failures uint64
	rtt                        hist
}

// obs is one delta, prepared once and added to every scope and group it
// counts in.
type obs struct {
	d                        *flow.Delta
	rttBucket, hsBucket      int // -1: no observation
	rtt, hs                  float64
	ok, refused, timeout, rs bool
	estReset                 bool
}

func (a *acc) add(o *obs) {
	d := o.d
	a.bytesSent += d.BytesSent
	a.bytesRecv += d.BytesReceived
	a.segsOut += d.SegsOut
	a.segsIn += d.SegsIn
	a.retrans += d.Retransmits
	a.synRetrans += d.SynRetransmits
	a.rtos += d.RTOs
	a.dsack += d.DSACKDups
	if d.New {
		a.newConns++
	}
	if d.Closed || d.Gone {
		a.closed++
	}
	if d.Established {
		a.opened++
	}
	a.ok += b2u(o.ok)
	a.refused += b2u(o.refused)
	a.timeout += b2u(o.timeout)
	a.reset += b2u(o.rs)
	a.estR += b2u(o.estReset)
	a.busy += d.BusyTime
	a.rwnd += d.RwndLimited
	a.sndbuf += d.SndbufLimited
	a.zwSent += d.ZeroWindowSent
	a.zwRecv += d.ZeroWindowReceived
	a.recvQMax = max(a.recvQMax, d.Rec.RecvQueue)
	if m := d.Rec.MinRTT; m > 0 && (a.minRTT == 0 || m < a.minRTT) {
		a.minRTT = m
	}
	if o.rttBucket >= 0 {
		a.rtt.observe(o.rttBucket, o.rtt)
	}
	if o.hsBucket >= 0 {
		a.hs.observe(o.hsBucket, o.hs)
	}
}

func (a *acc) merge(o *acc) {
	a.bytesSent += o.bytesSent
	a.bytesRecv += o.bytesRecv
	a.segsOut += o.segsOut
	a.segsIn += o.segsIn
	a.retrans += o.retrans
	a.synRetrans += o.synRetrans
	a.rtos += o.rtos
	a.dsack += o.dsack
	a.newConns += o.newConns
	a.closed += o.closed
	a.opened += o.opened
	a.ok += o.ok
	a.refused += o.refused
	a.timeout += o.timeout
	a.reset += o.reset
	a.estR += o.estR
	a.busy += o.busy
	a.rwnd += o.rwnd
	a.sndbuf += o.sndbuf
	a.zwSent += o.zwSent
	a.zwRecv += o.zwRecv
	a.recvQMax = max(a.recvQMax, o.recvQMax)
	if o.minRTT > 0 && (a.minRTT == 0 || o.minRTT < a.minRTT) {
		a.minRTT = o.minRTT
	}
	a.rtt.merge(&o.rtt)
	a.hs.merge(&o.hs)
}

func (l *lite) add(o *obs) {
	d := o.d
	l.bytesSent += d.BytesSent
	l.bytesRecv += d.BytesReceived
	l.retrans += d.Retransmits
	l.rtos += d.RTOs
	if d.New {
		l.newConns++
	}
	if d.Closed || d.Gone {
		l.closed++
	}
	l.failures += b2u(o.refused || o.timeout || o.rs)
	if o.rttBucket >= 0 {
		l.rtt.observe(o.rttBucket, o.rtt)
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// ring keeps the slots that saw activity, oldest first, for the last n
// slots (sparse: an idle scope or group holds none).
type ring[T any] struct {
	slots []slot[T]
}

type slot[T any] struct {
	idx int64 // slot number: unix seconds / width
	v   T
}

// at returns the slot idx, creating it (and dropping slots older than n)
// when it is newer than the last; an older idx (a clock step back) folds
// into the last slot.
func (r *ring[T]) at(idx int64, n int) *T {
	if k := len(r.slots); k > 0 {
		last := &r.slots[k-1]
		if idx <= last.idx {
			return &last.v
		}
	}
	drop := 0
	for drop < len(r.slots) && r.slots[drop].idx <= idx-int64(n) {
		drop++
	}
	if drop == len(r.slots) && drop > 0 {
		r.slots = r.slots[:0]
	} else if drop > 0 {
		r.slots = r.slots[:copy(r.slots, r.slots[drop:])]
	}
	if len(r.slots) == cap(r.slots) {
		// Grow by doubling, but never past n: the memory bound is exact.
		grown := make([]slot[T], len(r.slots), min(max(2*cap(r.slots), 1), n))
		copy(grown, r.slots)
		r.slots = grown
	}
	var zero slot[T]
	zero.idx = idx
	r.slots = append(r.slots, zero)
	return &r.slots[len(r.slots)-1].v
}

// each calls f for the slots with from <= idx <= to.
func (r *ring[T]) each(from, to int64, f func(*T)) {
	for i := range r.slots {
		if s := &r.slots[i]; s.idx >= from && s.idx <= to {
			f(&s.v)
		}
	}
}

func (r *ring[T]) reset() { r.slots = r.slots[:0] }
