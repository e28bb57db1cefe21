package ebpf

import (
	"testing"
	"unsafe"
)

// fakeRing is a closeRing over Go memory, written the way emit_close
// writes the kernel's: reserve i, seq = 0, record, seq = i + 1.
type fakeRing struct {
	r    closeRing
	head uint64
}

func newFakeRing(slots int) *fakeRing {
	f := &fakeRing{}
	f.r.slots = uint64(slots)
	f.r.recs.mem = make([]byte, slots*int(recSize))
	f.r.head.mem = make([]byte, 64)
	return f
}

func (f *fakeRing) slot(i uint64) *flowClosedRec {
	return (*flowClosedRec)(unsafe.Pointer(&f.r.recs.mem[uintptr(i&(f.r.slots-1))*recSize]))
}

// reserve takes record i without publishing it.
func (f *fakeRing) reserve() uint64 {
	i := f.head
	f.head++
	*f.r.head.word(0) = f.head
	f.slot(i).Seq = 0
	return i
}

func (f *fakeRing) publish(i uint64) {
	s := f.slot(i)
	s.C = flowConn{Cookie: i + 1000}
	s.Seq = i + 1
}

func (f *fakeRing) write(n int) {
	for range n {
		f.publish(f.reserve())
	}
}

func (f *fakeRing) drain(limit int) []uint64 {
	var got []uint64
	var buf flowConn
	f.r.drain(&buf, limit, func(c *flowConn) { got = append(got, c.Cookie-1000) })
	return got
}

func TestCloseRing(t *testing.T) {
	f := newFakeRing(8)
	if got := f.drain(100); len(got) != 0 {
		t.Fatalf("empty ring: got %v", got)
	}
	f.write(5)
	if got := f.drain(3); len(got) != 3 || got[0] != 0 || got[2] != 2 {
		t.Fatalf("limit 3: got %v", got)
	}
	if got := f.drain(100); len(got) != 2 || got[0] != 3 || got[1] != 4 {
		t.Fatalf("rest: got %v", got)
	}

	// A record reserved and not yet published ends the drain; the next
	// drain resumes there, in order.
	i := f.reserve()
	f.write(2)
	if got := f.drain(100); len(got) != 0 {
		t.Fatalf("unpublished head: got %v", got)
	}
	f.publish(i)
	if got := f.drain(100); len(got) != 3 || got[0] != 5 || got[2] != 7 {
		t.Fatalf("after publish: got %v", got)
	}
	if f.r.lost.Load() != 0 {
		t.Fatalf("lost %d, want 0", f.r.lost.Load())
	}

	// The writer laps the reader: 8 + 5 records into 8 slots; the oldest
	// 5 are lost, the last 8 read.
	f.write(13)
	got := f.drain(100)
	if len(got) != 8 || got[0] != 13 || got[7] != 20 || f.r.lost.Load() != 5 {
		t.Fatalf("lapped: got %v, lost %d", got, f.r.lost.Load())
	}

	// A record never published (cannot happen with a live program) is
	// skipped after maxWaits drains and counted lost.
	f.reserve()
	f.write(1)
	for range maxWaits - 1 {
		if got := f.drain(100); len(got) != 0 {
			t.Fatalf("stuck record: got %v", got)
		}
	}
	if got := f.drain(100); len(got) != 1 || got[0] != 22 || f.r.lost.Load() != 6 {
		t.Fatalf("after maxWaits: got %v, lost %d", got, f.r.lost.Load())
	}
}

func TestRingSlots(t *testing.T) {
	for _, tc := range []struct{ bytes, want uint32 }{
		{4096, 64}, {1 << 20, 4096}, {4 << 20, 16384}, {64 * uint32(recSize), 64}, {128*uint32(recSize) - 1, 64}, {128 * uint32(recSize), 128},
	} {
		if got := ringSlots(tc.bytes); got != tc.want {
			t.Errorf("ringSlots(%d) = %d, want %d", tc.bytes, got, tc.want)
		}
	}
}

// BenchmarkRingDrain is the user-space cost of reading one closed record
// from the shared ring (snapshot copy and checks), without the decode.
func BenchmarkRingDrain(b *testing.B) {
	f := newFakeRing(4096)
	var buf flowConn
	n := 0
	for b.Loop() {
		if f.head == f.r.tail {
			b.StopTimer()
			f.write(4096)
			b.StartTimer()
		}
		n += f.r.drain(&buf, 1, func(*flowConn) {})
	}
	if n == 0 {
		b.Fatal("nothing read")
	}
}
