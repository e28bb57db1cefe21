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
	}
	return "unknown"
}

// Defaults of Config.
const (
	DefaultMaxFlows    = 65536
	DefaultIdleTimeout = 2 * time.Minute
)

// Table is a bounded flow table: at most max flows, least recently seen
// first out, flows idle for longer than the timeout removed. Memory is
// bounded by max; flow structs are recycled.
type Table struct {
	max     int
	idle    int64
	onEvict func(*Flow, EvictReason)

	m         map[Key]*Flow
	head      Flow // sentinel: head.next is the most recent, head.prev the oldest
	free      []*Flow
	lastSweep int64
	// last is a one-entry cache: consecutive packets mostly belong to the
	// same flow (both directions share a key).
	last *Flow

	// Evictions counts flows removed, by reason (indexed by EvictReason).
	Evictions [numEvictReasons]uint64
}

// NewTable returns an empty table. max <= 0 and idle <= 0 select the
// defaults.
func NewTable(max int, idle time.Duration, onEvict func(*Flow, EvictReason)) *Table {
	if max <= 0 {
		max = DefaultMaxFlows
	}
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	t := &Table{max: max, idle: int64(idle), onEvict: onEvict, m: make(map[Key]*Flow, min(max, 1024))}
	t.head.next, t.head.prev = &t.head, &t.head
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
	if now-t.lastSweep > int64(time.Second) || now < t.lastSweep {
		t.lastSweep = now
		t.Expire(now)
	}
	if f = t.last; f != nil && f.Key == key {
		return f, false // already the most recent
	}
	if f = t.m[key]; f != nil {
		t.last = f
		if t.head.next != f {
			f.unlink()
			t.pushFront(f)
		}
		return f, false
	}
	if len(t.m) >= t.max {
		t.evict(t.head.prev, EvictCapacity)
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
	t.pushFront(f)
	t.last = f
	return f, true
}

// Expire removes flows whose last packet is older than now minus the idle
// timeout.
func (t *Table) Expire(now int64) {
	for f := t.head.prev; f != &t.head; f = t.head.prev {
		if now-f.LastSeen <= t.idle {
			return
		}
		t.evict(f, EvictIdle)
	}
}

// Flush removes every flow, oldest first, reporting each to OnEvict.
func (t *Table) Flush() {
	for f := t.head.prev; f != &t.head; f = t.head.prev {
		t.evict(f, EvictFlush)
	}
}

// Each calls fn for every flow, most recent first. fn must not modify the
// table.
func (t *Table) Each(fn func(*Flow)) {
	for f := t.head.next; f != &t.head; f = f.next {
		fn(f)
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

func (t *Table) pushFront(f *Flow) {
	f.prev = &t.head
	f.next = t.head.next
	t.head.next.prev = f
	t.head.next = f
}

func (f *Flow) unlink() {
	f.prev.next = f.next
	f.next.prev = f.prev
	f.prev, f.next = nil, nil
}
