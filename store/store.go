package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/compression"

	"github.com/netsight/netsight/internal/logutil"
)

// Defaults used when Options leave a field zero.
const (
	DefaultInterval      = 5 * time.Second
	DefaultRetention     = 15 * 24 * time.Hour
	DefaultLookbackDelta = 5 * time.Minute
	// DefaultQueryTimeout bounds one PromQL evaluation.
	DefaultQueryTimeout = 30 * time.Second
	// DefaultMaxSamples bounds the samples one query may hold in memory
	// (~16 bytes each: 5e6 samples is ~80 MB at worst).
	DefaultMaxSamples = 5_000_000
	// SubDir is the store's directory inside the agent's data_dir.
	SubDir = "tsdb"
)

// Options configure a Store.
type Options struct {
	// Dir holds the TSDB (blocks, WAL, head chunks). Created if missing.
	Dir string
	// Interval between two gathers of Gatherer (default 5s).
	Interval time.Duration
	// Retention drops blocks older than this (default 15d).
	Retention time.Duration
	// RetentionBytes caps blocks + WAL + head chunks on disk; 0 means no cap.
	RetentionBytes int64
	// Gatherer is what is stored: normally the agent's registry.
	Gatherer prometheus.Gatherer
	// Registerer receives the store's self-metrics (netsight_store_*); may be nil.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// LookbackDelta for PromQL (default 5m).
	LookbackDelta time.Duration
	// Query bounds the query engine and API (timeouts, samples, steps,
	// concurrency, answer size); zero fields take the defaults.
	Query Limits
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.LookbackDelta <= 0 {
		o.LookbackDelta = DefaultLookbackDelta
	}
	o.Query.setDefaults()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Store is the embedded TSDB fed from a Gatherer, plus the PromQL engine
// that reads it.
type Store struct {
	opts   Options
	db     *tsdb.DB
	engine *promql.Engine
	m      *metrics

	ingestMu sync.Mutex // one ingest at a time; guards cache
	cache    *appendCache

	metaMu sync.RWMutex
	meta   map[string][]Metadata // published copy of cache.meta

	ingestLog *logutil.ErrorLog // rate-limited ingest failures (full disk)
	ingestErr atomic.Pointer[string]

	lifeMu  sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	closed  bool
	started bool
}

// Open opens (or creates) the TSDB in opts.Dir, replaying its WAL, and
// builds the query engine. Nothing is gathered until Start or Ingest.
func Open(opts Options) (*Store, error) {
	opts.setDefaults()
	if opts.Dir == "" {
		return nil, errors.New("store: empty directory")
	}
	if opts.Gatherer == nil {
		return nil, errors.New("store: nil gatherer")
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	to := tsdb.DefaultOptions()
	to.RetentionDuration = opts.Retention.Milliseconds()
	to.MaxBytes = opts.RetentionBytes
	to.WALCompression = compression.Snappy
	// Smaller WAL segments than Prometheus' 128 MiB: the agent's ingest rate
	// is tiny and size-based retention counts the WAL.
	to.WALSegmentSize = 16 << 20
	// Like Prometheus: blocks grow up to 10% of the retention, at most 31d.
	maxBlock := opts.Retention / 10
	if maxBlock > 31*24*time.Hour {
		maxBlock = 31 * 24 * time.Hour
	}
	if maxBlock < 2*time.Hour {
		maxBlock = 2 * time.Hour
	}
	to.MaxBlockDuration = maxBlock.Milliseconds()
	start := time.Now()
	// The TSDB logs every WAL segment and compaction at info; keep those at
	// debug so `netsight run` starts with one line per component.
	db, err := tsdb.Open(opts.Dir, slog.New(demote{opts.Logger.Handler()}).With("subsystem", "tsdb"), nil, to, nil)
	if err != nil {
		return nil, fmt.Errorf("open tsdb in %s: %w", opts.Dir, err)
	}
	s := &Store{
		opts:      opts,
		db:        db,
		cache:     newAppendCache(),
		ingestLog: logutil.New(opts.Logger, "store ingest failed", logutil.WithClock(opts.Now)),
		engine: promql.NewEngine(promql.EngineOpts{
			Logger:               opts.Logger.With("subsystem", "promql"),
			MaxSamples:           opts.Query.MaxSamples,
			Timeout:              opts.Query.Timeout,
			LookbackDelta:        opts.LookbackDelta,
			EnableAtModifier:     true,
			EnableNegativeOffset: true,
			// A subquery without a step ([1h:]) uses Prometheus' default
			// evaluation interval.
			NoStepSubqueryIntervalFn: defaultSubqueryStep,
		}),
	}
	s.m = newMetrics(s)
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(s.m); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("register store metrics: %w", err)
		}
	}
	opts.Logger.Info("store opened", "dir", opts.Dir, "replayed_series", db.Head().NumSeries(),
		"oldest", tsTime(s.MinTime()), "open_duration", time.Since(start).Round(time.Millisecond),
		"retention", opts.Retention, "retention_bytes", opts.RetentionBytes, "interval", opts.Interval)
	return s, nil
}

// defaultSubqueryStep is the step of a subquery written without one:
// Prometheus' default global evaluation_interval.
func defaultSubqueryStep(int64) int64 { return time.Minute.Milliseconds() }

// DB is the underlying TSDB (read-only use: tests, tools).
func (s *Store) DB() *tsdb.DB { return s.db }

// Queryable reads the store.
func (s *Store) Queryable() storage.Queryable { return s.db }

// Engine is the PromQL engine.
func (s *Store) Engine() *promql.Engine { return s.engine }

// Interval is the gather interval.
func (s *Store) Interval() time.Duration { return s.opts.Interval }

// MinTime is the oldest sample timestamp in ms (math.MaxInt64 when empty).
func (s *Store) MinTime() int64 {
	mint := int64(math.MaxInt64)
	if bs := s.db.Blocks(); len(bs) > 0 {
		mint = bs[0].MinTime()
	}
	if h := s.db.Head(); h.NumSeries() > 0 && h.MinTime() < mint {
		mint = h.MinTime()
	}
	return mint
}

// Metadata returns each gathered family's type and help, keyed by name, in
// the shape of /api/v1/metadata. Callers must not modify it.
func (s *Store) Metadata() map[string][]Metadata {
	s.metaMu.RLock()
	defer s.metaMu.RUnlock()
	if s.meta == nil {
		return map[string][]Metadata{}
	}
	return s.meta
}

// Start gathers once immediately, then every Interval until Shutdown.
func (s *Store) Start(ctx context.Context) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed {
		return errors.New("store: start after shutdown")
	}
	if s.started {
		return nil
	}
	s.started = true
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	go s.loop(ctx)
	return nil
}

func (s *Store) loop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		_, err := s.Ingest(ctx)
		if ctx.Err() != nil {
			return
		}
		s.logIngest(err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Shutdown stops gathering and closes the TSDB (flushing the WAL). It is
// idempotent and safe without Start.
func (s *Store) Shutdown(ctx context.Context) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.cancel != nil {
		s.cancel()
		select {
		case <-s.done:
		case <-ctx.Done():
			return fmt.Errorf("store: waiting for ingest: %w", ctx.Err())
		}
	}
	if s.opts.Registerer != nil {
		s.opts.Registerer.Unregister(s.m)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close tsdb: %w", err)
	}
	return nil
}

// IngestResult describes one gather-and-append round.
type IngestResult struct {
	Series   int // series appended (non-stale samples)
	Stale    int // series that disappeared and got a staleness marker
	Rejected int // samples the TSDB refused (out of order, duplicate)
}

// Ingest gathers the Gatherer once and appends every sample with the current
// time in one transaction (one WAL write): the unit a kill -9 can lose.
func (s *Store) Ingest(ctx context.Context) (IngestResult, error) {
	return s.ingestAt(ctx, s.opts.Now())
}

func (s *Store) ingestAt(ctx context.Context, now time.Time) (IngestResult, error) {
	s.ingestMu.Lock()
	defer s.ingestMu.Unlock()
	start := time.Now()
	mfs, gerr := s.opts.Gatherer.Gather()
	if gerr != nil {
		s.m.gatherErrors.Inc()
		s.opts.Logger.Debug("store gather (partial)", "err", gerr)
	}
	app := s.db.Appender(ctx)
	res, err := s.cache.append(app, mfs, now.UnixMilli())
	if err != nil {
		_ = app.Rollback()
		s.m.ingestFailures.Inc()
		return res, fmt.Errorf("append: %w", err)
	}
	if err := app.Commit(); err != nil {
		s.m.ingestFailures.Inc()
		return res, fmt.Errorf("commit: %w", err)
	}
	if s.cache.metaChanged {
		s.cache.metaChanged = false
		md := make(map[string][]Metadata, len(s.cache.meta))
		for k, v := range s.cache.meta {
			md[k] = []Metadata{v}
		}
		s.metaMu.Lock()
		s.meta = md
		s.metaMu.Unlock()
	}
	s.m.samples.Add(float64(res.Series + res.Stale))
	s.m.rejected.Add(float64(res.Rejected))
	s.m.lastIngest.Set(float64(now.UnixMilli()) / 1000)
	s.m.ingestDuration.Set(time.Since(start).Seconds())
	return res, nil
}

func tsTime(ms int64) string {
	if ms == math.MaxInt64 || ms == math.MinInt64 {
		return "none"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

// demote lowers info records to debug (warnings and errors pass unchanged).
type demote struct{ h slog.Handler }

func (d demote) Enabled(ctx context.Context, l slog.Level) bool {
	if l < slog.LevelWarn {
		l = slog.LevelDebug
	}
	return d.h.Enabled(ctx, l)
}

func (d demote) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		r.Level = slog.LevelDebug
	}
	return d.h.Handle(ctx, r)
}

func (d demote) WithAttrs(as []slog.Attr) slog.Handler { return demote{d.h.WithAttrs(as)} }
func (d demote) WithGroup(n string) slog.Handler       { return demote{d.h.WithGroup(n)} }
