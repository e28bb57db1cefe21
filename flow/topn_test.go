package flow

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestTopN(t *testing.T) {
	desc := func(a, b int) int { return cmp.Compare(b, a) }
	for _, tc := range []struct {
		name      string
		n         int
		in        []int
		want      []int
		wantOther int // sum of the dropped items
	}{
		{"empty", 3, nil, []int{}, 0},
		{"zero n keeps nothing", 0, []int{4, 2}, []int{}, 6},
		{"negative n keeps nothing", -1, []int{4}, []int{}, 4},
		{"fewer than n", 5, []int{3, 9, 1}, []int{9, 3, 1}, 0},
		{"exactly n", 3, []int{3, 9, 1}, []int{9, 3, 1}, 0},
		{"more than n", 2, []int{5, 1, 9, 3}, []int{9, 5}, 4},
		{"ties kept once each", 2, []int{7, 7, 7}, []int{7, 7}, 7},
		{"ascending input", 3, []int{1, 2, 3, 4, 5, 6}, []int{6, 5, 4}, 6},
		{"descending input", 3, []int{6, 5, 4, 3, 2, 1}, []int{6, 5, 4}, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top := NewTopN(tc.n, desc)
			other := 0
			for _, x := range tc.in {
				if d, ok := top.Offer(x); ok {
					other += d
				}
			}
			got := top.Sorted()
			if got == nil || !slices.Equal(got, tc.want) {
				t.Errorf("Sorted() = %#v, want %v", got, tc.want)
			}
			if other != tc.wantOther {
				t.Errorf("dropped sum = %d, want %d", other, tc.wantOther)
			}
			if top.Len() != len(tc.want) {
				t.Errorf("Len() = %d, want %d", top.Len(), len(tc.want))
			}
		})
	}
}

// TestTopNMatchesSort checks the heap against a full sort on random input:
// same items kept, and kept + dropped is everything offered.
func TestTopNMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	desc := func(a, b int) int { return cmp.Compare(b, a) }
	for range 200 {
		in := make([]int, r.IntN(60))
		for i := range in {
			in[i] = r.IntN(20)
		}
		n := r.IntN(10)
		top := NewTopN(n, desc)
		var dropped []int
		for _, x := range in {
			if d, ok := top.Offer(x); ok {
				dropped = append(dropped, d)
			}
		}
		want := slices.SortedFunc(slices.Values(in), desc)
		want = want[:min(n, len(want))]
		if got := top.Sorted(); !slices.Equal(got, want) {
			t.Fatalf("n=%d in=%v: Sorted() = %v, want %v", n, in, got, want)
		}
		if len(dropped)+top.Len() != len(in) {
			t.Fatalf("kept %d + dropped %d != offered %d", top.Len(), len(dropped), len(in))
		}
	}
}

func BenchmarkTopN(b *testing.B) {
	in := make([]int, 10000)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range in {
		in[i] = r.IntN(1 << 20)
	}
	desc := func(a, b int) int { return cmp.Compare(b, a) }
	for b.Loop() {
		top := NewTopN(20, desc)
		for _, x := range in {
			top.Offer(x)
		}
		_ = top.Sorted()
	}
}
