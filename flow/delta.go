package flow

import "time"

// Delta is what one update changed in one connection: the counters' growth
// since the previous report (a counter that went down restarts from its new
// value, as the table's totals do) and the state transitions. The table
// hands it to its observer (SetObserver) under its lock; the observer must
// not keep the pointers past the call nor call back into the table.
type Delta struct {
	// Rec is the connection's latest state (attribution merged as the
	// table keeps it).
	Rec *Record
	// Now is the update's time (never earlier than the previous update's).
	Now time.Time
	// New is set on the first report of this connection (the table had no
	// entry for it); Established when it reached ESTABLISHED in this update
	// (counted in Totals.Opened); Failed when its connect failure is first
	// seen; Closed when it closed in this update.
	New, Established, Failed, Closed bool
	// Gone is set when the table dropped the connection while still open
	// (evicted or idle-expired): no counter moved, it will not report again.
	Gone bool

	BytesSent, BytesReceived, SegsOut, SegsIn uint64
	Retransmits, SynRetransmits, RTOs         uint64
	RSTSent, RSTReceived, DSACKDups           uint64
	ZeroWindowSent, ZeroWindowReceived        uint64
	BusyTime, RwndLimited, SndbufLimited      time.Duration

	// Mark is a word the observer owns for this connection (zero when the
	// connection is new), e.g. the last time slot it observed an RTT in.
	Mark *uint64
}

// SetObserver makes the table call f with every connection's delta, under
// the table's lock and without allocating (nil: no observer). The agent's
// monitors engine is the observer.
func (t *Table) SetObserver(f func(*Delta)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.observer = f
}

func counterDelta(cur, old uint64) uint64 {
	if cur >= old {
		return cur - old
	}
	return cur // counter restarted
}

func durationDelta(cur, old time.Duration) time.Duration {
	if cur >= old {
		return cur - old
	}
	return cur
}

// observe reports the rest of r's delta (the counters account() did not
// already compute) to the observer.
func (t *Table) observe(e *entry, prev, r *Record, d *Delta) {
	d.Rec = &e.rec
	d.Now = e.updated
	d.DSACKDups = counterDelta(r.DSACKDups, prev.DSACKDups)
	d.ZeroWindowSent = counterDelta(r.ZeroWindowSent, prev.ZeroWindowSent)
	d.ZeroWindowReceived = counterDelta(r.ZeroWindowReceived, prev.ZeroWindowReceived)
	d.BusyTime = durationDelta(r.BusyTime, prev.BusyTime)
	d.RwndLimited = durationDelta(r.RwndLimited, prev.RwndLimited)
	d.SndbufLimited = durationDelta(r.SndbufLimited, prev.SndbufLimited)
	d.Mark = &e.mark
	t.observer(d)
}

// observeGone tells the observer an open connection left the table.
func (t *Table) observeGone(e *entry) {
	if t.observer == nil || e.rec.Closed {
		return
	}
	d := &t.delta
	*d = Delta{Rec: &e.rec, Now: t.lastNow, Gone: true, Mark: &e.mark}
	t.observer(d)
}
