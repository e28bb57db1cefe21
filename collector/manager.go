package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/internal/logutil"
)

// State of a collector as shown by Status.
type State string

// Collector states.
const (
	StateRunning     State = "running"
	StateDisabled    State = "disabled"
	StateUnsupported State = "unsupported"
	StateFailed      State = "failed"
)

// Status is one collector's health, for the dashboard and logs.
type Status struct {
	Name  string `json:"name"`
	State State  `json:"state"`
	Up    bool   `json:"up"`
	// Idle is true for a running collector with nothing to do (a probe
	// collector without targets); Reason says why.
	Idle        bool          `json:"idle,omitempty"`
	Reason      string        `json:"reason,omitempty"`
	Interval    time.Duration `json:"-"` // JSON: interval_seconds
	LastUpdate  time.Time     `json:"last_update,omitzero"`
	LastSuccess time.Time     `json:"last_success,omitzero"`
	Duration    float64       `json:"duration_seconds"`
	Errors      uint64        `json:"errors_total"`
	Series      int           `json:"series"`
}

type statusJSON Status

// MarshalJSON writes Interval as interval_seconds (a float), like every
// duration netsight prints.
func (s Status) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		statusJSON
		IntervalSeconds float64 `json:"interval_seconds"`
	}{statusJSON(s), s.Interval.Seconds()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Status) UnmarshalJSON(b []byte) error {
	var j struct {
		statusJSON
		IntervalSeconds float64 `json:"interval_seconds"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = Status(j.statusJSON)
	s.Interval = time.Duration(math.Round(j.IntervalSeconds * float64(time.Second)))
	return nil
}

var (
	upDesc = prometheus.NewDesc("netsight_collector_up",
		"Whether the collector's last update succeeded (1) or not (0).", []string{"collector"}, nil)
	durationDesc = prometheus.NewDesc("netsight_collector_duration_seconds",
		"Duration of the collector's last update.", []string{"collector"}, nil)
	errorsDesc = prometheus.NewDesc("netsight_collector_errors_total",
		"Updates of the collector that returned an error.", []string{"collector"}, nil)
	lastSuccessDesc = prometheus.NewDesc("netsight_collector_last_success_timestamp_seconds",
		"Unix time of the collector's last successful update.", []string{"collector"}, nil)
)

type entry struct {
	name     string
	c        Collector
	interval time.Duration
	timeout  time.Duration
	logger   *slog.Logger

	mu       sync.Mutex
	status   Status
	snapshot []prometheus.Metric
	errlog   *logutil.ErrorLog // update failures: one line per backoff period, then "recovered"
	// dead is the error of a Run that ended by itself: the collector
	// stays down (Update results notwithstanding) until a reload
	// rebuilds it.
	dead error
	// idle is why a running collector has nothing to do ("" when busy):
	// the Reason of its successful updates.
	idle string
}

// Manager runs collectors and exposes their snapshots.
type Manager struct {
	logger  *slog.Logger
	entries []*entry

	ready    chan struct{}
	readyOne sync.Once
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// NewManager builds every registered collector whose section in cfgs is
// enabled. A collector that is not supported here is kept, down, with its
// reason; one that fails otherwise is fatal only when the user enabled it
// explicitly.
func NewManager(cfgs config.Collectors, deps Deps) (*Manager, error) {
	deps = deps.WithDefaults()
	m := &Manager{logger: deps.Logger, ready: make(chan struct{})}
	for _, f := range Factories() {
		cfg, ok := cfgs[f.Type()]
		if !ok {
			cfg = f.DefaultConfig()
		}
		common := cfg.Common()
		e := &entry{
			name:     f.Type(),
			interval: common.Interval,
			timeout:  common.Timeout,
			logger:   deps.Logger.With("collector", f.Type()),
		}
		e.errlog = logutil.New(e.logger, "collector update failed")
		if e.timeout <= 0 || e.timeout > e.interval {
			e.timeout = e.interval
		}
		e.status = Status{Name: e.name, Interval: e.interval}
		m.entries = append(m.entries, e)
		if !common.IsEnabled() {
			reason := disabledReason(e.name, f.DefaultConfig().Common().IsEnabled())
			e.status.State, e.status.Reason = StateDisabled, reason
			e.logger.Info("collector disabled", "reason", reason)
			continue
		}
		d := deps
		d.Logger = e.logger
		c, err := f.New(cfg, d)
		switch {
		case err == nil:
			e.c = c
			e.status.State = StateRunning
			if i, ok := c.(Idler); ok {
				if why := i.Idle(); why != "" {
					e.status.Idle, e.status.Reason, e.idle = true, why, why
				}
			}
			if e.status.Idle {
				e.logger.Info("collector idle", "reason", e.status.Reason)
			} else {
				e.logger.Info("collector enabled", "interval", e.interval)
			}
		case errors.Is(err, ErrNotSupported):
			e.status.State, e.status.Reason = StateUnsupported, err.Error()
			e.logger.Warn("collector not supported on this host", "reason", err.Error())
		case common.Explicit():
			m.closeAll()
			return nil, fmt.Errorf("collector %s: %w", f.Type(), err)
		default:
			e.status.State, e.status.Reason = StateFailed, err.Error()
			e.logger.Error("collector failed to start", "err", err)
		}
	}
	return m, nil
}

// Idler is implemented by collectors that can run with nothing to do (a
// probe collector without targets). Idle returns why, "" when busy; the
// status then says idle instead of up.
type Idler interface {
	Idle() string
}

// disabledReason says how to turn a disabled collector on: an opt-in one
// (off by default) needs enabled: true, a default-on one was switched off.
func disabledReason(name string, onByDefault bool) string {
	if onByDefault {
		return "disabled in the config (collectors." + name + ".enabled: false)"
	}
	return "disabled (opt-in: set collectors." + name + ".enabled: true)"
}

// Start runs every built collector until ctx ends or Stop is called.
// It returns at once.
func (m *Manager) Start(ctx context.Context) {
	ctx, m.cancel = context.WithCancel(ctx)
	var first sync.WaitGroup
	for _, e := range m.entries {
		if e.c == nil {
			continue
		}
		if r, ok := e.c.(Runner); ok {
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				err := r.Run(ctx)
				if ctx.Err() != nil {
					return // shutdown or reload
				}
				if err == nil {
					err = errors.New("background work ended before shutdown")
				}
				e.fail(err)
			}()
		}
		first.Add(1)
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			e.loop(ctx, first.Done)
		}()
	}
	go func() {
		first.Wait()
		m.readyOne.Do(func() { close(m.ready) })
	}()
}

// Ready is closed once every running collector finished its first update.
func (m *Manager) Ready() <-chan struct{} { return m.ready }

// Stop cancels the collectors, waits for them (at most until ctx ends) and
// closes them. It is safe to call more than once and without Start.
func (m *Manager) Stop(ctx context.Context) error {
	var err error
	m.stopOnce.Do(func() {
		if m.cancel != nil {
			m.cancel()
		}
		done := make(chan struct{})
		go func() { m.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("collectors did not stop in time: %w", ctx.Err())
		}
		m.closeAll()
	})
	return err
}

func (m *Manager) closeAll() {
	for _, e := range m.entries {
		if cl, ok := e.c.(Closer); ok {
			if err := cl.Close(); err != nil {
				e.logger.Warn("close collector", "err", err)
			}
		}
	}
}

// Status returns every collector's status, sorted by name.
func (m *Manager) Status() []Status {
	out := make([]Status, 0, len(m.entries))
	for _, e := range m.entries {
		e.mu.Lock()
		out = append(out, e.status)
		e.mu.Unlock()
	}
	return out
}

// Source returns the collector of type name while it runs and is up (its
// read interfaces are what monitor derives views from), else nil.
func (m *Manager) Source(name string) any {
	for _, e := range m.entries {
		if e.name != name || e.c == nil {
			continue
		}
		e.mu.Lock()
		up := e.status.Up
		e.mu.Unlock()
		if up {
			return e.c
		}
	}
	return nil
}

// UpdateNow runs one update of every running collector synchronously
// (tests and one-shot commands).
func (m *Manager) UpdateNow(ctx context.Context) {
	for _, e := range m.entries {
		if e.c != nil {
			e.update(ctx)
		}
	}
}

// Describe sends nothing: the manager is an unchecked collector because the
// series a collector exposes depend on the host.
func (m *Manager) Describe(chan<- *prometheus.Desc) {}

// Collect sends every snapshot and the self-metrics.
func (m *Manager) Collect(ch chan<- prometheus.Metric) {
	for _, e := range m.entries {
		e.mu.Lock()
		st, snap := e.status, e.snapshot
		e.mu.Unlock()
		if st.State == StateDisabled {
			continue
		}
		for _, metric := range snap {
			ch <- metric
		}
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, b2f(st.Up), e.name)
		ch <- prometheus.MustNewConstMetric(durationDesc, prometheus.GaugeValue, st.Duration, e.name)
		ch <- prometheus.MustNewConstMetric(errorsDesc, prometheus.CounterValue, float64(st.Errors), e.name)
		if !st.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(lastSuccessDesc, prometheus.GaugeValue,
				float64(st.LastSuccess.UnixNano())/1e9, e.name)
		}
	}
}

func (e *entry) loop(ctx context.Context, firstDone func()) {
	// The first update runs at once (readiness); the ticks after it are
	// shifted by a random part of a tenth of the interval so that
	// collectors with the same interval do not all wake together.
	e.update(ctx)
	firstDone()
	if j := jitter(e.interval); j > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(j):
		}
	}
	t := time.NewTicker(e.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.update(ctx)
		}
	}
}

func (e *entry) update(parent context.Context) {
	ctx, cancel := context.WithTimeout(parent, e.timeout)
	defer cancel()
	start := time.Now()
	ch := make(chan prometheus.Metric, 256)
	done := make(chan error, 1)
	go func() {
		defer close(ch)
		done <- e.c.Update(ctx, ch)
	}()
	var metrics []prometheus.Metric
	for metric := range ch {
		metrics = append(metrics, metric)
	}
	err := <-done
	if parent.Err() != nil {
		return // shutting down: keep the last good snapshot
	}
	dur := time.Since(start)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.snapshot = metrics
	e.status.LastUpdate = start
	e.status.Duration = dur.Seconds()
	e.status.Series = len(metrics)
	if e.dead != nil {
		// Run ended: the metrics Update still sends are stale.
		e.status.Up, e.status.State, e.status.Reason = false, StateFailed, "stopped: "+e.dead.Error()
		return
	}
	if err == nil {
		e.errlog.OK()
		e.status.Up, e.status.State, e.status.Reason, e.status.LastSuccess = true, StateRunning, e.idle, start
		return
	}
	e.status.Errors++
	e.status.Up = false
	e.status.Reason = err.Error()
	if errors.Is(err, ErrNotSupported) {
		e.status.State = StateUnsupported
	}
	e.errlog.Fail(err, "duration", dur)
}

// fail marks the collector down for good: its Run ended by itself.
func (e *entry) fail(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dead = err
	e.status.Up, e.status.State, e.status.Reason = false, StateFailed, "stopped: "+err.Error()
	e.logger.Error("collector stopped; it stays down until a reload restarts it", "err", err)
}

// jitter is a random delay in [0, interval/10).
func jitter(interval time.Duration) time.Duration {
	if interval < 10 {
		return 0
	}
	return rand.N(interval / 10)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var _ prometheus.Collector = (*Manager)(nil)
