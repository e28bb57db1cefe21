package flow

// idIndex maps connection IDs to entries: open addressing with linear
// probing and backward-shift deletion. Unlike a Go map it leaves no
// tombstones, so a table that evicts one entry for every insert (short
// connections into a full table, the common case at high connection rates)
// keeps short probe sequences: a miss costs about one cache line instead of
// a long probe through deleted slots.
type idIndex struct {
	slots []idSlot // len is a power of two; nil entry = empty
	mask  uint64
	n     int
}

type idSlot struct {
	id uint64
	e  *entry
}

const idIndexMinSlots = 64

// home returns id's first slot. Socket cookies come from a kernel
// counter, so connections opened one after another have neighbouring IDs:
// within each run of 4 IDs the offset is kept, so they share a cache line
// of slots (fewer misses at each lookup, insert and delete at a high
// connection rate), while the runs themselves are spread by a hash, so that
// no pattern of IDs can pile up in one place. Longer runs were slower:
// runs placed at random overlap, and linear probing then walks whole runs.
func (ix *idIndex) home(id uint64) uint64 {
	return (hashID(id>>2)<<2 + id) & ix.mask
}

// hashID is the 64-bit finalizer of MurmurHash3.
func hashID(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

func (ix *idIndex) len() int { return ix.n }

func (ix *idIndex) get(id uint64) (*entry, bool) {
	if ix.n == 0 {
		return nil, false
	}
	for i := ix.home(id); ; i = (i + 1) & ix.mask {
		s := &ix.slots[i]
		if s.e == nil {
			return nil, false
		}
		if s.id == id {
			return s.e, true
		}
	}
}

// put inserts or replaces id. The load factor stays at most 1/2.
func (ix *idIndex) put(id uint64, e *entry) {
	if (ix.n+1)*2 > len(ix.slots) {
		ix.grow()
	}
	for i := ix.home(id); ; i = (i + 1) & ix.mask {
		s := &ix.slots[i]
		if s.e == nil {
			s.id, s.e = id, e
			ix.n++
			return
		}
		if s.id == id {
			s.e = e
			return
		}
	}
}

func (ix *idIndex) grow() {
	old := ix.slots
	size := max(idIndexMinSlots, 2*len(old))
	ix.slots = make([]idSlot, size)
	ix.mask = uint64(size - 1)
	ix.n = 0
	for _, s := range old {
		if s.e != nil {
			ix.put(s.id, s.e)
		}
	}
}

// del removes id and shifts the following run of slots back so that every
// remaining key stays reachable from its home slot.
func (ix *idIndex) del(id uint64) {
	if ix.n == 0 {
		return
	}
	i := ix.home(id)
	for {
		s := &ix.slots[i]
		if s.e == nil {
			return
		}
		if s.id == id {
			break
		}
		i = (i + 1) & ix.mask
	}
	ix.n--
	for j := (i + 1) & ix.mask; ; j = (j + 1) & ix.mask {
		s := ix.slots[j]
		if s.e == nil {
			break
		}
		home := ix.home(s.id)
		// Move s into the hole at i unless its home lies cyclically in
		// (i, j]: then it must stay where it is.
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			ix.slots[i] = s
			i = j
		}
	}
	ix.slots[i] = idSlot{}
}
