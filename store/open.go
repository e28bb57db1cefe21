package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/storage"

	"github.com/netsight/netsight/internal/logutil"
)

// Default retry bounds of a Handle whose store failed to open.
const (
	DefaultRetryMin = 10 * time.Second
	DefaultRetryMax = 10 * time.Minute
)

// StatusRoute serves the store's Status as JSON.
const StatusRoute = "GET /api/v1/status/store"

// HandleOptions configure a Handle.
type HandleOptions struct {
	// Options are passed to Open on every attempt.
	Options
	// LockDir is the directory locked against a second agent (the agent's
	// data_dir); default the parent of Options.Dir.
	LockDir string
	// BuildInfo answers /api/v1/status/buildinfo.
	BuildInfo BuildInfo
	// RetryMin and RetryMax bound the backoff between open attempts
	// (defaults 10s and 10m).
	RetryMin, RetryMax time.Duration
	// Disabled: store.enabled is false. The handle never opens, Status says
	// "disabled" and the API answers "unavailable".
	Disabled bool
}

// Status is the store's health, served at /api/v1/status/store and shown
// by the dashboard.
type Status struct {
	// State is "up", "down" or "disabled".
	State string `json:"state"`
	Up    bool   `json:"up"`
	Dir   string `json:"dir"`
	// Reason is why the store is down (the last open error).
	Reason string `json:"reason,omitempty"`
	// Hint tells the operator what to do about it.
	Hint         string    `json:"hint,omitempty"`
	OpenFailures int       `json:"open_failures"`
	Since        time.Time `json:"since"`
	NextRetry    time.Time `json:"next_retry,omitzero"`
	// IngestFailures counts consecutive failed ingest rounds of an open
	// store (a full disk); IngestError is the last one's error.
	IngestFailures int    `json:"ingest_failures"`
	IngestError    string `json:"ingest_error,omitempty"`
}

// Handle owns the store for the agent: an open failure (corrupt WAL, full
// or read-only disk, permission denied, another agent holding the data
// directory) does not stop the agent. The store is then reported down
// (netsight_store_up 0, Status with the reason and a hint), the query API
// answers "unavailable" with the same text, and opening is retried with
// backoff until it works or the agent stops.
type Handle struct {
	opts   HandleOptions
	hint   string
	errlog *logutil.ErrorLog

	mu       sync.RWMutex
	st       *Store
	lock     *DirLock
	api      map[string]http.Handler
	status   Status
	cancel   context.CancelFunc
	done     chan struct{}
	closed   bool
	started  bool
	failures prometheus.Counter
	upDesc   *prometheus.Desc
}

// NewHandle builds the handle and registers netsight_store_up and
// netsight_store_open_failures_total. Nothing is opened before Start.
func NewHandle(o HandleOptions) *Handle {
	o.Options.setDefaults()
	if o.LockDir == "" {
		o.LockDir = filepath.Dir(o.Dir)
	}
	if o.RetryMin <= 0 {
		o.RetryMin = DefaultRetryMin
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(DefaultRetryMax, o.RetryMin)
	}
	h := &Handle{
		opts: o,
		hint: fmt.Sprintf("move %s aside or set store.enabled: false", o.Dir),
		errlog: logutil.New(o.Logger, "store unavailable; collectors and /metrics keep running",
			logutil.WithPeriods(o.RetryMin, max(o.RetryMax, 30*time.Minute))),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "netsight_store_open_failures_total",
			Help: "Attempts to open the embedded store that failed (see /api/v1/status/store for the reason)."}),
		upDesc: prometheus.NewDesc("netsight_store_up",
			"1 when the embedded store is open and accepting samples, 0 when it is down or disabled.", nil, nil),
	}
	h.status = Status{State: "down", Dir: o.Dir, Since: o.Now()}
	if o.Disabled {
		h.status = Status{State: "disabled", Dir: o.Dir, Since: o.Now(),
			Reason: "the embedded store is disabled (store.enabled: false)"}
	}
	if o.Registerer != nil {
		_ = o.Registerer.Register(handleMetrics{h})
	}
	return h
}

// Start opens the store once, synchronously; on failure it logs the reason
// with a hint, reports the store down and keeps retrying in the
// background. It returns an error only after Shutdown.
func (h *Handle) Start(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return errors.New("store: start after shutdown")
	}
	if h.started || h.opts.Disabled {
		h.mu.Unlock()
		return nil
	}
	h.started = true
	ctx, h.cancel = context.WithCancel(ctx)
	h.done = make(chan struct{})
	h.mu.Unlock()
	if h.tryOpen(ctx) {
		close(h.done)
		return nil
	}
	go h.retry(ctx)
	return nil
}

func (h *Handle) retry(ctx context.Context) {
	defer close(h.done)
	wait := h.opts.RetryMin
	for {
		h.mu.Lock()
		h.status.NextRetry = h.opts.Now().Add(wait)
		h.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if h.tryOpen(ctx) {
			return
		}
		wait = min(2*wait, h.opts.RetryMax)
	}
}

// tryOpen makes one attempt: lock the data directory, open the TSDB, start
// ingesting and publish the API. It reports success.
func (h *Handle) tryOpen(ctx context.Context) bool {
	st, lock, err := h.open(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.opts.Now()
	if err == nil && h.closed { // Shutdown raced with the open
		_ = st.Shutdown(context.Background())
		_ = lock.Release()
		return true
	}
	if err != nil {
		h.failures.Inc()
		h.status.OpenFailures++
		if h.status.Reason != err.Error() {
			h.status.Since = now
		}
		h.status.State, h.status.Up, h.status.Reason = "down", false, err.Error()
		h.status.Hint = h.hintFor(err)
		h.errlog.Fail(err, "dir", h.opts.Dir, "hint", h.status.Hint)
		return false
	}
	routes := map[string]http.Handler{}
	NewAPI(st, h.opts.BuildInfo, h.opts.Logger).Register(func(p string, hd http.Handler) { routes[p] = hd })
	h.st, h.lock, h.api = st, lock, routes
	h.status = Status{State: "up", Up: true, Dir: h.opts.Dir, Since: now, OpenFailures: h.status.OpenFailures}
	h.errlog.OK("dir", h.opts.Dir)
	return true
}

func (h *Handle) open(ctx context.Context) (*Store, *DirLock, error) {
	lock, err := LockDir(h.opts.LockDir)
	if err != nil {
		return nil, nil, err
	}
	st, err := Open(h.opts.Options)
	if err != nil {
		_ = lock.Release()
		return nil, nil, err
	}
	if err := st.Start(ctx); err != nil {
		_ = st.Shutdown(context.Background())
		_ = lock.Release()
		return nil, nil, err
	}
	return st, lock, nil
}

func (h *Handle) hintFor(err error) string {
	var le *LockedError
	if errors.As(err, &le) {
		return fmt.Sprintf("stop the other agent, give this one another --data-dir, or set store.enabled: false (retrying every %s at most)", h.opts.RetryMax)
	}
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Sprintf("give the agent write access to %s, choose another --data-dir, or set store.enabled: false", h.opts.LockDir)
	}
	return h.hint
}

// Shutdown stops retrying, closes the store if it is open and releases the
// data directory. It is idempotent and safe without Start.
func (h *Handle) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	cancel, done := h.cancel, h.done
	h.mu.Unlock()
	if cancel != nil {
		cancel()
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("store: waiting for open: %w", ctx.Err())
		}
	}
	h.mu.Lock()
	st, lock := h.st, h.lock
	h.st, h.lock, h.api = nil, nil, nil
	h.mu.Unlock()
	var err error
	if st != nil {
		err = st.Shutdown(ctx)
	}
	if h.opts.Registerer != nil {
		h.opts.Registerer.Unregister(handleMetrics{h})
	}
	return errors.Join(err, lock.Release())
}

// Store is the open store, or nil while it is down.
func (h *Handle) Store() *Store {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.st
}

// Status is the store's health now.
func (h *Handle) Status() Status {
	h.mu.RLock()
	s, st := h.status, h.st
	h.mu.RUnlock()
	if st != nil {
		s.IngestFailures, s.IngestError = st.ingestHealth()
	}
	return s
}

// Routes lists the patterns Register serves: the query API, buildinfo and
// the status route.
func Routes() []string {
	return append(append([]string(nil), APIRoutes...), "GET /api/v1/status/buildinfo", StatusRoute)
}

// Register adds the query API routes (answering "unavailable" with the
// reason and hint while the store is down), /api/v1/status/buildinfo and
// /api/v1/status/store through handle.
func (h *Handle) Register(handle func(pattern string, hd http.Handler)) {
	for _, p := range APIRoutes {
		handle(p, h.dispatch(p))
	}
	handle("GET /api/v1/status/buildinfo", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		(&API{}).respond(w, apiResult{data: h.opts.BuildInfo})
	}))
	handle(StatusRoute, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		(&API{}).respond(w, apiResult{data: h.Status()})
	}))
}

func (h *Handle) dispatch(pattern string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.RLock()
		hd := h.api[pattern]
		s := h.status
		h.mu.RUnlock()
		if hd != nil {
			hd.ServeHTTP(w, r)
			return
		}
		msg := "the embedded store is not open"
		if s.Reason != "" {
			msg = "the embedded store is " + s.State + ": " + s.Reason
		}
		if s.Hint != "" {
			msg += " (" + s.Hint + ")"
		}
		(&API{}).respondError(w, &apiError{ErrUnavailable, errors.New(msg)})
	})
}

// handleMetrics exports netsight_store_up and the open failure count.
type handleMetrics struct{ h *Handle }

func (m handleMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.h.upDesc
	m.h.failures.Describe(ch)
}

func (m handleMetrics) Collect(ch chan<- prometheus.Metric) {
	up := 0.0
	if m.h.Status().Up {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(m.h.upDesc, prometheus.GaugeValue, up)
	m.h.failures.Collect(ch)
}

// logIngest logs a failed ingest round at most once per backoff period and
// a "recovered after N failures" line when rounds succeed again.
func (s *Store) logIngest(err error) {
	if err == nil {
		if s.ingestLog.OK() {
			s.ingestErr.Store(nil)
		}
		return
	}
	msg := err.Error()
	s.ingestErr.Store(&msg)
	s.ingestLog.Fail(err, "dir", s.opts.Dir)
}

// ingestHealth is the number of consecutive failed ingest rounds and the
// last error.
func (s *Store) ingestHealth() (int, string) {
	n := s.ingestLog.Failures()
	if n == 0 {
		return 0, ""
	}
	if p := s.ingestErr.Load(); p != nil {
		return n, *p
	}
	return n, ""
}

// Queryable reads the store while it is open; while it is down (or
// disabled) a Querier fails with the store's state and reason, so readers
// such as the outputs retry instead of losing their place.
func (h *Handle) Queryable() storage.Queryable {
	return storage.QueryableFunc(func(mint, maxt int64) (storage.Querier, error) {
		st := h.Store()
		if st == nil {
			s := h.Status()
			return nil, fmt.Errorf("store %s: %s", s.State, s.Reason)
		}
		return st.Queryable().Querier(mint, maxt)
	})
}

// Interval is the store's scrape interval.
func (h *Handle) Interval() time.Duration { return h.opts.Interval }
