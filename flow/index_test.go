package flow

import (
	"math/rand/v2"
	"testing"
)

// TestIDIndexMatchesMap drives the index and a Go map with the same random
// inserts and deletes (clustered IDs, so probe runs wrap and shift) and
// compares every lookup.
func TestIDIndexMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var ix idIndex
	ref := map[uint64]*entry{}
	for i := range 200000 {
		id := rng.Uint64N(3000)
		switch rng.IntN(3) {
		case 0, 1:
			e := &entry{}
			ix.put(id, e)
			ref[id] = e
		case 2:
			ix.del(id)
			delete(ref, id)
		}
		if ix.len() != len(ref) {
			t.Fatalf("step %d: len %d, want %d", i, ix.len(), len(ref))
		}
		if i%1000 == 0 {
			for k := range uint64(3000) {
				got, ok := ix.get(k)
				want, wok := ref[k]
				if ok != wok || got != want {
					t.Fatalf("step %d: get(%d) = %p,%v want %p,%v", i, k, got, ok, want, wok)
				}
			}
		}
	}
	for k := range ref {
		ix.del(k)
	}
	if ix.len() != 0 {
		t.Fatalf("len %d after deleting all", ix.len())
	}
	for _, s := range ix.slots {
		if s.e != nil {
			t.Fatal("slot not cleared")
		}
	}
}
