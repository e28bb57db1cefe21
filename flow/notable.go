package flow

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// Why a closed connection is kept after the table's Retention.
const (
	NotableRetransmits = "retransmissions"
	NotableRTOs        = "rtos"
	NotableFailed      = "failed"
	NotableBytes       = "bytes"
)

var notableReasons = [...]string{reasonRetransmits: NotableRetransmits, reasonRTOs: NotableRTOs, reasonFailed: NotableFailed, reasonBytes: NotableBytes}

// DefaultNotablePerReason is how many closed connections Notable keeps per
// reason.
const DefaultNotablePerReason = 64

// NotableMaxAge is how long Notable keeps a closed connection at most: the
// dashboard's longest time range.
const NotableMaxAge = 7 * 24 * time.Hour

// NotableRecord is a closed connection that mattered and why (one or more
// of NotableRetransmits, NotableRTOs, NotableFailed, NotableBytes).
type NotableRecord struct {
	Record
	Reasons []string
}

// Notable keeps the closed connections that mattered after they leave the
// table (Retention, 30 s by default), so the flow API and the dashboard can
// show them for a whole time range: per reason, the perReason connections
// with the most retransmissions, the most RTOs, the most bytes, and the
// most recent failed connects. Memory is bounded by 4 x perReason records;
// each Offer costs at most 4 x perReason comparisons. Safe for concurrent
// use.
type Notable struct {
	mu        sync.Mutex
	perReason int
	buckets   [len(notableReasons)][]notableEntry
	low       [len(notableReasons)]int // index of each full bucket's lowest entry
}

type notableEntry struct {
	score uint64
	rec   Record
}

// NewNotable returns a keeper of perReason connections per reason
// (DefaultNotablePerReason when <= 0).
func NewNotable(perReason int) *Notable {
	if perReason <= 0 {
		perReason = DefaultNotablePerReason
	}
	return &Notable{perReason: perReason}
}

// Indexes of notableReasons.
const (
	reasonRetransmits = iota
	reasonRTOs
	reasonFailed
	reasonBytes
)

func notableScore(reason int, r *Record) uint64 {
	switch reason {
	case reasonRetransmits:
		return r.Retransmits
	case reasonRTOs:
		return r.RTOs
	case reasonFailed:
		if !r.ConnectFailed {
			return 0
		}
		return uint64(max(r.End.UnixNano(), 1)) // the most recent failures
	default:
		return r.BytesSent + r.BytesReceived
	}
}

// Offer considers a closed connection (r.End set: when it closed).
func (n *Notable) Offer(r *Record) {
	if n == nil || !r.Closed {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := range n.buckets {
		s := notableScore(i, r)
		if s == 0 {
			continue
		}
		b := n.buckets[i]
		if len(b) < n.perReason {
			n.buckets[i] = append(b, notableEntry{s, *r})
			if len(b)+1 == n.perReason {
				n.low[i] = lowest(n.buckets[i])
			}
			continue
		}
		// Full: O(1) for a connection that does not rank, O(perReason)
		// to replace the lowest and find the next one.
		if s > b[n.low[i]].score {
			b[n.low[i]] = notableEntry{s, *r}
			n.low[i] = lowest(b)
		}
	}
}

func lowest(b []notableEntry) int {
	low := 0
	for j := range b {
		if b[j].score < b[low].score || (b[j].score == b[low].score && b[j].rec.End.Before(b[low].rec.End)) {
			low = j
		}
	}
	return low
}

// Since returns the kept connections that closed at or after since (and
// within NotableMaxAge of now), each once with every reason it is kept for,
// the most recently closed first. Older ones are dropped.
func (n *Notable) Since(since, now time.Time) []NotableRecord {
	if n == nil {
		return nil
	}
	oldest := now.Add(-NotableMaxAge)
	n.mu.Lock()
	byID := map[uint64]int{}
	var out []NotableRecord
	for i := range n.buckets {
		b := n.buckets[i][:0]
		for _, e := range n.buckets[i] {
			if e.rec.End.Before(oldest) {
				continue // aged out
			}
			b = append(b, e)
			if e.rec.End.Before(since) {
				continue
			}
			if k, ok := byID[e.rec.ID]; ok && out[k].End.Equal(e.rec.End) {
				out[k].Reasons = append(out[k].Reasons, notableReasons[i])
				continue
			}
			byID[e.rec.ID] = len(out)
			out = append(out, NotableRecord{Record: e.rec, Reasons: []string{notableReasons[i]}})
		}
		clear(n.buckets[i][len(b):])
		n.buckets[i] = b
		if len(b) > 0 {
			n.low[i] = lowest(b)
		}
	}
	n.mu.Unlock()
	slices.SortFunc(out, func(a, b NotableRecord) int {
		if c := b.End.Compare(a.End); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}

// Len is the number of records held (a connection kept for two reasons
// counts twice).
func (n *Notable) Len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := 0
	for _, b := range n.buckets {
		l += len(b)
	}
	return l
}
