package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// Source is what the core reads: the embedded store's querier.
type Source interface {
	Querier(mint, maxt int64) (storage.Querier, error)
}

// SenderFunc adapts a function to Sender.
type SenderFunc func(ctx context.Context, b *Batch) error

// Send calls f.
func (f SenderFunc) Send(ctx context.Context, b *Batch) error { return f(ctx, b) }

// Sender delivers one batch. A nil error means the receiver acknowledged it;
// otherwise the error is classified with Classify (HTTP) or wrapped in an
// *Error; any other error is retried.
type Sender interface {
	Send(ctx context.Context, b *Batch) error
}

// Filter is implemented by Senders whose format cannot carry every sample
// (NaN in line protocol, a label collectd has no field for): Filter removes
// those from b before it is sent and returns how many it removed; they are
// counted as dropped{reason="unsupported"}.
type Filter interface {
	Filter(b *Batch) int
}

// Options configure a Delivery.
type Options struct {
	// Name of the output (metric label, cursor file name).
	Name string
	// Dir holds the cursor file <Name>.cursor.json (created if missing).
	Dir    string
	Source Source
	Sender Sender
	// Interval between two delivery rounds.
	Interval time.Duration
	// Lag: read up to now-Lag, so an ingest round in progress is not cut
	// (default: Interval).
	Lag time.Duration
	// MaxAge: older samples are dropped and counted (default 2h).
	MaxAge time.Duration
	// Match: metric-name regexes (anchored); empty means all.
	Match []string
	// MaxSamplesPerSend caps one batch (default 2000).
	MaxSamplesPerSend int
	// KeepStale sends staleness markers (remote_write); other outputs skip them.
	KeepStale bool
	// MinBackoff and MaxBackoff bound the exponential backoff (default 500ms, 30s).
	MinBackoff, MaxBackoff time.Duration
	Registerer             prometheus.Registerer
	Logger                 *slog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Delivery moves samples from the store to one receiver, at least once.
type Delivery struct {
	o       Options
	cur     cursor
	matcher *labels.Matcher
	m       *metrics

	mu     sync.Mutex
	acked  int64 // ms; guarded by mu
	series int   // series seen in the last window

	lifeMu  sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	started bool
	closed  bool
}

// New checks opts and registers the self-metrics; nothing runs until Start.
func New(o Options) (*Delivery, error) {
	if o.Name == "" || o.Source == nil || o.Sender == nil || o.Dir == "" {
		return nil, errors.New("delivery: name, dir, source and sender are required")
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.Lag <= 0 {
		o.Lag = o.Interval
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 2 * time.Hour
	}
	if o.MaxSamplesPerSend <= 0 {
		o.MaxSamplesPerSend = 2000
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	re := ".+"
	if len(o.Match) > 0 {
		parts := make([]string, len(o.Match))
		for i, m := range o.Match {
			parts[i] = "(?:" + m + ")"
		}
		re = strings.Join(parts, "|")
	}
	matcher, err := labels.NewMatcher(labels.MatchRegexp, model.MetricNameLabel, re)
	if err != nil {
		return nil, fmt.Errorf("match: %w", err)
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("create cursor directory: %w", err)
	}
	d := &Delivery{o: o, cur: cursor{path: filepath.Join(o.Dir, o.Name+".cursor.json")}, matcher: matcher}
	acked, ok, err := d.cur.load()
	if err != nil {
		return nil, err
	}
	if !ok {
		// A new destination starts with the last interval, not the whole history.
		acked = o.Now().Add(-o.Lag - o.Interval).UnixMilli()
		if err := d.cur.save(o.Name, acked); err != nil {
			return nil, err
		}
	}
	d.acked = acked
	d.m = newMetrics(d)
	if o.Registerer != nil {
		if err := o.Registerer.Register(d.m); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return d, nil
}

// Acked is the timestamp (ms) up to which everything is delivered or dropped.
func (d *Delivery) Acked() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.acked
}

// Start runs delivery rounds every Interval until Shutdown.
func (d *Delivery) Start(ctx context.Context) error {
	d.lifeMu.Lock()
	defer d.lifeMu.Unlock()
	if d.closed {
		return errors.New("delivery: start after shutdown")
	}
	if d.started {
		return nil
	}
	d.started = true
	ctx, d.cancel = context.WithCancel(ctx)
	d.done = make(chan struct{})
	go d.loop(ctx)
	return nil
}

// Shutdown stops the rounds (a batch in flight is abandoned and sent again
// next time) and unregisters the metrics. Idempotent, safe without Start.
func (d *Delivery) Shutdown(ctx context.Context) error {
	d.lifeMu.Lock()
	defer d.lifeMu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.cancel != nil {
		d.cancel()
		select {
		case <-d.done:
		case <-ctx.Done():
			return fmt.Errorf("delivery %s: waiting for the round in flight: %w", d.o.Name, ctx.Err())
		}
	}
	if d.o.Registerer != nil {
		d.o.Registerer.Unregister(d.m)
	}
	return nil
}

func (d *Delivery) loop(ctx context.Context) {
	defer close(d.done)
	t := time.NewTicker(d.o.Interval)
	defer t.Stop()
	for {
		if err := d.Round(ctx); err != nil && ctx.Err() == nil {
			d.o.Logger.Warn("export round", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Round delivers everything in (acked, now-lag] (now taken once, at the
// start), window by window. It returns early only when ctx ends or the
// store or cursor fail.
func (d *Delivery) Round(ctx context.Context) error {
	end := d.o.Now().Add(-d.o.Lag).UnixMilli()
	for ctx.Err() == nil {
		now := d.o.Now()
		acked := d.Acked()
		if acked >= end {
			d.m.pending.Set(0)
			return nil
		}
		// Everything older than max_age is dropped without reading it
		// sample by sample (counted from the store, in one pass).
		oldest := now.Add(-d.o.MaxAge).UnixMilli()
		if acked < oldest-1 {
			n, err := d.count(ctx, acked, oldest-1)
			if err != nil {
				return err
			}
			d.m.dropped.WithLabelValues(reasonTooOld).Add(float64(n))
			if err := d.advance(oldest - 1); err != nil {
				return err
			}
			continue
		}
		wEnd := min(end, acked+d.window().Milliseconds())
		series, err := d.read(ctx, acked, wEnd)
		if err != nil {
			return err
		}
		total := 0
		for _, s := range series {
			total += len(s.Samples)
		}
		d.updatePending(total, wEnd, end)
		for _, c := range cut(series, d.o.MaxSamplesPerSend) {
			if err := d.deliver(ctx, c.batch); err != nil {
				return err
			}
			total -= c.batch.Len()
			if c.last {
				if err := d.advance(c.upTo); err != nil {
					return err
				}
			}
			d.updatePending(total, wEnd, end)
		}
		if err := d.advance(wEnd); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// window is how much time one read covers: about ten batches' worth.
func (d *Delivery) window() time.Duration {
	d.mu.Lock()
	n := d.series
	d.mu.Unlock()
	w := time.Hour
	if n > 0 {
		w = time.Duration(float64(d.o.Interval) * float64(10*d.o.MaxSamplesPerSend) / float64(n))
	}
	return min(max(w, d.o.Interval), time.Hour)
}

func (d *Delivery) updatePending(inWindow int, wEnd, end int64) {
	d.mu.Lock()
	n := d.series
	d.mu.Unlock()
	rest := float64(end-wEnd) / float64(d.o.Interval.Milliseconds()) * float64(n)
	d.m.pending.Set(float64(inWindow) + rest)
}

func (d *Delivery) advance(t int64) error {
	d.mu.Lock()
	if t <= d.acked {
		d.mu.Unlock()
		return nil
	}
	d.acked = t
	d.mu.Unlock()
	if err := d.cur.save(d.o.Name, t); err != nil {
		return err
	}
	return nil
}

// read returns the matching samples in (after, upTo], series by series.
func (d *Delivery) read(ctx context.Context, after, upTo int64) ([]Series, error) {
	q, err := d.o.Source.Querier(after+1, upTo)
	if err != nil {
		return nil, fmt.Errorf("open querier: %w", err)
	}
	defer q.Close()
	ss := q.Select(ctx, false, &storage.SelectHints{Start: after + 1, End: upTo}, d.matcher)
	var out []Series
	var it chunkenc.Iterator
	skipped := 0
	for ss.Next() {
		s := ss.At()
		it = s.Iterator(it)
		var samples []Sample
		for vt := it.Seek(after + 1); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				skipped++ // native histograms: the store does not write them
				continue
			}
			t, v := it.At()
			if t > upTo {
				break
			}
			if !d.o.KeepStale && value.IsStaleNaN(v) {
				continue
			}
			samples = append(samples, Sample{T: t, V: v})
		}
		if err := it.Err(); err != nil {
			return nil, fmt.Errorf("read series %s: %w", s.Labels(), err)
		}
		if len(samples) > 0 {
			out = append(out, Series{Labels: s.Labels(), Samples: samples})
		}
	}
	if err := ss.Err(); err != nil {
		return nil, fmt.Errorf("select: %w", err)
	}
	if skipped > 0 {
		d.m.dropped.WithLabelValues(reasonUnsupported).Add(float64(skipped))
	}
	d.mu.Lock()
	d.series = len(out)
	d.mu.Unlock()
	return out, nil
}

// count counts the matching samples in (after, upTo] without holding them.
func (d *Delivery) count(ctx context.Context, after, upTo int64) (int, error) {
	q, err := d.o.Source.Querier(after+1, upTo)
	if err != nil {
		return 0, fmt.Errorf("open querier: %w", err)
	}
	defer q.Close()
	ss := q.Select(ctx, false, &storage.SelectHints{Start: after + 1, End: upTo}, d.matcher)
	n := 0
	var it chunkenc.Iterator
	for ss.Next() {
		it = ss.At().Iterator(it)
		for vt := it.Seek(after + 1); vt != chunkenc.ValNone; vt = it.Next() {
			if it.AtT() > upTo {
				break
			}
			if vt == chunkenc.ValFloat && !d.o.KeepStale {
				if _, v := it.At(); value.IsStaleNaN(v) {
					continue
				}
			}
			n++
		}
		if err := it.Err(); err != nil {
			return 0, err
		}
	}
	return n, ss.Err()
}

// deliver sends b until it is delivered, dropped or ctx ends.
func (d *Delivery) deliver(ctx context.Context, b *Batch) error {
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if f, ok := d.o.Sender.(Filter); ok && attempt == 0 {
			if k := f.Filter(b); k > 0 {
				d.m.dropped.WithLabelValues(reasonUnsupported).Add(float64(k))
			}
		}
		n := b.Len()
		if n == 0 {
			return nil
		}
		start := time.Now()
		err := d.o.Sender.Send(ctx, b)
		d.m.sendDuration.Observe(time.Since(start).Seconds())
		if err == nil {
			d.m.sent.Add(float64(n))
			d.m.batches.WithLabelValues("sent").Inc()
			d.m.lastSuccess.Set(float64(d.o.Now().UnixMilli()) / 1000)
			d.m.up.Set(1)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		e := kindOf(err)
		switch e.Kind {
		case Drop:
			k := n
			if e.Dropped > 0 && e.Dropped < n {
				k = e.Dropped
				d.m.sent.Add(float64(n - k))
			}
			d.m.dropped.WithLabelValues(reasonRejected).Add(float64(k))
			d.m.batches.WithLabelValues("dropped").Inc()
			d.o.Logger.Warn("receiver rejected samples: dropped", "samples", k, "batch", n, "err", err)
			d.m.up.Set(1) // the receiver answers: it is the data that is refused
			return nil
		case TooLarge:
			if n == 1 {
				d.m.dropped.WithLabelValues(reasonTooLarge).Inc()
				d.m.batches.WithLabelValues("dropped").Inc()
				d.o.Logger.Warn("receiver refused a single sample as too large: dropped", "err", err)
				return nil
			}
			d.m.batches.WithLabelValues("split").Inc()
			l, r := b.split()
			if err := d.deliver(ctx, l); err != nil {
				return err
			}
			return d.deliver(ctx, r)
		}
		d.m.failed.Add(float64(n))
		d.m.batches.WithLabelValues("retried").Inc()
		d.m.up.Set(0)
		wait := d.backoff(attempt)
		if e.Kind == Throttle && e.RetryAfter > 0 {
			wait = e.RetryAfter
		}
		if attempt == 0 {
			d.o.Logger.Warn("send failed; retrying", "samples", n, "wait", wait, "err", err)
		} else {
			d.o.Logger.Debug("send failed; retrying", "attempt", attempt, "samples", n, "wait", wait, "err", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		// Samples that aged past max_age while we waited are dropped.
		if k := b.pruneBefore(d.o.Now().Add(-d.o.MaxAge).UnixMilli()); k > 0 {
			d.m.dropped.WithLabelValues(reasonTooOld).Add(float64(k))
		}
	}
}

// backoff is min*2^attempt capped at max, with jitter in [d/2, d].
func (d *Delivery) backoff(attempt int) time.Duration {
	b := float64(d.o.MinBackoff) * math.Pow(2, float64(min(attempt, 30)))
	b = min(b, float64(d.o.MaxBackoff))
	return time.Duration(b/2 + rand.Float64()*b/2)
}
