package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/internal/kernel"
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
// that returns before ctx ends marks the collector down (up 0, the reason
// in its Status) until a reload rebuilds it, however its Updates fare.
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
	// Check reports whether this host has what the collector needs (nil),
	// or an error wrapping ErrNotSupported naming what is missing.
	// `netsight check` loops over it.
	Check(ctx context.Context, cfg config.CollectorConfig, deps Deps) error
}

// NewFactory returns the Factory of a collector whose config section is a
// C: the config type assertion lives here once. check may be nil (nothing
// to check beyond what New does).
func NewFactory[C config.CollectorConfig, T Collector](typ string, def func() C,
	build func(C, Deps) (T, error), check func(context.Context, C, Deps) error) Factory {
	return &factory[C, T]{typ: typ, def: def, build: build, check: check}
}

type factory[C config.CollectorConfig, T Collector] struct {
	typ   string
	def   func() C
	build func(C, Deps) (T, error)
	check func(context.Context, C, Deps) error
}

func (f *factory[C, T]) Type() string                          { return f.typ }
func (f *factory[C, T]) DefaultConfig() config.CollectorConfig { return f.def() }

func (f *factory[C, T]) config(cfg config.CollectorConfig) (C, error) {
	c, ok := cfg.(C)
	if !ok {
		return c, fmt.Errorf("collector %s: config has type %T, want %T", f.typ, cfg, f.def())
	}
	return c, nil
}

func (f *factory[C, T]) New(cfg config.CollectorConfig, deps Deps) (Collector, error) {
	c, err := f.config(cfg)
	if err != nil {
		return nil, err
	}
	col, err := f.build(c, deps.WithDefaults())
	if err != nil {
		return nil, err
	}
	return col, nil
}

func (f *factory[C, T]) Check(ctx context.Context, cfg config.CollectorConfig, deps Deps) error {
	if f.check == nil {
		return nil
	}
	c, err := f.config(cfg)
	if err != nil {
		return err
	}
	return f.check(ctx, c, deps.WithDefaults())
}

// Deps are what the agent gives every collector.
type Deps struct {
	Logger *slog.Logger
	// Now is the clock (time.Now when nil); tests pass a fake one.
	Now func() time.Time
	// Paths are the host filesystem roots (config paths.*).
	Paths kernel.Paths
	// DataDir is the agent's data directory.
	DataDir string
	// Flows is the agent's per-connection table: sources that see
	// connections (flows, capture) emit flow.Records into it. Nil in
	// tests that do not need one.
	Flows *flow.Table
}

// WithDefaults fills the zero fields: a discarding logger, time.Now and
// the default host paths.
func (d Deps) WithDefaults() Deps {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	d.Paths = d.Paths.WithDefaults()
	return d
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
