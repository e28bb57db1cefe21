package config

import (
	"errors"
	"time"
)

// StoreQuery bounds the query API (store.query). docs/store.md documents
// each key, its default and its range.
type StoreQuery struct {
	// Timeout bounds one evaluation; a request's timeout parameter can only
	// shorten it.
	Timeout time.Duration `yaml:"timeout"`
	// MaxSamples is the most samples one query holds in memory.
	MaxSamples int `yaml:"max_samples"`
	// MaxSubquerySteps is the most steps one subquery evaluates.
	MaxSubquerySteps int `yaml:"max_subquery_steps"`
	// MaxConcurrent heavy queries evaluate at once; MaxQueued more wait at
	// most QueueTimeout.
	MaxConcurrent int           `yaml:"max_concurrent"`
	MaxQueued     int           `yaml:"max_queued"`
	QueueTimeout  time.Duration `yaml:"queue_timeout"`
	// MaxResponseBytes caps one encoded answer.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
}

// DefaultStoreQuery is store.query when the config does not set it.
func DefaultStoreQuery() StoreQuery {
	return StoreQuery{
		Timeout:          30 * time.Second,
		MaxSamples:       5_000_000,
		MaxSubquerySteps: 11000,
		MaxConcurrent:    2,
		MaxQueued:        16,
		QueueTimeout:     5 * time.Second,
		MaxResponseBytes: 32 << 20,
	}
}

// Validate checks the ranges.
func (q *StoreQuery) Validate() error {
	var errs []error
	durRange := func(field string, v, lo, hi time.Duration) {
		if v < lo || v > hi {
			errs = append(errs, Errorf(field, "must be between %s and %s, got %s", lo, hi, v))
		}
	}
	intRange := func(field string, v, lo, hi int64) {
		if v < lo || v > hi {
			errs = append(errs, Errorf(field, "must be between %d and %d, got %d", lo, hi, v))
		}
	}
	durRange("timeout", q.Timeout, time.Second, 10*time.Minute)
	intRange("max_samples", int64(q.MaxSamples), 10_000, 500_000_000)
	intRange("max_subquery_steps", int64(q.MaxSubquerySteps), 100, 1_000_000)
	intRange("max_concurrent", int64(q.MaxConcurrent), 1, 64)
	intRange("max_queued", int64(q.MaxQueued), 0, 1024)
	durRange("queue_timeout", q.QueueTimeout, 100*time.Millisecond, 5*time.Minute)
	intRange("max_response_bytes", q.MaxResponseBytes, 1<<20, 4<<30)
	return errors.Join(errs...)
}

// Limits are process-wide resource limits (limits).
type Limits struct {
	// Memory is the soft memory limit (GOMEMLIMIT) in bytes. 0 derives it
	// from the cgroup's memory limit (85%); a GOMEMLIMIT environment
	// variable wins over both.
	Memory int64 `yaml:"memory"`
}

// Validate checks the limits section.
func (l *Limits) Validate() error {
	if l.Memory != 0 && l.Memory < 64<<20 {
		return Errorf("memory", "must be 0 (derive from the cgroup) or at least 67108864 (64 MiB), got %d", l.Memory)
	}
	return nil
}

// writeTimeoutValidate: a query's answer must be writable after it waited
// in the queue and ran for its full timeout.
func (c *Config) writeTimeoutValidate() error {
	w := c.Server.WriteTimeout
	if w < time.Second || w > time.Hour {
		return Errorf("server.write_timeout", "must be between 1s and 1h, got %s", w)
	}
	if need := c.Store.Query.Timeout + c.Store.Query.QueueTimeout; c.Store.StoreEnabled() && w <= need {
		return Errorf("server.write_timeout", "must exceed store.query.timeout + store.query.queue_timeout (%s), got %s", need, w)
	}
	return nil
}
