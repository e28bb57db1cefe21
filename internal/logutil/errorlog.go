package logutil

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Default backoff bounds of an ErrorLog.
const (
	DefaultMinPeriod = time.Minute
	DefaultMaxPeriod = 30 * time.Minute
)

// ErrorLog rate-limits the log lines of one repeating failure. The first
// failure is logged at once; while failures go on, one line is logged per
// backoff period (MinPeriod, doubling up to MaxPeriod) carrying the number of
// failures so far and how many were not logged. The first success after a
// failure logs "<msg>: recovered after N failures". It is safe for
// concurrent use; the zero value is not usable, use New.
type ErrorLog struct {
	logger   *slog.Logger
	msg      string
	min, max time.Duration
	now      func() time.Time

	mu         sync.Mutex
	failures   int // consecutive failures
	suppressed int // failures not logged since the last line
	first      time.Time
	next       time.Time // no failure line before this
	period     time.Duration
}

// Option tunes an ErrorLog.
type Option func(*ErrorLog)

// WithPeriods sets the backoff bounds (min > 0, max >= min).
func WithPeriods(min, max time.Duration) Option {
	return func(l *ErrorLog) {
		if min > 0 {
			l.min = min
		}
		if max >= l.min {
			l.max = max
		}
	}
}

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(l *ErrorLog) { l.now = now } }

// New returns an ErrorLog that logs failures at warn level with message msg
// (e.g. "store ingest failed") through logger.
func New(logger *slog.Logger, msg string, opts ...Option) *ErrorLog {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &ErrorLog{logger: logger, msg: msg, min: DefaultMinPeriod, max: DefaultMaxPeriod, now: time.Now}
	for _, o := range opts {
		o(l)
	}
	if l.max < l.min {
		l.max = l.min
	}
	return l
}

// Fail records one failure and logs it unless a line was logged less than a
// backoff period ago (the next line carries the latest error). attrs are extra slog key-value pairs. It
// reports whether a line was written.
func (l *ErrorLog) Fail(err error, attrs ...any) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.failures++
	if l.failures == 1 {
		l.first = now
		l.next = now.Add(l.min)
		l.period = min(2*l.min, l.max)
		l.suppressed = 0
		l.logger.Warn(l.msg, append([]any{"err", err}, attrs...)...)
		return true
	}
	if now.Before(l.next) {
		l.suppressed++
		return false
	}
	l.logger.Warn(l.msg, append([]any{"err", err, "failures", l.failures, "not_logged", l.suppressed,
		"failing_for", now.Sub(l.first).Round(time.Second), "next_log_in", l.period}, attrs...)...)
	l.suppressed = 0
	l.next = now.Add(l.period)
	if l.period < l.max {
		l.period = min(2*l.period, l.max)
	}
	return true
}

// OK records a success. After failures it logs one info line
// "<msg>: recovered after N failures" and resets the backoff. It reports
// whether it logged.
func (l *ErrorLog) OK(attrs ...any) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failures == 0 {
		return false
	}
	n := l.failures
	l.logger.Info(fmt.Sprintf("%s: recovered after %d failures", l.msg, n),
		append([]any{"failures", n, "failing_for", l.now().Sub(l.first).Round(time.Second)}, attrs...)...)
	l.failures, l.suppressed = 0, 0
	return true
}

// Failures is the number of consecutive failures so far (0 when healthy).
func (l *ErrorLog) Failures() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failures
}
