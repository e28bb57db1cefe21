package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/netsight/netsight/config"
)

// Query limit defaults (docs/store.md lists them with their config keys,
// store.query.*).
const (
	// DefaultMaxSubquerySteps caps the steps one subquery evaluates, like the
	// 11,000 points per series of a range query: [1h:1s] is 3,601 steps,
	// [7d:1m] 10,081, [7d:1ms] 604.8 million (rejected).
	DefaultMaxSubquerySteps = 11000
	// DefaultMaxConcurrent heavy queries evaluate at once; DefaultMaxQueued
	// more may wait up to DefaultQueueTimeout for a slot.
	DefaultMaxConcurrent = 2
	DefaultMaxQueued     = 16
	DefaultQueueTimeout  = 5 * time.Second
	// DefaultMaxResponseBytes caps one encoded answer; the bytes of answers
	// being written at once are capped at responseBudgetFactor times that.
	DefaultMaxResponseBytes = 32 << 20
	// LightMaxCost: a query whose estimated cost (samples it touches) is at
	// most this runs in the light lane, with its own LightSlots slots, so the
	// dashboard's small queries never wait behind heavy ones. The dashboard's
	// instant values cost 10-10,000, its 1 h charts 1,000-100,000.
	LightMaxCost = 1_000_000
	// LightSlots is the light lane's concurrency.
	LightSlots = 4
	// responseBudgetFactor: answers being written hold at most this many
	// max_response_bytes at once (a client that does not read keeps its
	// answer until the server's write timeout closes the connection).
	responseBudgetFactor = 3
)

// Limits bound what the query API lets one request and all requests
// together cost. Zero fields take the defaults.
type Limits struct {
	// MaxSamples is the engine's limit on samples held in memory by one
	// query (default 5e6, ~80 MB at worst); the cost estimate rejects a
	// subquery that would materialize more before it runs.
	MaxSamples int
	// Timeout bounds one evaluation (default 30s); a request's own timeout
	// parameter can only shorten it.
	Timeout time.Duration
	// MaxSubquerySteps caps the steps of each subquery (default 11000).
	MaxSubquerySteps int
	// MaxConcurrent heavy queries run at once (default 2); MaxQueued more
	// wait (default 16; negative: none) at most QueueTimeout (default 5s);
	// beyond that the answer is 503 "unavailable".
	MaxConcurrent int
	MaxQueued     int
	QueueTimeout  time.Duration
	// MaxResponseBytes caps one encoded answer (default 32 MiB).
	MaxResponseBytes int64
}

func (l *Limits) setDefaults() {
	if l.MaxSamples <= 0 {
		l.MaxSamples = DefaultMaxSamples
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultQueryTimeout
	}
	if l.MaxSubquerySteps <= 0 {
		l.MaxSubquerySteps = DefaultMaxSubquerySteps
	}
	if l.MaxConcurrent <= 0 {
		l.MaxConcurrent = DefaultMaxConcurrent
	}
	if l.MaxQueued == 0 { // negative: no queue
		l.MaxQueued = DefaultMaxQueued
	}
	if l.QueueTimeout <= 0 {
		l.QueueTimeout = DefaultQueueTimeout
	}
	if l.MaxResponseBytes <= 0 {
		l.MaxResponseBytes = DefaultMaxResponseBytes
	}
}

// lane is a bounded pool of query slots with a bounded wait queue.
type lane struct {
	name    string
	slots   chan struct{}
	waiting chan struct{} // capacity = max queued
	timeout time.Duration
	onWait  func(time.Duration)
}

func newLane(name string, slots, queued int, timeout time.Duration) *lane {
	return &lane{name: name, slots: make(chan struct{}, max(1, slots)), waiting: make(chan struct{}, max(0, queued)), timeout: timeout}
}

// errLaneFull and errQueueTimeout become 503 "unavailable" answers.
var (
	errLaneFull     = errors.New("query queue full")
	errQueueTimeout = errors.New("timed out waiting for a query slot")
)

// acquire takes a slot at once, or waits in the queue (if it has room) for
// at most the lane's timeout or until ctx ends.
func (l *lane) acquire(ctx context.Context) (func(), error) {
	release := func() { <-l.slots }
	select {
	case l.slots <- struct{}{}:
		return release, nil
	default:
	}
	select {
	case l.waiting <- struct{}{}:
	default:
		return nil, fmt.Errorf("%w: %d %s queries running and %d waiting (store.query.max_concurrent, store.query.max_queued)",
			errLaneFull, cap(l.slots), l.name, cap(l.waiting))
	}
	defer func() { <-l.waiting }()
	start := time.Now()
	t := time.NewTimer(l.timeout)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		if l.onWait != nil {
			l.onWait(time.Since(start))
		}
		return release, nil
	case <-t.C:
		return nil, fmt.Errorf("%w: waited %s behind %d running %s queries (store.query.queue_timeout)",
			errQueueTimeout, l.timeout, cap(l.slots), l.name)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func defaultLightSlots() int { return max(LightSlots, runtime.GOMAXPROCS(0)) }

// LimitsFromConfig maps store.query to Limits.
func LimitsFromConfig(q config.StoreQuery) Limits {
	return Limits{
		MaxSamples:       q.MaxSamples,
		Timeout:          q.Timeout,
		MaxSubquerySteps: q.MaxSubquerySteps,
		MaxConcurrent:    q.MaxConcurrent,
		MaxQueued:        cmp.Or(q.MaxQueued, -1), // 0 in the config: no queue
		QueueTimeout:     q.QueueTimeout,
		MaxResponseBytes: q.MaxResponseBytes,
	}
}
