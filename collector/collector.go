package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netsight/netsight/config"
)

// Collector is one source of metrics.
type Collector interface {
	// Update gathers current values and sends them to ch. It is called every
	// interval with a ctx whose deadline is the collector's timeout. A
	// partial failure may send some metrics and return an error.
	Update(ctx context.Context, ch chan<- prometheus.Metric) error
}

// Runner is implemented by collectors with background work (capture rings,
// probes, eBPF readers). Run blocks until ctx is cancelled; the manager
// starts it before the first Update and waits for it on shutdown. A Run
// that returns a non-nil error before ctx ends marks the collector down.
type Runner interface {
	Run(ctx context.Context) error
}

// Closer is implemented by collectors that hold resources after Run ends.
type Closer interface {
	Close() error
}

// Factory builds one collector type.
type Factory interface {
	// Type is the collector's name: its config section and label value.
	Type() string
	// DefaultConfig returns the section with every default filled in.
	DefaultConfig() config.CollectorConfig
	// New builds the collector. It returns an error wrapping
	// ErrNotSupported when the host lacks something it needs.
	New(cfg config.CollectorConfig, deps Deps) (Collector, error)
}

// Deps are what the agent gives every collector.
type Deps struct {
	Logger *slog.Logger
	// Handle registers an HTTP handler on the agent's server (for APIs such
	// as /api/v1/flows). It may be nil in tests.
	Handle func(pattern string, h http.Handler)
	// DataDir is the agent's data directory.
	DataDir string
	// Shared holds values one collector publishes for others (e.g. the
	// flow table), keyed by a name documented by the publisher.
	Shared *Shared
}

// Shared is a small concurrency-safe registry for cross-collector values.
type Shared struct {
	mu sync.RWMutex
	m  map[string]any
}

// Set publishes v under key.
func (s *Shared) Set(key string, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]any{}
	}
	s.m[key] = v
}

// Get returns the value under key.
func (s *Shared) Get(key string) (any, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.m[key]
	return v, ok
}

// ErrNotSupported marks a missing kernel feature or capability.
var ErrNotSupported = errors.New("not supported on this host")

// NotSupportedError names what is missing.
type NotSupportedError struct {
	// What is missing, e.g. "CAP_NET_ADMIN" or "nf_conntrack module".
	What string
	Err  error
}

func (e *NotSupportedError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("not supported: %s: %v", e.What, e.Err)
	}
	return "not supported: " + e.What
}

// Is makes errors.Is(err, ErrNotSupported) true.
func (e *NotSupportedError) Is(target error) bool { return target == ErrNotSupported }

func (e *NotSupportedError) Unwrap() error { return e.Err }

// NotSupported returns an error wrapping ErrNotSupported that names what is
// missing and why.
func NotSupported(what string, err error) error { return &NotSupportedError{What: what, Err: err} }

var (
	regMu     sync.RWMutex
	factories = map[string]Factory{}
)

// Register adds a factory; collector packages call it from init.
func Register(f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := factories[f.Type()]; dup {
		panic("collector: registered twice: " + f.Type())
	}
	factories[f.Type()] = f
	config.RegisterCollector(f.Type(), f.DefaultConfig)
}

// Factories returns the registered factories sorted by type.
func Factories() []Factory {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]Factory, 0, len(factories))
	for _, f := range factories {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type() < out[j].Type() })
	return out
}

// Lookup returns the factory of a type.
func Lookup(typ string) (Factory, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	f, ok := factories[typ]
	return f, ok
}
