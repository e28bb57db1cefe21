package flows

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/collector/flows/ebpf"
	"github.com/netsight/netsight/collector/flows/sockdiag"
	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/internal/kernel"
)

func init() { collector.Register(collector.NewFactory("flows", DefaultConfig, New, check)) }

// check reports whether the configured back end can work: eBPF programs
// for backend ebpf (auto falls back to sock_diag, which needs nothing).
func check(_ context.Context, cfg *Config, _ collector.Deps) error {
	if cfg.Backend != BackendEBPF {
		return nil
	}
	if err := kernel.EBPFFlowSupport(); err != nil {
		return collector.NotSupported("eBPF flow programs", err)
	}
	return nil
}

// TableConfig is the bounds of the agent's per-connection table, from the
// collectors.flows section (defaults when cfg is not a *Config).
func TableConfig(cfg config.CollectorConfig) flow.Config {
	c, ok := cfg.(*Config)
	if !ok {
		c = DefaultConfig()
	}
	return flow.Config{MaxEntries: c.MaxConnections, IdleTimeout: c.IdleTimeout,
		Retention: max(c.Retention, time.Millisecond), TopK: c.TopK}
}

// source is a back end.
type source interface {
	name() string
	run(ctx context.Context, sink func(flow.Record)) error
	// refresh reports the open connections (called every interval).
	refresh(ctx context.Context, now time.Time, sink func(flow.Record)) error
	collect(ch chan<- prometheus.Metric)
	close() error
}

// Collector is the flows collector.
type Collector struct {
	cfg    *Config
	logger *slog.Logger
	table  *flow.Table
	src    source
}

// New builds the collector and loads its back end: in auto mode eBPF is
// tried first and sock_diag is used when eBPF cannot load (logged once).
// Records go into deps.Flows, the agent's table (a table of its own when
// nil).
func New(cfg *Config, deps collector.Deps) (*Collector, error) {
	deps = deps.WithDefaults()
	logger := deps.Logger
	table := deps.Flows
	if table == nil {
		table = flow.NewTable(TableConfig(cfg))
	}
	c := &Collector{cfg: cfg, logger: logger, table: table}
	switch cfg.Backend {
	case BackendEBPF, BackendAuto:
		cg, err := cgroupPath(cfg, deps)
		var tr *ebpf.Tracer
		if err == nil {
			tr, err = ebpf.Open(ebpf.Options{MaxConns: uint32(cfg.MaxConnections),
				RingBufferBytes: uint32(cfg.RingBufferBytes), CgroupPath: cg})
		}
		if err == nil {
			c.src = &ebpfSource{tr: tr}
			logger.Info("flows: eBPF back end attached", "cgroup", tr.CgroupPath())
			break
		}
		if cfg.Backend == BackendEBPF {
			return nil, collector.NotSupported("eBPF flow programs", err)
		}
		logger.Warn("flows: eBPF back end unavailable, falling back to sock_diag", "reason", err.Error())
		fallthrough
	case BackendSockDiag:
		proc := ""
		if cfg.Attribution() {
			proc = deps.Paths.ProcFS
		}
		c.src = &sockdiagSource{b: sockdiag.New(sockdiag.Options{ProcRoot: proc, MaxTracked: cfg.MaxConnections}), every: cfg.PollInterval, logger: logger}
	default:
		return nil, fmt.Errorf("flows: unknown backend %q", cfg.Backend)
	}
	c.table.SetSource(c.src.name())
	return c, nil
}

// cgroupPath is where the sock_ops program attaches: cgroup_path, else the
// cgroup v2 root under paths.cgroupfs (kernel.Cgroup2Root).
func cgroupPath(cfg *Config, deps collector.Deps) (string, error) {
	if cfg.CgroupPath != "" {
		return cfg.CgroupPath, nil
	}
	cg, err := kernel.Cgroup2Root(deps.Paths)
	if err != nil {
		return "", &ebpf.UnsupportedError{What: "cgroup v2 mount", Err: err}
	}
	return cg, nil
}

// Table returns the connection table.
func (c *Collector) Table() *flow.Table { return c.table }

// Backend returns the name of the back end in use.
func (c *Collector) Backend() string { return c.src.name() }

// Run feeds the table until ctx ends.
func (c *Collector) Run(ctx context.Context) error {
	if b, ok := c.src.(batchSource); ok {
		return b.runBatch(ctx, func(recs []flow.Record) { c.table.UpsertBatch(recs, time.Now()) })
	}
	return c.src.run(ctx, func(r flow.Record) { c.table.Upsert(r, time.Now()) })
}

// batchSource is a back end that can deliver closed connections in
// batches (one table lock and one clock read per batch).
type batchSource interface {
	runBatch(ctx context.Context, sink func([]flow.Record)) error
	refreshBatch(ctx context.Context, sink func([]flow.Record)) error
}

// Close releases the back end. It is safe to call more than once.
func (c *Collector) Close() error { return c.src.close() }

// Refresh asks the back end for the open connections now (tests and
// one-shot commands; Update calls it every interval).
func (c *Collector) Refresh(ctx context.Context) error {
	if b, ok := c.src.(batchSource); ok {
		return b.refreshBatch(ctx, func(recs []flow.Record) { c.table.UpsertBatch(recs, time.Now()) })
	}
	return c.src.refresh(ctx, time.Now(), func(r flow.Record) { c.table.Upsert(r, time.Now()) })
}

// Update refreshes open connections, ends the interval and sends metrics.
func (c *Collector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	err := c.Refresh(ctx)
	iv := c.table.Roll(time.Now())
	c.emit(ch, c.table.Totals(), iv)
	c.src.collect(ch)
	ch <- prometheus.MustNewConstMetric(backendDesc, prometheus.GaugeValue, 1, c.src.name())
	return err
}

// ---- back ends ----

type ebpfSource struct{ tr *ebpf.Tracer }

func (s *ebpfSource) name() string { return BackendEBPF }
func (s *ebpfSource) run(ctx context.Context, sink func(flow.Record)) error {
	return s.tr.Run(ctx, sink)
}
func (s *ebpfSource) runBatch(ctx context.Context, sink func([]flow.Record)) error {
	return s.tr.RunBatch(ctx, sink)
}
func (s *ebpfSource) refresh(_ context.Context, _ time.Time, sink func(flow.Record)) error {
	return s.tr.Active(sink)
}
func (s *ebpfSource) refreshBatch(_ context.Context, sink func([]flow.Record)) error {
	return s.tr.ActiveBatch(sink)
}
func (s *ebpfSource) close() error { return s.tr.Close() }
func (s *ebpfSource) collect(ch chan<- prometheus.Metric) {
	st, err := s.tr.Stats()
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(progsDesc, prometheus.GaugeValue, float64(st.ProgramsAttached))
	ch <- prometheus.MustNewConstMetric(ringLostDesc, prometheus.CounterValue, float64(st.RingBufferLost))
	ch <- prometheus.MustNewConstMetric(mapFullDesc, prometheus.CounterValue, float64(st.MapFull), "conns")
	ch <- prometheus.MustNewConstMetric(mapFullDesc, prometheus.CounterValue, float64(st.ListenersFull), "listeners")
	ch <- prometheus.MustNewConstMetric(eventsDesc, prometheus.CounterValue, float64(st.RingBufferRecords))
	ch <- prometheus.MustNewConstMetric(hotFullDesc, prometheus.CounterValue, float64(st.HotFull))
	ch <- prometheus.MustNewConstMetric(seededDesc, prometheus.CounterValue, float64(st.Seeded))
	ch <- prometheus.MustNewConstMetric(untrackedDesc, prometheus.CounterValue, float64(st.UntrackedCloses))
}

type sockdiagSource struct {
	b      *sockdiag.Backend
	every  time.Duration
	logger *slog.Logger
	pollMu sync.Mutex
}

func (s *sockdiagSource) name() string { return BackendSockDiag }

func (s *sockdiagSource) run(ctx context.Context, sink func(flow.Record)) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := s.b.Run(ctx, sink); err != nil && ctx.Err() == nil {
			// Without destroy notifications closes are inferred from polls.
			s.logger.Warn("flows: sock_diag destroy notifications unavailable; closed connections are seen by polling only", "err", err)
		}
		return nil
	})
	g.Go(func() error {
		// Poll at once: listeners (which tell server from client) and open
		// connections are known before the first close arrives.
		pctx, cancel := context.WithTimeout(ctx, max(s.every, time.Second))
		if err := s.poll(pctx, time.Now(), sink); err != nil && ctx.Err() == nil {
			s.logger.Debug("flows: sock_diag poll failed", "err", err)
		}
		cancel()
		t := time.NewTicker(s.every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case now := <-t.C:
				pctx, cancel := context.WithTimeout(ctx, max(s.every, time.Second))
				err := s.poll(pctx, now, sink)
				cancel()
				if err != nil && ctx.Err() == nil {
					s.logger.Debug("flows: sock_diag poll failed", "err", err)
				}
			}
		}
	})
	return g.Wait()
}

func (s *sockdiagSource) poll(ctx context.Context, now time.Time, sink func(flow.Record)) error {
	s.pollMu.Lock()
	defer s.pollMu.Unlock()
	return s.b.Poll(ctx, now, sink)
}

func (s *sockdiagSource) refresh(ctx context.Context, now time.Time, sink func(flow.Record)) error {
	return s.poll(ctx, now, sink)
}
func (s *sockdiagSource) close() error { return nil }
func (s *sockdiagSource) collect(ch chan<- prometheus.Metric) {
	st := s.b.Stats()
	ch <- prometheus.MustNewConstMetric(sdPollErrDesc, prometheus.CounterValue, float64(st.PollErrors))
	ch <- prometheus.MustNewConstMetric(sdLostDesc, prometheus.CounterValue, float64(st.DestroyLost))
	ch <- prometheus.MustNewConstMetric(sdClosedDesc, prometheus.CounterValue, float64(st.Destroyed), "destroy_notification")
	ch <- prometheus.MustNewConstMetric(sdClosedDesc, prometheus.CounterValue, float64(st.Vanished), "poll")
	ch <- prometheus.MustNewConstMetric(sdSkippedDesc, prometheus.CounterValue, float64(st.Skipped))
}

var _ collector.Collector = (*Collector)(nil)
var _ collector.Runner = (*Collector)(nil)
var _ collector.Closer = (*Collector)(nil)

// EBPFStats returns the eBPF back end's self-metrics; an error with the
// sock_diag back end.
func (c *Collector) EBPFStats() (ebpf.Stats, error) {
	s, ok := c.src.(*ebpfSource)
	if !ok {
		return ebpf.Stats{}, errors.New("not the eBPF back end")
	}
	return s.tr.Stats()
}

// EBPFProgramStats returns the in-kernel run time and run count of the eBPF
// programs (zero unless BPF statistics are enabled); an error with the
// sock_diag back end.
func (c *Collector) EBPFProgramStats() (ebpf.ProgramStats, error) {
	s, ok := c.src.(*ebpfSource)
	if !ok {
		return ebpf.ProgramStats{}, errors.New("not the eBPF back end")
	}
	return s.tr.ProgramStats()
}
