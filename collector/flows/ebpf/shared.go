package ebpf

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	cebpf "github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The kernel side shares the hot window (`hot_keys`, `hot`), the ring of
// closed connections (`closed`) and its head counter (`head`) with user
// space through mmap (see flow.bpf.c): reading them takes no system call.
// The programs write while user space reads, so a copy (made of atomic
// 64-bit loads) counts only if the slot's key or sequence word is the same
// before and after it.

const (
	connWords = unsafe.Sizeof(flowConn{}) / 8
	recSize   = unsafe.Sizeof(flowClosedRec{})
)

// Compile-time checks: the records are made of whole 64-bit words, which
// the snapshot copy relies on.
var (
	_ [0]struct{} = [unsafe.Sizeof(flowConn{}) % 8]struct{}{}
	_ [0]struct{} = [unsafe.Sizeof(flowClosedRec{}) % 8]struct{}{}
	_ [0]struct{} = [unsafe.Offsetof(flowClosedRec{}.C) - 8]struct{}{}
)

// ringSlots returns the closed-connection ring's slots for about bytes of
// memory: a power of two, at least 64.
func ringSlots(bytes uint32) uint32 {
	n := uint32(64)
	for uint64(n)*2*uint64(recSize) <= uint64(bytes) {
		n *= 2
	}
	return n
}

// mapping is one mmapped array.
type mapping struct {
	mem []byte
}

func mmapArray(m *cebpf.Map, writable bool) (mapping, error) {
	stride := (uint64(m.ValueSize()) + 7) &^ 7
	size := stride * uint64(m.MaxEntries())
	page := uint64(unix.Getpagesize())
	size = (size + page - 1) &^ (page - 1)
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	mem, err := unix.Mmap(m.FD(), 0, int(size), prot, unix.MAP_SHARED)
	if err != nil {
		return mapping{}, fmt.Errorf("mmap map %s: %w", m.String(), err)
	}
	return mapping{mem: mem}, nil
}

func (mp *mapping) unmap() error {
	if mp.mem == nil {
		return nil
	}
	err := unix.Munmap(mp.mem)
	mp.mem = nil
	return err
}

func (mp *mapping) word(off uintptr) *uint64 {
	return (*uint64)(unsafe.Pointer(&mp.mem[off]))
}

// loadConn copies the entry at p with atomic 64-bit loads.
func loadConn(dst *flowConn, p unsafe.Pointer) {
	d := (*[connWords]uint64)(unsafe.Pointer(dst))
	s := (*[connWords]uint64)(p)
	for i := range d {
		d[i] = atomic.LoadUint64(&s[i])
	}
}

// closeRing reads the ring of closed connections. One reader.
type closeRing struct {
	recs, head mapping
	slots      uint64
	tail       uint64 // next record to read
	lost       atomic.Uint64
	waits      int // drains that stopped at the same unpublished record
}

// maxWaits is how many drains (at the flush interval) may stop at one
// record reserved and never published before it is skipped as lost; a
// program publishes within microseconds, so this only guards against a
// reader stuck for good.
const maxWaits = 20

// drain calls fn for every published record after the last one read, in
// order, up to limit records; it returns how many it delivered. A record
// reserved but not yet published (its program is still copying it) ends the
// drain: the next one resumes there. Records overwritten before they were
// read (the reader fell more than a lap behind) are counted in lost.
func (r *closeRing) drain(buf *flowConn, limit int, fn func(*flowConn)) int {
	h := atomic.LoadUint64(r.head.word(0))
	if h-r.tail > r.slots {
		r.lost.Add(h - r.tail - r.slots)
		r.tail = h - r.slots
	}
	base := unsafe.Pointer(&r.recs.mem[0])
	n := 0
	for r.tail < h && n < limit {
		p := unsafe.Add(base, uintptr(r.tail&(r.slots-1))*recSize)
		seq := (*uint64)(p)
		s := atomic.LoadUint64(seq)
		want := r.tail + 1
		if s != want {
			if s == 0 || s < want {
				// Reserved, not yet published.
				if r.waits++; r.waits < maxWaits {
					break
				}
				r.lost.Add(1)
				r.tail++
				r.waits = 0
				continue
			}
			// A later lap's record: this one was overwritten.
			r.lost.Add(1)
			r.tail++
			continue
		}
		loadConn(buf, unsafe.Add(p, 8))
		if atomic.LoadUint64(seq) != want {
			r.lost.Add(1) // overwritten while copied
			r.tail++
			continue
		}
		r.tail++
		r.waits = 0
		n++
		fn(buf)
	}
	return n
}

// Sizes shared with flow.bpf.c's hot window.
const (
	hotSlots  = 8       // cookies per bucket (SLOTS)
	busyBit   = 1 << 63 // slot being filled (BUSY)
	closedBit = 1 << 62 // closed, to read and free (CLOSED)
)

// hotBuckets sizes the hot window for a table of maxConns: small enough to
// stay warm in cache (1,024 buckets: 8,192 connections, 1.8 MiB), large
// enough that the socket cookies handed out meanwhile (per CPU, so several
// runs walk the window at once) rarely come back to a bucket still held:
// with 512 buckets 5-8% of the churn bench's connections found theirs full,
// with 1,024 under 0.5%.
func hotBuckets(maxConns uint32) uint32 {
	return min(1024, max(8, maxConns/64))
}

// hotWindow reads the kernel's hot window: keys (read-write: user space
// frees the slots of closed connections) and entries.
type hotWindow struct {
	keys, conns mapping
	buckets     uint32
}

// each calls fn with a snapshot of every open connection in the window.
func (w *hotWindow) each(buf *flowConn, fn func(*flowConn)) {
	kbase := unsafe.Pointer(&w.keys.mem[0])
	cbase := unsafe.Pointer(&w.conns.mem[0])
	for i := range uintptr(w.buckets) * hotSlots {
		kp := (*uint64)(unsafe.Add(kbase, i*8))
		k := atomic.LoadUint64(kp)
		if k == 0 || k&(busyBit|closedBit) != 0 {
			continue
		}
		loadConn(buf, unsafe.Add(cbase, i*unsafe.Sizeof(flowConn{})))
		// Closed (and maybe reused) while copied: skip; the close is
		// read by harvest.
		if atomic.LoadUint64(kp) != k || buf.Cookie != k {
			continue
		}
		fn(buf)
	}
}

// harvest calls fn with every closed connection in the window (up to
// limit) and frees its slot; it returns how many. The kernel does not touch
// a closed slot until it is freed, so the copy needs no check.
func (w *hotWindow) harvest(buf *flowConn, limit int, fn func(*flowConn)) int {
	kbase := unsafe.Pointer(&w.keys.mem[0])
	cbase := unsafe.Pointer(&w.conns.mem[0])
	n := 0
	for i := range uintptr(w.buckets) * hotSlots {
		if n == limit {
			break
		}
		kp := (*uint64)(unsafe.Add(kbase, i*8))
		k := atomic.LoadUint64(kp)
		if k&closedBit == 0 || k&busyBit != 0 {
			continue
		}
		loadConn(buf, unsafe.Add(cbase, i*unsafe.Sizeof(flowConn{})))
		atomic.StoreUint64(kp, 0)
		n++
		fn(buf)
	}
	return n
}
