package agent

import (
	"context"
	"fmt"

	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/collector/flows"
	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/internal/kernel"
	"github.com/netsight/netsight/monitor/health"
	"github.com/netsight/netsight/store"
	"github.com/netsight/netsight/web"
	"github.com/netsight/netsight/web/dashboard"
)

// The agent's parts, wired here top to bottom (see docs/architecture.md):
//
//	sources (collectors, rebuilt by a reload) -> flow.Table -> outputs
//	(/metrics, the store and its query API, the flow API, the dashboard)
//
// Routes are mounted once, before the server starts; a reload rebuilds the
// collectors only, so no route ever changes.

// component is an output started after the collectors and stopped after
// them (the store).
type component interface {
	Start(ctx context.Context) error
	Shutdown(ctx context.Context) error
}

// collectorDeps are what every collector of cfg gets: logger, host paths,
// data directory and the per-connection table.
func (a *Agent) collectorDeps(cfg *config.Config) collector.Deps {
	return collector.Deps{
		Logger:  a.logger,
		Paths:   HostPaths(cfg),
		DataDir: cfg.DataDir,
		Flows:   a.flowTable(cfg),
	}
}

// HostPaths are the host roots of cfg (paths.procfs, paths.sysfs,
// paths.cgroupfs) for collectors and `netsight check`.
func HostPaths(cfg *config.Config) kernel.Paths {
	return kernel.Paths{ProcFS: cfg.Paths.ProcFS, SysFS: cfg.Paths.SysFS, CgroupFS: cfg.Paths.CgroupFS}.WithDefaults()
}

// flowTable returns the per-connection table for cfg: the current one,
// emptied of its source's name, or a new one when the bounds in
// collectors.flows changed.
func (a *Agent) flowTable(cfg *config.Config) *flow.Table {
	want := flows.TableConfig(cfg.Collectors["flows"])
	if t := a.table.Load(); t != nil && t.Config() == flow.NewTable(want).Config() {
		t.SetSource("")
		return t
	}
	t := flow.NewTable(want)
	t.SetObserver(a.monitors.Observe)
	a.table.Store(t)
	return t
}

// flowView is the flow API's view of the current table.
type flowView struct{ a *Agent }

func (v flowView) Flows(f flow.Filter) []flow.Record {
	if t := v.a.table.Load(); t != nil {
		return t.Flows(f)
	}
	return nil
}

func (v flowView) Source() string {
	if t := v.a.table.Load(); t != nil {
		return t.Source()
	}
	return ""
}

// startOutputs starts the store (a handle that never fails the agent: a
// store that cannot open is reported down and retried) and then the
// `outputs:` list, which reads the store.
func (a *Agent) startOutputs(ctx context.Context) error {
	h := store.NewAgentHandle(a.cfg.Store, a.cfg.DataDir, a.reg, a.reg, a.logger.With("component", "store"))
	if err := h.Start(ctx); err != nil {
		return fmt.Errorf("start store: %w", err)
	}
	a.store = h
	a.comps = append(a.comps, h)
	a.startExports(ctx, h)
	a.startMonitors(ctx)
	a.startHealth(ctx)
	return nil
}

// mountRoutes mounts every route of the HTTP server (besides /metrics,
// /healthz and /readyz, which web.New mounts).
func (a *Agent) mountRoutes() {
	a.server.Handle("GET /api/v1/status/collectors", jsonHandler(func() any { return a.Status() }))
	a.server.Handle(web.FlowsPattern, web.FlowsHandler(flowView{a}))
	a.store.Register(a.server.Handle)
	a.mountMonitors()
	a.server.Handle(health.Route, health.Handler(a.health))
	dashboard.Register(a.server.Handle, dashboard.NewMeta(a.cfg.Store.StoreEnabled(), a.cfg.Store.ScrapeInterval.Seconds()))
}
