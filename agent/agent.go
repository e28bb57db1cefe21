package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/internal/buildinfo"
	"github.com/netsight/netsight/internal/memlimit"
	"github.com/netsight/netsight/monitor"
	"github.com/netsight/netsight/monitor/health"
	"github.com/netsight/netsight/store"
	"github.com/netsight/netsight/web"
)

// ShutdownTimeout bounds a clean stop.
const ShutdownTimeout = 5 * time.Second

// Options are what the command line gives the agent.
type Options struct {
	ConfigFile string
	// ConfigOptional: a ConfigFile that does not exist means the defaults
	// (the default path when --config is not given).
	ConfigOptional bool
	// Overrides are dotted config paths set by flags, e.g.
	// "server.listen" -> "127.0.0.1:0". They win over the file.
	Overrides map[string]string
	// LogOutput receives logs (default stderr).
	LogOutput io.Writer
	// OnListen is called with the bound address once serving (tests).
	OnListen func(addr string)
}

// NewLogger builds the slog logger the config asks for.
func NewLogger(cfg config.Log, w io.Writer) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Agent is a running netsight.
type Agent struct {
	opts   Options
	logger *slog.Logger
	cfg    *config.Config
	reg    *prometheus.Registry
	server *web.Server
	// table is the per-connection table the sources feed and the flow
	// API reads (replaced by a reload that changes its bounds).
	table atomic.Pointer[flow.Table]
	store *store.Handle // the embedded store (down or disabled: its API answers "unavailable")
	comps []component   // started outputs, stopped in reverse order

	configFound bool   // ConfigFile was read
	dataDirNote string // why data_dir is not the configured one

	monitors *monitor.Engine // the monitors engine, fed by the table's observer
	topo     *topologyLoader
	health   *health.Engine // the health verdict over the monitors

	mu      sync.RWMutex
	manager *collector.Manager
}

// swapCollector forwards to the current manager so reloads keep one registry.
type swapCollector struct{ a *Agent }

func (s swapCollector) Describe(chan<- *prometheus.Desc) {}
func (s swapCollector) Collect(ch chan<- prometheus.Metric) {
	s.a.mu.RLock()
	m := s.a.manager
	s.a.mu.RUnlock()
	if m != nil {
		m.Collect(ch)
	}
}

// New loads the config and builds the agent without starting anything.
func New(opts Options) (*Agent, error) {
	a := &Agent{opts: opts}
	cfg, note, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	a.cfg, a.dataDirNote, a.logger = cfg, note, NewLogger(cfg.Log, opts.LogOutput)
	a.reg = prometheus.NewRegistry()
	a.monitors = newMonitors(cfg)
	a.health = health.New(health.DefaultConfig())
	a.reg.MustRegister(
		a.monitors,
		buildinfo.Collector(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: "netsight"}),
		swapCollector{a},
		a.monitorCollector(),
		health.NewCollector(a.health),
	)
	return a, nil
}

// Config is the configuration in force.
func (a *Agent) Config() *config.Config {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.cfg
}

// Status returns the collectors' status.
func (a *Agent) Status() []collector.Status {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.manager == nil {
		return nil
	}
	return a.manager.Status()
}

// Run starts everything and blocks until ctx ends or SIGINT/SIGTERM, then
// stops within ShutdownTimeout. SIGHUP reloads the config file.
func (a *Agent) Run(ctx context.Context) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	a.logger.Info("starting netsight", "version", buildinfo.Version, "revision", buildinfo.Revision(),
		"config", a.configSource(), "data_dir", a.cfg.DataDir)
	if a.dataDirNote != "" {
		a.logger.Info(a.dataDirNote, "data_dir", a.cfg.DataDir)
	}
	memlimit.Apply(a.cfg.Limits.Memory, a.logger)

	a.server = web.New(web.Options{
		Listen:        a.cfg.Server.Listen,
		WebConfigFile: a.cfg.Server.WebConfigFile,
		ReadTimeout:   a.cfg.Server.ReadTimeout,
		WriteTimeout:  a.cfg.Server.WriteTimeout,
		Gatherer:      a.reg,
		Registerer:    a.reg,
		Ready:         a.ready,
		Logger:        a.logger.With("component", "web"),
	})

	// Web config, certificates and the port are checked before anything
	// starts, so a mistake exits at once and names the field.
	if err := a.server.Listen(); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	if err := a.startCollectors(runCtx, a.cfg); err != nil {
		a.stopAll()
		return err
	}
	if err := a.startOutputs(runCtx); err != nil {
		a.stopAll()
		return err
	}
	a.mountRoutes()
	if err := a.server.Start(); err != nil {
		a.stopAll()
		return err
	}
	url := a.server.URL()
	a.logger.Info("netsight is serving", "dashboard", url, "metrics", url+"metrics")
	if a.opts.OnListen != nil {
		a.opts.OnListen(a.server.Addr().String())
	}

	for {
		select {
		case <-ctx.Done():
			a.logger.Info("shutting down")
			return a.stopAll()
		case <-a.server.Done():
			a.stopAll()
			return fmt.Errorf("http server: %w", a.server.Err())
		case <-hup:
			a.reload(runCtx)
		}
	}
}

func (a *Agent) ready() error {
	a.mu.RLock()
	m := a.manager
	a.mu.RUnlock()
	if m == nil {
		return errors.New("collectors not built")
	}
	select {
	case <-m.Ready():
		return nil
	default:
		return errors.New("collectors have not finished their first update")
	}
}

func (a *Agent) startCollectors(ctx context.Context, cfg *config.Config) error {
	m, err := collector.NewManager(cfg.Collectors, a.collectorDeps(cfg))
	if err != nil {
		return err
	}
	m.Start(ctx)
	a.mu.Lock()
	a.manager = m
	a.mu.Unlock()
	return nil
}

// reload re-reads the config file and rebuilds the collectors; on any error
// it keeps the running set and logs why.
func (a *Agent) reload(ctx context.Context) {
	cfg, _, err := a.loadConfig()
	if err != nil {
		a.logger.Error("config reload failed; keeping the running config", "err", err)
		return
	}
	if cfg.Server != a.cfg.Server || cfg.DataDir != a.cfg.DataDir {
		a.logger.Warn("server and data_dir changes need a restart; they are not applied by reload")
	}
	a.mu.RLock()
	old := a.manager
	a.mu.RUnlock()
	sctx, cancel := context.WithTimeout(ctx, ShutdownTimeout)
	defer cancel()
	if err := old.Stop(sctx); err != nil {
		a.logger.Warn("stopping collectors for reload", "err", err)
	}
	if err := a.startCollectors(ctx, cfg); err != nil {
		a.logger.Error("config reload failed to build collectors; restarting the previous set", "err", err)
		if err2 := a.startCollectors(ctx, a.cfg); err2 != nil {
			a.logger.Error("restarting previous collectors failed", "err", err2)
		}
		return
	}
	a.mu.Lock()
	a.cfg = cfg
	a.mu.Unlock()
	a.reloadMonitors(cfg)
	a.logger.Info("config reloaded", "config", a.configSource())
}

func (a *Agent) stopAll() error {
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	var errs []error
	if a.server != nil {
		sctx, c2 := context.WithTimeout(ctx, ShutdownTimeout/3)
		errs = append(errs, a.server.Shutdown(sctx))
		c2()
	}
	a.mu.RLock()
	m := a.manager
	a.mu.RUnlock()
	if m != nil {
		errs = append(errs, m.Stop(ctx))
	}
	for i := len(a.comps) - 1; i >= 0; i-- {
		errs = append(errs, a.comps[i].Shutdown(ctx))
	}
	err := errors.Join(errs...)
	if err != nil {
		a.logger.Warn("shutdown", "err", err)
	}
	return err
}

// ParseSets turns repeated "path=value" flags into overrides.
func ParseSets(sets []string) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--set %q: want path=value, e.g. collectors.flows.backend=sockdiag", s)
		}
		out[k] = v
	}
	return out, nil
}
