package flow

import "time"

// closedRing holds closed connections in the order they closed. A closed
// connection is never updated again, so it needs neither the ID index nor
// the LRU list: at high connection rates most records arrive already closed
// (short connections), and appending them in order writes memory in
// sequence instead of touching a cold index slot and a cold entry each.
// Records live in chunks; chunks the ring has left are kept for reuse (a
// few) or released.
type closedRing struct {
	chunks     []*closedChunk // (index / chunkSlots) % len(chunks)
	head, tail uint64         // next write, oldest held (monotonic)
	spare      []*closedChunk
}

const (
	chunkSlots = 1024
	maxSpare   = 4
)

type closedChunk [chunkSlots]closedRec

type closedRec struct {
	rec     Record
	updated time.Time
}

func newClosedRing(capacity int) closedRing {
	n := (capacity + chunkSlots - 1) / chunkSlots
	// The ring holds at most capacity+1 records (a connection moving from
	// the open entries), which span at most n+2 chunks.
	return closedRing{chunks: make([]*closedChunk, n+2)}
}

func (q *closedRing) len() int { return int(q.head - q.tail) }

func (q *closedRing) at(i uint64) *closedRec {
	c := q.chunks[(i/chunkSlots)%uint64(len(q.chunks))]
	return &c[i%chunkSlots]
}

// push returns the slot for the next record (the caller fills it).
func (q *closedRing) push() *closedRec {
	ci := (q.head / chunkSlots) % uint64(len(q.chunks))
	if q.chunks[ci] == nil {
		if n := len(q.spare); n > 0 {
			q.chunks[ci], q.spare = q.spare[n-1], q.spare[:n-1]
		} else {
			q.chunks[ci] = new(closedChunk)
		}
	}
	r := &q.chunks[ci][q.head%chunkSlots]
	q.head++
	return r
}

// oldest returns the oldest record (nil when empty).
func (q *closedRing) oldest() *closedRec {
	if q.head == q.tail {
		return nil
	}
	return q.at(q.tail)
}

// pop drops the oldest record; a chunk it leaves goes to the spares.
func (q *closedRing) pop() {
	r := q.at(q.tail)
	r.rec.Comm, r.rec.State, r.rec.ConnectResult = "", "", "" // drop string references
	q.tail++
	if q.tail%chunkSlots == 0 {
		// The chunk tail just left is behind head: reuse or release it.
		ci := ((q.tail - 1) / chunkSlots) % uint64(len(q.chunks))
		if c := q.chunks[ci]; c != nil {
			q.chunks[ci] = nil
			if len(q.spare) < maxSpare {
				q.spare = append(q.spare, c)
			}
		}
	}
}

// each calls fn for every record, oldest first.
func (q *closedRing) each(fn func(*closedRec)) {
	for i := q.tail; i < q.head; i++ {
		fn(q.at(i))
	}
}

// closedIDs remembers the IDs of recently closed connections (direct
// mapped: a newer ID may take an older one's place), so that a late report
// of a connection already closed (a poll racing the close) is recognised
// without keeping the connection in the index.
type closedIDs struct {
	ids  []uint64
	mask uint64
}

func newClosedIDs(capacity int) closedIDs {
	n := 64
	for n < 2*capacity {
		n *= 2
	}
	return closedIDs{ids: make([]uint64, n), mask: uint64(n - 1)}
}

// slot keeps neighbouring IDs (socket cookies come from a counter) in
// neighbouring words.
func (c *closedIDs) slot(id uint64) *uint64 { return &c.ids[id&c.mask] }

func (c *closedIDs) add(id uint64)      { *c.slot(id) = id }
func (c *closedIDs) has(id uint64) bool { return id != 0 && *c.slot(id) == id }
