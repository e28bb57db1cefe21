package probe

import (
	"container/heap"
	"testing"
	"time"
)

// BenchmarkScheduleHeap10k measures the scheduler's per-probe bookkeeping
// with 10,000 targets: take the earliest due target, move it to its next
// slot with jitter and restore the heap, as schedule does for every probe.
func BenchmarkScheduleHeap10k(b *testing.B) {
	const n = 10000
	iv := time.Second
	now := time.Now()
	h := make(schedHeap, 0, n)
	for i := 0; i < n; i++ {
		base := now.Add(time.Duration(i) * iv / n)
		h = append(h, &schedItem{ti: i, base: base, due: base})
	}
	heap.Init(&h)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		it := h[0]
		it.fired++
		it.slot++
		it.due = it.base.Add(time.Duration(it.slot) * iv).Add(jitter(iv))
		heap.Fix(&h, 0)
	}
}
