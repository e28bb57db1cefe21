package delivery

import (
	"sort"

	"github.com/prometheus/prometheus/model/labels"
)

// Sample is one float sample (staleness markers are value.StaleNaN).
type Sample struct {
	T int64 // milliseconds since the epoch
	V float64
}

// Series is one series' samples in a batch, in time order.
type Series struct {
	Labels  labels.Labels
	Samples []Sample
}

// Batch is what a Sender delivers in one request: series with samples in
// time order.
type Batch struct {
	Series []Series
}

// Len is the number of samples.
func (b *Batch) Len() int {
	n := 0
	for _, s := range b.Series {
		n += len(s.Samples)
	}
	return n
}

// split halves b by samples (for 413): series stay whole where possible.
func (b *Batch) split() (*Batch, *Batch) {
	half := b.Len() / 2
	var l, r Batch
	n := 0
	for _, s := range b.Series {
		switch {
		case n >= half:
			r.Series = append(r.Series, s)
		case n+len(s.Samples) <= half:
			l.Series = append(l.Series, s)
		default:
			k := half - n
			l.Series = append(l.Series, Series{Labels: s.Labels, Samples: s.Samples[:k]})
			r.Series = append(r.Series, Series{Labels: s.Labels, Samples: s.Samples[k:]})
		}
		n += len(s.Samples)
	}
	return &l, &r
}

// pruneBefore removes samples with T < mint and returns how many it removed.
func (b *Batch) pruneBefore(mint int64) int {
	dropped := 0
	out := b.Series[:0]
	for _, s := range b.Series {
		i := sort.Search(len(s.Samples), func(i int) bool { return s.Samples[i].T >= mint })
		dropped += i
		s.Samples = s.Samples[i:]
		if len(s.Samples) > 0 {
			out = append(out, s)
		}
	}
	b.Series = out
	return dropped
}

// chunk is a time-ordered piece of a window: all samples with a timestamp
// in (after, upTo] (or part of them, when one timestamp alone exceeds the
// batch size; then only the last part has last=true).
type chunk struct {
	batch *Batch
	upTo  int64
	last  bool
}

// cut splits the window's series into chunks of at most max samples,
// ordered by time, so the cursor can advance after each chunk.
func cut(series []Series, max int) []chunk {
	// Count samples per timestamp.
	counts := map[int64]int{}
	for _, s := range series {
		for _, p := range s.Samples {
			counts[p.T]++
		}
	}
	ts := make([]int64, 0, len(counts))
	for t := range counts {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	// Group consecutive timestamps into bounds (upper ends) of at most max samples.
	var his []int64
	n := 0
	for i, t := range ts {
		if n > 0 && n+counts[t] > max {
			his = append(his, ts[i-1])
			n = 0
		}
		n += counts[t]
	}
	if n > 0 {
		his = append(his, ts[len(ts)-1])
	}
	// Each series contributes a slice per bound (series are time-ordered).
	idx := make([]int, len(series))
	var out []chunk
	for _, hi := range his {
		var b Batch
		for i, s := range series {
			j := idx[i]
			k := j
			for k < len(s.Samples) && s.Samples[k].T <= hi {
				k++
			}
			if k > j {
				b.Series = append(b.Series, Series{Labels: s.Labels, Samples: s.Samples[j:k]})
			}
			idx[i] = k
		}
		// One timestamp with more than max samples: split by series.
		for b.Len() > max {
			var head Batch
			n := 0
			for len(b.Series) > 0 && n < max {
				s := b.Series[0]
				take := min(len(s.Samples), max-n)
				head.Series = append(head.Series, Series{Labels: s.Labels, Samples: s.Samples[:take]})
				n += take
				if take == len(s.Samples) {
					b.Series = b.Series[1:]
				} else {
					b.Series[0].Samples = s.Samples[take:]
				}
			}
			out = append(out, chunk{batch: &head, upTo: hi, last: false})
		}
		out = append(out, chunk{batch: &b, upTo: hi, last: true})
	}
	return out
}
