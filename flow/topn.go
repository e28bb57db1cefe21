package flow

// TopN keeps the n best of the items offered to it, ranked by cmp
// (cmp(a, b) < 0: a ranks before b). It is the one top-N ranking of
// netsight: the table's per-interval groups (Roll), capture's top peers and
// `netsight analyze`'s worst flows use it. Memory is bounded by n and each
// Offer costs O(log n), so callers can stream any number of items through
// it; callers that sum the rest into an "other" bucket add up what Offer
// drops.
type TopN[T any] struct {
	n   int
	cmp func(a, b T) int
	// h is a heap whose root ranks last among the items kept.
	h []T
}

// NewTopN returns a ranking that keeps n items (none when n <= 0).
func NewTopN[T any](n int, cmp func(a, b T) int) *TopN[T] {
	return &TopN[T]{n: max(n, 0), cmp: cmp}
}

// Len is the number of items kept.
func (t *TopN[T]) Len() int { return len(t.h) }

// Admits reports whether Offer(x) would keep x: a cheap pre-check for
// callers whose items are costly to build.
func (t *TopN[T]) Admits(x T) bool {
	return t.n > 0 && (len(t.h) < t.n || t.cmp(x, t.h[0]) < 0)
}

// Offer considers x. It returns the item that is not kept (x itself, or
// the one x displaced) and true, or false when nothing was dropped.
func (t *TopN[T]) Offer(x T) (dropped T, ok bool) {
	if !t.Admits(x) {
		return x, true
	}
	if len(t.h) < t.n {
		t.h = append(t.h, x)
		t.up(len(t.h) - 1)
		return dropped, false
	}
	dropped, t.h[0] = t.h[0], x
	t.down(0)
	return dropped, true
}

// Sorted returns the kept items, best first, in a new slice (empty, not
// nil, when none).
func (t *TopN[T]) Sorted() []T {
	out := make([]T, len(t.h))
	h := &TopN[T]{n: t.n, cmp: t.cmp, h: append([]T(nil), t.h...)}
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = h.h[0]
		last := len(h.h) - 1
		h.h[0] = h.h[last]
		h.h = h.h[:last]
		h.down(0)
	}
	return out
}

// worse reports whether h[i] ranks after h[j] (heap order: worst at root).
func (t *TopN[T]) worse(i, j int) bool { return t.cmp(t.h[i], t.h[j]) > 0 }

func (t *TopN[T]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !t.worse(i, p) {
			return
		}
		t.h[i], t.h[p] = t.h[p], t.h[i]
		i = p
	}
}

func (t *TopN[T]) down(i int) {
	n := len(t.h)
	for {
		w := i
		if l := 2*i + 1; l < n && t.worse(l, w) {
			w = l
		}
		if r := 2*i + 2; r < n && t.worse(r, w) {
			w = r
		}
		if w == i {
			return
		}
		t.h[i], t.h[w] = t.h[w], t.h[i]
		i = w
	}
}
