package flow

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

func TestHistObserveBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []uint64
		want []uint64 // per bucket, last is +Inf
	}{
		{"empty", nil, []uint64{0, 0, 0, 0}},
		{"bounds are inclusive (le)", []uint64{1, 2, 5}, []uint64{1, 1, 1, 0}},
		{"below the first bound", []uint64{0}, []uint64{1, 0, 0, 0}},
		{"above every bound", []uint64{6, 1 << 40}, []uint64{0, 0, 0, 2}},
		{"between bounds", []uint64{3, 4}, []uint64{0, 0, 2, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHist([]uint64{1, 2, 5})
			var sum uint64
			for _, v := range tc.in {
				h.Observe(v)
				sum += v
			}
			if !slices.Equal(h.Counts, tc.want) || h.Sum != sum || h.Count != uint64(len(tc.in)) {
				t.Errorf("counts %v sum %d count %d, want %v %d %d", h.Counts, h.Sum, h.Count, tc.want, sum, len(tc.in))
			}
		})
	}
}

func TestHistDurationsAndMerge(t *testing.T) {
	a := NewHist(DurationBuckets([]float64{.001, .01}))
	b := a.Clone()
	a.Observe(time.Millisecond)
	b.Observe(5 * time.Millisecond)
	b.Observe(time.Second)
	a.Merge(&b)
	if c := a.Cumulative(); c[.001] != 1 || c[.01] != 2 || a.Count != 3 {
		t.Errorf("cumulative %v count %d", c, a.Count)
	}
	if got, want := a.SumFloat(), 1.006; got < want-1e-12 || got > want+1e-12 {
		t.Errorf("SumFloat = %v, want %v", got, want)
	}
	if b.Count != 2 || a.Counts[0] != 1 {
		t.Errorf("Merge changed its argument or Clone shares counts: a %v b %v", a.Counts, b.Counts)
	}
}

// TestHistJSON pins the `netsight analyze --json` format of both kinds.
func TestHistJSON(t *testing.T) {
	sizes := NewHist([]uint64{64, 1500})
	sizes.Observe(100)
	rtt := NewHist([]time.Duration{time.Millisecond})
	rtt.Observe(2 * time.Millisecond)
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"sizes", sizes, `{"bounds":[64,1500],"counts":[0,1,0],"sum":100,"count":1}`},
		{"durations in seconds", rtt, `{"bounds_seconds":[0.001],"counts":[0,1],"sum_seconds":0.002,"count":1}`},
	} {
		got, err := json.Marshal(tc.v)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: %s %v, want %s", tc.name, got, err, tc.want)
		}
	}
}

// TestBucketSets checks the one RTT set: ascending, and exact as durations
// (capture and analyze use them as time.Duration).
func TestBucketSets(t *testing.T) {
	for name, b := range map[string][]float64{"RTTBuckets": RTTBuckets, "HandshakeBuckets": HandshakeBuckets} {
		if !slices.IsSorted(b) {
			t.Errorf("%s not ascending: %v", name, b)
		}
	}
	want := []time.Duration{50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
		time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
		50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond}
	if got := DurationBuckets(RTTBuckets); !slices.Equal(got, want) {
		t.Errorf("DurationBuckets(RTTBuckets) = %v, want %v", got, want)
	}
	for _, b := range [][]uint64{PacketSizeBuckets, PayloadSizeBuckets} {
		if !slices.IsSorted(b) {
			t.Errorf("size buckets not ascending: %v", b)
		}
	}
}
