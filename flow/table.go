package flow

import (
	"cmp"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Config bounds a Table.
type Config struct {
	// MaxEntries bounds the connections held (open and recently closed).
	// When full, the least recently updated entry is evicted.
	MaxEntries int
	// IdleTimeout drops an open connection that no back end reported for
	// this long (its socket vanished without a close event).
	IdleTimeout time.Duration
	// Retention keeps closed connections this long for the flow API.
	Retention time.Duration
	// TopK is the number of folded groups an Interval keeps; the rest are
	// summed into Interval.Other.
	TopK int
	// MaxGroups bounds the folded groups tracked within one interval;
	// connections beyond it go straight to Other.
	MaxGroups int
	// NotablePerReason bounds the closed connections kept after Retention
	// because they mattered (NotableClosed), per reason.
	NotablePerReason int
}

// DefaultConfig returns the bounds used by the flows collector.
func DefaultConfig() Config {
	return Config{MaxEntries: 65536, IdleTimeout: 2 * time.Minute, Retention: 30 * time.Second, TopK: 10, MaxGroups: 16384}
}

// Totals are monotonic counters since the table was made, indexed by
// Direction (DirUnknown, DirClient, DirServer).
type Totals struct {
	Opened, Closed                  [3]uint64
	ConnectFailures                 [3]uint64
	Retransmits, SynRetransmits     [3]uint64
	RTOs                            [3]uint64
	BytesSent, BytesReceived        [3]uint64
	SegsOut, SegsIn                 [3]uint64
	RSTSent, RSTReceived            [3]uint64
	RTT                             [3]Histogram
	ConnectLatency                  Histogram
	Evicted, IdleExpired, Entries   uint64
	StaleIgnored, GroupOverflowConn uint64
}

// GroupKey is a connection with the client's ephemeral port folded away.
type GroupKey struct {
	Local, Remote netip.Addr
	ServerPort    uint16
	Direction     Direction
}

// Group sums what the connections of one GroupKey did in an interval.
type Group struct {
	Key GroupKey
	// Other is set on the bucket that sums every group beyond the top K.
	Other bool
	// Connections is the number of distinct connections active in the
	// interval; Opened of them were new.
	Connections, Opened, ConnectFailures uint64
	Retransmits, RTOs                    uint64
	BytesSent, BytesReceived             uint64
	// MaxSRTT is the largest smoothed RTT among the connections.
	MaxSRTT time.Duration
}

// LossEvents is the primary score: retransmissions, timeouts and failed
// connects in the interval.
func (g *Group) LossEvents() uint64 { return g.Retransmits + g.RTOs + g.ConnectFailures }

func (g *Group) add(o *Group) {
	g.Connections += o.Connections
	g.Opened += o.Opened
	g.ConnectFailures += o.ConnectFailures
	g.Retransmits += o.Retransmits
	g.RTOs += o.RTOs
	g.BytesSent += o.BytesSent
	g.BytesReceived += o.BytesReceived
	g.MaxSRTT = max(g.MaxSRTT, o.MaxSRTT)
}

// Interval is the result of one Roll.
type Interval struct {
	Start, End time.Time
	// Top are the first TopK groups by score: loss events, then max SRTT,
	// then bytes, descending.
	Top []Group
	// Other sums every group not in Top (Other.Other is true).
	Other Group
}

type entry struct {
	rec Record
	entryState
}

// entryState is an entry's bookkeeping, reset apart from the record when an
// entry is reused.
type entryState struct {
	updated    time.Time
	prev, next *entry // LRU list, least recently updated first; next links the free list
	opened     bool   // counted in Totals.Opened
	failed     bool   // counted in Totals.ConnectFailures
	closed     bool   // counted in Totals.Closed
	// The per-interval fields below are valid while gen equals the
	// table's gen; Roll starts a new interval by bumping the table's gen
	// instead of visiting every entry.
	gen      uint64
	inGroup  bool   // counted in this interval's groups
	rttSeen  bool   // RTT observed this interval
	active   bool   // changed during this interval
	grp      *Group // this interval's group (with inGroup)
	lastSRTT time.Duration
	mark     uint64 // the observer's word (Delta.Mark)
}

// Table holds connections. It is safe for concurrent use.
type Table struct {
	cfg Config

	mu      sync.Mutex
	entries idIndex // ID -> entry
	lru     lruList
	// free are entries that left the table, linked by next, for the next
	// new connections: no allocation per new connection while
	// connections come and go. It holds at most as many entries as the
	// table plus freeSlack, so the memory of a burst is released once the
	// burst's connections have left.
	free    *entry
	freeLen int
	// closed holds the closed connections (the index and lru only open
	// ones); closedIDs recognises late reports of them.
	closed    closedRing
	closedIDs closedIDs
	scratch   entry  // bookkeeping of a connection first seen closed
	gen       uint64 // current interval, starts at 1
	lastNow   time.Time
	// touched are the entries first updated while open in this interval
	// (the ones Roll may observe an RTT for); stale pointers (evicted or
	// reused entries) are recognised by their gen. Past touchedMax Roll
	// walks the whole table instead.
	touched         []*entry
	touchedOverflow bool
	source          string // the source feeding the table (SetSource)
	notable         *Notable
	totals          Totals
	groups          map[GroupKey]*Group
	overflow        Group
	lastRoll        time.Time
	observer        func(*Delta) // SetObserver
	delta           Delta        // reused for every observer call
}

// NewTable returns an empty table; zero fields of cfg take DefaultConfig's.
func NewTable(cfg Config) *Table {
	def := DefaultConfig()
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = def.MaxEntries
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = def.IdleTimeout
	}
	if cfg.Retention <= 0 {
		cfg.Retention = def.Retention
	}
	if cfg.TopK <= 0 {
		cfg.TopK = def.TopK
	}
	if cfg.MaxGroups <= 0 {
		cfg.MaxGroups = def.MaxGroups
	}
	t := &Table{cfg: cfg, groups: map[GroupKey]*Group{}, lastRoll: time.Now(), gen: 1, notable: NewNotable(cfg.NotablePerReason),
		closed: newClosedRing(cfg.MaxEntries), closedIDs: newClosedIDs(cfg.MaxEntries)}
	for i := range t.totals.RTT {
		t.totals.RTT[i] = NewHistogram(RTTBuckets)
	}
	t.totals.ConnectLatency = NewHistogram(HandshakeBuckets)
	return t
}

// Config returns the table's bounds.
func (t *Table) Config() Config { return t.cfg }

// Upsert records the latest state of a connection. Counters that went down
// (a reused ID) restart from the new values. An update for a connection
// already closed is ignored unless it is itself a close (late poll
// results racing a close event).
func (t *Table) Upsert(r Record, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.upsert(&r, now)
}

// UpsertBatch is Upsert for each record, under one lock and with one
// timestamp (the high-rate path of the eBPF back end).
func (t *Table) UpsertBatch(recs []Record, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range recs {
		t.upsert(&recs[i], now)
	}
}

// upsert may modify *in (the caller's copy).
func (t *Table) upsert(in *Record, now time.Time) {
	r := in
	// Entries are kept in update order (the LRU list and the closed ring),
	// which expiry relies on: never let the clock go back.
	if now.Before(t.lastNow) {
		now = t.lastNow
	} else {
		t.lastNow = now
	}
	e, ok := t.entries.get(r.ID)
	if !ok && t.closedIDs.has(r.ID) {
		// Already closed: a late poll result or a second close.
		t.totals.StaleIgnored++
		return
	}
	prev := &zeroRecord
	if ok {
		t.lru.moveToBack(e)
		prev = &e.rec
		// Keep attribution learnt earlier when a later report lacks it.
		if r.PID == 0 && prev.PID != 0 {
			r.PID, r.Comm, r.CgroupID = prev.PID, prev.Comm, prev.CgroupID
		}
		if r.Start.IsZero() {
			r.Start = prev.Start
		}
		if r.NetNS == 0 {
			r.NetNS = prev.NetNS
		}
		if r.MaxRTT < prev.MaxRTT {
			r.MaxRTT = prev.MaxRTT
		}
		if prev.MinRTT > 0 && (r.MinRTT == 0 || prev.MinRTT < r.MinRTT) {
			r.MinRTT = prev.MinRTT
		}
	}
	if r.Closed {
		// Closed connections move to the closed ring: appended in order,
		// never updated again.
		if !ok {
			if t.held() >= t.cfg.MaxEntries {
				t.evictOldest()
			}
			e = &t.scratch
			e.entryState = entryState{}
		}
		slot := t.closed.push()
		e.updated = now
		t.account(e, prev, r, &slot.rec, !ok)
		slot.updated = now
		t.closedIDs.add(r.ID)
		if ok {
			t.dropEntry(e)
		}
		return
	}
	if !ok {
		if t.held() >= t.cfg.MaxEntries {
			t.evictOldest()
		}
		if e = t.free; e != nil {
			t.free = e.next
			t.freeLen--
			e.entryState = entryState{}
		} else {
			e = &entry{}
		}
		t.lru.pushBack(e)
		t.entries.put(r.ID, e)
	}
	e.updated = now
	t.account(e, prev, r, &e.rec, !ok)
}

// held is the number of connections held, open and closed.
func (t *Table) held() int { return t.entries.len() + t.closed.len() }

// zeroRecord is the previous state of a new connection (read only).
var zeroRecord Record

// account counts r's changes since prev and stores r in dst (e's record, or
// the closed ring's slot); prev may be &e.rec (read before it is
// overwritten).
func (t *Table) account(e *entry, prev, r *Record, dst *Record, isNew bool) {
	d := r.Direction
	tt := &t.totals
	dl := &t.delta
	*dl = Delta{New: isNew}
	if e.gen != t.gen {
		e.gen = t.gen
		e.inGroup, e.rttSeen, e.active = false, false, false
		if !r.Closed {
			if len(t.touched) < 2*t.cfg.MaxEntries {
				t.touched = append(t.touched, e)
			} else {
				t.touchedOverflow = true
			}
		}
	}
	k := GroupKey{Local: r.Local.Addr().Unmap(), Remote: r.Remote.Addr().Unmap(), ServerPort: r.ServerPort(), Direction: r.Direction}
	g := e.grp
	if !e.inGroup || g.Key != k {
		g = t.group(&k)
		e.grp = g
	}
	if !e.inGroup {
		e.inGroup = true
		g.Connections++
	}
	e.active = true
	if r.ConnectFailed && !e.failed {
		e.failed = true
		dl.Failed = true
		tt.ConnectFailures[d]++
		g.ConnectFailures++
	}
	established := !r.ConnectFailed && r.State != "syn_sent" && r.State != "syn_recv"
	if established && !e.opened {
		e.opened = true
		dl.Established = true
		tt.Opened[d]++
		g.Opened++
		if r.ConnectLatency > 0 {
			tt.ConnectLatency.Observe(r.ConnectLatency.Seconds())
		}
	}
	if r.Closed && !e.closed {
		e.closed = true
		dl.Closed = true
		if e.opened {
			tt.Closed[d]++
		}
		if r.End.IsZero() {
			r.End = e.updated
		}
	}
	add := func(tot *[3]uint64, cur, old uint64) uint64 {
		var delta uint64
		if cur >= old {
			delta = cur - old
		} else {
			delta = cur // counter restarted
		}
		tot[d] += delta
		return delta
	}
	dl.Retransmits = add(&tt.Retransmits, r.Retransmits, prev.Retransmits)
	g.Retransmits += dl.Retransmits
	dl.SynRetransmits = add(&tt.SynRetransmits, r.SynRetransmits, prev.SynRetransmits)
	dl.RTOs = add(&tt.RTOs, r.RTOs, prev.RTOs)
	g.RTOs += dl.RTOs
	dl.BytesSent = add(&tt.BytesSent, r.BytesSent, prev.BytesSent)
	g.BytesSent += dl.BytesSent
	dl.BytesReceived = add(&tt.BytesReceived, r.BytesReceived, prev.BytesReceived)
	g.BytesReceived += dl.BytesReceived
	dl.SegsOut = add(&tt.SegsOut, r.SegsOut, prev.SegsOut)
	dl.SegsIn = add(&tt.SegsIn, r.SegsIn, prev.SegsIn)
	dl.RSTSent = add(&tt.RSTSent, r.RSTSent, prev.RSTSent)
	dl.RSTReceived = add(&tt.RSTReceived, r.RSTReceived, prev.RSTReceived)
	g.MaxSRTT = max(g.MaxSRTT, r.SRTT)
	if r.SRTT > 0 {
		e.lastSRTT = r.SRTT
	}
	// One RTT observation per connection per interval, made on close
	// (short connections) or at the Roll (long ones).
	if r.Closed && !e.rttSeen && e.lastSRTT > 0 {
		e.rttSeen = true
		tt.RTT[d].Observe(e.lastSRTT.Seconds())
	}
	if t.observer != nil {
		t.observerDeltas(prev, r, dl)
	}
	*dst = *r
	if t.observer != nil {
		dl.Rec, dl.Now, dl.Mark = dst, e.updated, &e.mark
		t.observer(dl)
	}
}

func (t *Table) group(k *GroupKey) *Group {
	if g, ok := t.groups[*k]; ok {
		return g
	}
	if len(t.groups) >= t.cfg.MaxGroups {
		t.totals.GroupOverflowConn++
		return &t.overflow
	}
	g := &Group{Key: *k}
	t.groups[*k] = g
	return g
}

// evictOldest makes room: it drops the least recently updated connection,
// the oldest closed one or the least recently updated open one.
func (t *Table) evictOldest() {
	c := t.closed.oldest()
	e := t.lru.head
	if c == nil && e == nil {
		return
	}
	t.totals.Evicted++
	if c != nil && (e == nil || !e.updated.Before(c.updated)) {
		t.popClosed()
		return
	}
	t.observeGone(e)
	t.dropEntry(e)
}

// popClosed drops the oldest closed connection; it is kept if it mattered
// (account gave every closed record its End).
func (t *Table) popClosed() {
	c := t.closed.oldest()
	t.notable.Offer(&c.rec)
	t.closed.pop()
}

// dropEntry removes an entry from the index and the LRU list and keeps it
// for reuse.
func (t *Table) dropEntry(e *entry) {
	e.gen = 0 // stale in touched
	t.lru.remove(e)
	t.entries.del(e.rec.ID)
	if t.freeLen < t.entries.len()+freeSlack {
		e.rec.Comm = "" // the one string that is not a constant
		e.next = t.free
		t.free = e
		t.freeLen++
	}
}

// freeSlack is how many free entries the table keeps beyond the number it
// holds.
const freeSlack = 1024

// lruList is an intrusive doubly linked list of entries (no allocation per
// element).
type lruList struct{ head, tail *entry }

func (l *lruList) pushBack(e *entry) {
	e.prev, e.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = e
	} else {
		l.head = e
	}
	l.tail = e
}

func (l *lruList) remove(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (l *lruList) moveToBack(e *entry) {
	if l.tail == e {
		return
	}
	l.remove(e)
	l.pushBack(e)
}

// Roll ends the current interval: it observes the RTT of connections still
// open, expires closed and idle entries, and returns the interval's top-K
// groups and the "other" bucket.
func (t *Table) Roll(now time.Time) Interval {
	t.mu.Lock()
	defer t.mu.Unlock()
	iv := Interval{Start: t.lastRoll, End: now, Other: t.overflow}
	iv.Other.Other = true
	t.lastRoll = now

	// One RTT observation for each connection active in the interval and
	// not observed at its close.
	observe := func(e *entry) {
		if e.gen == t.gen && e.active && !e.rttSeen && e.lastSRTT > 0 && !e.rec.ConnectFailed {
			e.rttSeen = true
			t.totals.RTT[e.rec.Direction].Observe(e.lastSRTT.Seconds())
		}
	}
	if t.touchedOverflow {
		for e := t.lru.head; e != nil; e = e.next {
			observe(e)
		}
	} else {
		for _, e := range t.touched {
			observe(e)
		}
	}
	clear(t.touched)
	t.touched = t.touched[:0]
	t.touchedOverflow = false
	t.gen++
	t.expire(now)

	top := NewTopN(t.cfg.TopK, compareGroups)
	for _, g := range t.groups {
		if d, ok := top.Offer(*g); ok {
			iv.Other.add(&d)
		}
	}
	iv.Top = top.Sorted()
	clear(t.groups)
	t.overflow = Group{}
	return iv
}

// Expire removes closed entries older than Retention and open ones idle
// for IdleTimeout, without ending the interval (for a table no one rolls:
// a host where only capture feeds it).
func (t *Table) Expire(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire(now)
}

// expire drops closed connections older than Retention (the closed ring
// is in close order) and open ones idle for IdleTimeout (the LRU list is in
// update order: the walk stops at the first entry updated since).
func (t *Table) expire(now time.Time) {
	for c := t.closed.oldest(); c != nil && now.Sub(c.updated) >= t.cfg.Retention; c = t.closed.oldest() {
		t.popClosed()
	}
	for e := t.lru.head; e != nil && now.Sub(e.updated) >= t.cfg.IdleTimeout; e = t.lru.head {
		t.observeGone(e)
		t.dropEntry(e)
		t.totals.IdleExpired++
	}
	// Release what a burst left on the free list.
	for t.freeLen > t.entries.len()+freeSlack {
		e := t.free
		t.free, e.next = e.next, nil
		t.freeLen--
	}
}

// SetSource names the source feeding the table ("ebpf", "sockdiag",
// "capture"); the flow API reports it.
func (t *Table) SetSource(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.source = name
}

// Source is the name set by SetSource ("" when none).
func (t *Table) Source() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.source
}

func compareGroups(a, b Group) int {
	if c := cmp.Compare(b.LossEvents(), a.LossEvents()); c != 0 {
		return c
	}
	if c := cmp.Compare(b.MaxSRTT, a.MaxSRTT); c != 0 {
		return c
	}
	if c := cmp.Compare(b.BytesSent+b.BytesReceived, a.BytesSent+a.BytesReceived); c != 0 {
		return c
	}
	// Deterministic order for equal scores.
	if c := a.Key.Remote.Compare(b.Key.Remote); c != 0 {
		return c
	}
	if c := a.Key.Local.Compare(b.Key.Local); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Key.ServerPort, b.Key.ServerPort); c != 0 {
		return c
	}
	return cmp.Compare(a.Key.Direction, b.Key.Direction)
}

// Totals returns a copy of the monotonic counters.
func (t *Table) Totals() Totals {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.totals
	for i := range out.RTT {
		out.RTT[i] = out.RTT[i].Clone()
	}
	out.ConnectLatency = out.ConnectLatency.Clone()
	out.Entries = uint64(t.held())
	return out
}

// Len returns the number of connections held.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.held()
}

// Filter selects connections for Flows. Zero fields match everything.
type Filter struct {
	// Remote matches the remote address (a prefix: a single address is a
	// /32 or /128).
	Remote netip.Prefix
	// Port matches the local or the remote port.
	Port uint16
	// MinRetransmits keeps connections with at least this many.
	MinRetransmits uint64
	// Direction keeps one direction (DirUnknown: both).
	Direction Direction
	// NetNS keeps the connections of one network namespace (its inode;
	// 0: all).
	NetNS uint32
	// Limit caps the result (0: no cap).
	Limit int
}

// Match reports whether r passes the filter.
func (f *Filter) Match(r *Record) bool {
	if f.Remote.IsValid() && !f.Remote.Contains(r.Remote.Addr().Unmap()) {
		return false
	}
	if f.Port != 0 && r.Local.Port() != f.Port && r.Remote.Port() != f.Port {
		return false
	}
	if r.Retransmits < f.MinRetransmits {
		return false
	}
	if f.Direction != DirUnknown && r.Direction != f.Direction {
		return false
	}
	if f.NetNS != 0 && r.NetNS != f.NetNS {
		return false
	}
	return true
}

// Flows returns the connections held (open, and closed within Retention)
// that match f, most retransmissions first, then most recent first.
func (t *Table) Flows(f Filter) []Record {
	t.mu.Lock()
	out := make([]Record, 0, min(t.held(), 1024))
	for e := t.lru.head; e != nil; e = e.next {
		if f.Match(&e.rec) {
			out = append(out, e.rec)
		}
	}
	t.closed.each(func(c *closedRec) {
		if f.Match(&c.rec) {
			out = append(out, c.rec)
		}
	})
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b Record) int {
		if c := cmp.Compare(b.Retransmits, a.Retransmits); c != 0 {
			return c
		}
		if c := b.Start.Compare(a.Start); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out
}

// NotableClosed returns the closed connections that mattered and have left
// the table (see Notable), closed at or after since.
func (t *Table) NotableClosed(since time.Time) []NotableRecord {
	return t.notable.Since(since, time.Now())
}
