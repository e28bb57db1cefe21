package probe

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Period aggregates the results of the probes sent during one aggregation
// period. Packet counts: Sent, Received (Sent-Received were lost). Probe
// counts: Outcomes.
type Period struct {
	Start, End time.Time
	Sent       int64
	Received   int64
	Outcomes   [numOutcomes]int64

	RTTCount int64
	RTTMin   time.Duration
	RTTMax   time.Duration
	RTTSum   time.Duration

	// Jitter: mean absolute difference between consecutive RTT samples.
	JitterSum   time.Duration
	JitterCount int64
	prevRTT     time.Duration
	hasPrev     bool
}

// Add folds one result into the period.
func (p *Period) Add(r Result) {
	p.Sent += int64(r.Sent)
	p.Received += int64(r.Received)
	if r.Outcome < numOutcomes {
		p.Outcomes[r.Outcome]++
	}
	if !r.HasRTT {
		return
	}
	if p.RTTCount == 0 || r.RTT < p.RTTMin {
		p.RTTMin = r.RTT
	}
	if r.RTT > p.RTTMax {
		p.RTTMax = r.RTT
	}
	p.RTTCount++
	p.RTTSum += r.RTT
	if p.hasPrev {
		d := r.RTT - p.prevRTT
		if d < 0 {
			d = -d
		}
		p.JitterSum += d
		p.JitterCount++
	}
	p.prevRTT, p.hasPrev = r.RTT, true
}

// Loss returns the lost fraction of packets; ok is false when nothing was
// sent (no data, which is not "no loss").
func (p *Period) Loss() (loss float64, ok bool) {
	if p.Sent == 0 {
		return math.NaN(), false
	}
	return float64(p.Sent-p.Received) / float64(p.Sent), true
}

// RTTAvg returns the mean RTT; ok is false when no RTT was measured.
func (p *Period) RTTAvg() (time.Duration, bool) {
	if p.RTTCount == 0 {
		return 0, false
	}
	return p.RTTSum / time.Duration(p.RTTCount), true
}

// Jitter returns the mean absolute RTT difference of consecutive samples.
func (p *Period) Jitter() (time.Duration, bool) {
	if p.JitterCount == 0 {
		return 0, false
	}
	return p.JitterSum / time.Duration(p.JitterCount), true
}

// Aggregator splits one target's results into periods aligned to the wall
// clock (multiples of the period since the Unix epoch, as CloudWatch does).
// A result belongs to the period in which its probe was sent; a period
// closes once every probe sent in it must have ended (end + grace).
type Aggregator struct {
	period, grace time.Duration

	mu   sync.Mutex
	from time.Time // periods starting before this are partial: dropped
	open []*Period // few: the current one and those waiting for grace
	last *Period
	late int64
}

// NewAggregator returns an aggregator with the given period; grace should
// exceed the probe timeout.
func NewAggregator(period, grace time.Duration) *Aggregator {
	return &Aggregator{period: period, grace: grace}
}

// SkipBefore drops the partial period containing t (and earlier ones):
// an agent that starts in the middle of a period would otherwise publish
// it with fewer probes than the period holds.
func (a *Aggregator) SkipBefore(t time.Time) {
	a.mu.Lock()
	a.from = t
	a.mu.Unlock()
}

// Add records one result.
func (a *Aggregator) Add(r Result) {
	start := r.Start.Truncate(a.period)
	a.mu.Lock()
	defer a.mu.Unlock()
	if start.Before(a.from) {
		return
	}
	if a.last != nil && !start.After(a.last.Start) {
		a.late++ // its period is already published
		return
	}
	for _, p := range a.open {
		if p.Start.Equal(start) {
			p.Add(r)
			return
		}
	}
	p := &Period{Start: start, End: start.Add(a.period)}
	p.Add(r)
	a.open = append(a.open, p)
}

// Last closes the periods that ended before now-grace and returns the most
// recent closed one; ok is false before the first period closed.
func (a *Aggregator) Last(now time.Time) (Period, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	keep := a.open[:0]
	for _, p := range a.open {
		if !p.End.Add(a.grace).After(now) {
			if a.last == nil || p.Start.After(a.last.Start) {
				a.last = p
			}
			continue
		}
		keep = append(keep, p)
	}
	a.open = keep
	if a.last == nil {
		return Period{}, false
	}
	return *a.last, true
}

// Late counts results that arrived after their period was closed.
func (a *Aggregator) Late() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.late
}

// Summary accumulates every result of one target, for one-shot runs.
type Summary struct {
	Period
	RTTs []time.Duration
}

// Add records one result.
func (s *Summary) Add(r Result) {
	s.Period.Add(r)
	if r.HasRTT {
		s.RTTs = append(s.RTTs, r.RTT)
	}
}

// Quantile returns the q-quantile of the RTTs (linear interpolation between
// closest ranks); ok is false when none was measured.
func (s *Summary) Quantile(q float64) (time.Duration, bool) {
	return Quantile(s.RTTs, q)
}

// Quantile returns the q-quantile (0..1) of d with linear interpolation
// between closest ranks. It sorts d in place.
func Quantile(d []time.Duration, q float64) (time.Duration, bool) {
	if len(d) == 0 {
		return 0, false
	}
	if !slices.IsSorted(d) {
		slices.Sort(d)
	}
	q = math.Max(0, math.Min(1, q))
	pos := q * float64(len(d)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(d)-1)
	frac := pos - float64(lo)
	return d[lo] + time.Duration(frac*float64(d[hi]-d[lo])), true
}
