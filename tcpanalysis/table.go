package tcpanalysis

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// Key identifies a flow independently of direction: endpoint A is the one
// that sorts first (address, then port), so both directions of a
// connection map to the same key.
type Key struct {
	AddrA, AddrB [16]byte
	PortA, PortB uint16
	Version      uint8
	Proto        uint8
}

// MakeKey returns the flow key of p and the packet's direction: 0 when the
// packet goes from endpoint A to B, 1 otherwise.
func MakeKey(p *Packet) (Key, int) {
	k := Key{Version: p.IPVersion, Proto: p.IPProto}
	c := compareAddr(&p.Src, &p.Dst)
	if c < 0 || (c == 0 && p.SrcPort <= p.DstPort) {
		k.AddrA, k.AddrB, k.PortA, k.PortB = p.Src, p.Dst, p.SrcPort, p.DstPort
		return k, 0
	}
	k.AddrA, k.AddrB, k.PortA, k.PortB = p.Dst, p.Src, p.DstPort, p.SrcPort
	return k, 1
}

// compareAddr orders two 16-byte addresses like bytes.Compare, faster.
func compareAddr(a, b *[16]byte) int {
	a0, b0 := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8])
	if a0 != b0 {
		if a0 < b0 {
			return -1
		}
		return 1
	}
	a1, b1 := binary.BigEndian.Uint64(a[8:]), binary.BigEndian.Uint64(b[8:])
	switch {
	case a1 < b1:
		return -1
	case a1 > b1:
		return 1
	}
	return 0
}

// Endpoint returns endpoint i (0 = A, 1 = B) of the key.
func (k Key) Endpoint(i int) netip.AddrPort {
	if i == 0 {
		return netip.AddrPortFrom(Addr(k.Version, k.AddrA), k.PortA)
	}
	return netip.AddrPortFrom(Addr(k.Version, k.AddrB), k.PortB)
}

// EvictReason says why a flow left the table.
type EvictReason int

// Eviction reasons.
const (
	EvictIdle     EvictReason = iota // no packet for IdleTimeout
	EvictCapacity                    // table full, least recently seen flow dropped
	EvictFlush                       // Flush at the end of a file or on shutdown
	EvictClosed                      // closed (FIN both ways, or RST) and silent for ClosedLinger
	EvictReused                      // a new connection on the same ports (a SYN with a new ISN)
	numEvictReasons
)

func (r EvictReason) String() string {
	switch r {
	case EvictIdle:
		return "idle"
	case EvictCapacity:
		return "capacity"
	case EvictFlush:
		return "flush"
	case EvictClosed:
		return "closed"
	case EvictReused:
		return "reused"
	}
	return "unknown"
}

// Defaults of Config.
const (
	DefaultMaxFlows    = 65536
	DefaultIdleTimeout = 2 * time.Minute
	// NoIdleTimeout as Config.IdleTimeout keeps open flows however long
	// they are silent (file analysis: keep-alives every 2 hours, a
	// retransmission after 5 minutes of silence must still be seen).
	NoIdleTimeout time.Duration = -1
	// ClosedLinger is how long a closed flow stays (for late segments and
	// retransmitted FINs) when open flows are not evicted for idleness.
	ClosedLinger = 2 * time.Minute
)

// Table is a bounded flow table: at most max flows, flows idle for longer
// than the timeout removed (closed flows after ClosedLinger when there is
// no timeout). When full, the least recently seen closed flow goes first,
// else the least recently seen open one. Memory is bounded by max; flow
// structs are recycled.
type Table struct {
	max     int
	idle    int64 // <= 0: open flows are never evicted for idleness
	linger  int64 // for closed flows
	onEvict func(*Flow, EvictReason)

	m          map[Key]*Flow
	head       Flow // open flows; sentinel: head.next is the most recent, head.prev the oldest
	closedHead Flow // closed flows, likewise
	free       []*Flow
	lastSweep  int64
	// last is a one-entry cache: consecutive packets mostly belong to the
	// same flow (both directions share a key).
	last *Flow

	// Evictions counts flows removed, by reason (indexed by EvictReason).
	Evictions [numEvictReasons]uint64
}

// NewTable returns an empty table. max <= 0 and idle == 0 select the
// defaults; idle < 0 (NoIdleTimeout) keeps open flows until the table is
// full.
func NewTable(max int, idle time.Duration, onEvict func(*Flow, EvictReason)) *Table {
	if max <= 0 {
		max = DefaultMaxFlows
	}
	if idle == 0 {
		idle = DefaultIdleTimeout
	}
	t := &Table{max: max, idle: int64(idle), linger: int64(ClosedLinger), onEvict: onEvict, m: make(map[Key]*Flow, min(max, 1024))}
	if idle > 0 {
		t.linger = int64(idle)
	}
	t.head.next, t.head.prev = &t.head, &t.head
	t.closedHead.next, t.closedHead.prev = &t.closedHead, &t.closedHead
	return t
}

// Len is the number of flows in the table.
func (t *Table) Len() int { return len(t.m) }

// Cap is the table's capacity.
func (t *Table) Cap() int { return t.max }

// Get returns the flow of key, creating it (and evicting to make room) if
// needed, and marks it most recently used. now is the packet time in Unix
// ns; once a second of packet time it also removes idle flows.
func (t *Table) Get(key Key, now int64) (f *Flow, created bool) {
	if (now-t.lastSweep > int64(time.Second) || now < t.lastSweep) && (t.idle > 0 || t.closedHead.next != &t.closedHead) {
		t.lastSweep = now
		t.Expire(now)
	}
	if f = t.last; f != nil && f.Key == key {
		return f, false // already the most recent
	}
	if f = t.m[key]; f != nil {
		t.last = f
		if h := t.list(f); h.next != f {
			f.unlink()
			pushFront(h, f)
		}
		return f, false
	}
	if len(t.m) >= t.max {
		if t.closedHead.prev != &t.closedHead {
			t.evict(t.closedHead.prev, EvictCapacity)
		} else {
			t.evict(t.head.prev, EvictCapacity)
		}
	}
	if n := len(t.free); n > 0 {
		f = t.free[n-1]
		t.free = t.free[:n-1]
		*f = Flow{}
	} else {
		f = &Flow{}
	}
	f.Key = key
	f.LastSeen = now
	t.m[key] = f
	pushFront(&t.head, f)
	t.last = f
	return f, true
}

func (t *Table) list(f *Flow) *Flow {
	if f.closed {
		return &t.closedHead
	}
	return &t.head
}

// MarkClosed records that f's connection ended (FIN both ways, or RST): it
// leaves the table after ClosedLinger of silence (or the idle timeout), and
// before any open flow when the table is full.
func (t *Table) MarkClosed(f *Flow) {
	if f.closed {
		return
	}
	f.unlink()
	f.closed = true
	pushFront(&t.closedHead, f)
}

// Reuse reports f to OnEvict as EvictReused and clears it for a new
// connection on the same key (port reuse), keeping its place as the most
// recent open flow.
func (t *Table) Reuse(f *Flow, now int64) {
	t.Evictions[EvictReused]++
	if t.onEvict != nil {
		t.onEvict(f, EvictReused)
	}
	f.unlink()
	*f = Flow{Key: f.Key, LastSeen: now}
	pushFront(&t.head, f)
	t.last = f
}

// Expire removes closed flows silent for longer than their linger time and,
// with an idle timeout, open flows silent for longer than it.
func (t *Table) Expire(now int64) {
	reason := EvictClosed
	if t.idle > 0 {
		reason = EvictIdle // live capture: one idle timeout for all
	}
	for f := t.closedHead.prev; f != &t.closedHead; f = t.closedHead.prev {
		if now-f.LastSeen <= t.linger {
			break
		}
		t.evict(f, reason)
	}
	if t.idle <= 0 {
		return
	}
	for f := t.head.prev; f != &t.head; f = t.head.prev {
		if now-f.LastSeen <= t.idle {
			return
		}
		t.evict(f, EvictIdle)
	}
}

// Flush removes every flow, oldest first, reporting each to OnEvict.
func (t *Table) Flush() {
	for _, h := range [2]*Flow{&t.closedHead, &t.head} {
		for f := h.prev; f != h; f = h.prev {
			t.evict(f, EvictFlush)
		}
	}
}

// Each calls fn for every flow, open flows first, most recent first. fn
// must not modify the table.
func (t *Table) Each(fn func(*Flow)) {
	for _, h := range [2]*Flow{&t.head, &t.closedHead} {
		for f := h.next; f != h; f = f.next {
			fn(f)
		}
	}
}

func (t *Table) evict(f *Flow, r EvictReason) {
	t.Evictions[r]++
	if t.last == f {
		t.last = nil
	}
	if t.onEvict != nil {
		t.onEvict(f, r)
	}
	f.unlink()
	delete(t.m, f.Key)
	if len(t.free) < 1024 {
		t.free = append(t.free, f)
	}
}

func pushFront(h, f *Flow) {
	f.prev = h
	f.next = h.next
	h.next.prev = f
	h.next = f
}

func (f *Flow) unlink() {
	f.prev.next = f.next
	f.next.prev = f.prev
	f.prev, f.next = nil, nil
}
