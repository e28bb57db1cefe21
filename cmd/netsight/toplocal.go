package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netsight/netsight/agent"
	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/collector/flows"
	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/internal/top"
)

// localOptions configure the collectors `netsight top` runs itself.
type localOptions struct {
	ConfigFile     string
	Sets           []string
	Interval       time.Duration
	Once           bool
	MaxConnections int
	Logger         *slog.Logger
}

// localSource runs the flows, conntrack, nic and probe collectors in this
// process, as the agent does, and reads them for top.
type localSource struct {
	mgr   *collector.Manager
	reg   *prometheus.Registry
	table *flow.Table
	limit int
}

// topCollectors are the collectors top runs; the others (capture,
// sockets, nftables) add nothing to its view.
var topCollectors = map[string]bool{"flows": true, "conntrack": true, "nic": true, "probe": true}

// localOverrides are top's settings of the local collectors; the user's
// --set come after them and win.
func localOverrides(o localOptions) map[string]string {
	m := map[string]string{}
	for _, f := range collector.Factories() {
		if !topCollectors[f.Type()] {
			m["collectors."+f.Type()+".enabled"] = "false"
		}
	}
	if o.Once {
		// One reading at start, one (UpdateNow) after the interval; the
		// loops stay idle in between.
		for name := range topCollectors {
			if name == "probe" {
				continue
			}
			m["collectors."+name+".interval"] = config.FormatDuration(config.MaxCollectorPeriod)
			m["collectors."+name+".timeout"] = "10s"
		}
		m["collectors.conntrack.forecast_window"] = config.FormatDuration(2 * config.MaxCollectorPeriod)
	} else {
		m["collectors.flows.interval"] = config.FormatDuration(o.Interval)
		slow := config.FormatDuration(max(o.Interval, 5*time.Second))
		m["collectors.conntrack.interval"] = slow
		m["collectors.nic.interval"] = slow
	}
	return m
}

func startLocal(ctx context.Context, o localOptions) (*localSource, error) {
	user, err := agent.ParseSets(o.Sets)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	overrides := localOverrides(o)
	for k, v := range user {
		overrides[k] = v
	}
	cfg, err := config.LoadFile(o.ConfigFile, overrides)
	if err != nil {
		return nil, err
	}
	table := flow.NewTable(flows.TableConfig(cfg.Collectors["flows"]))
	mgr, err := collector.NewManager(cfg.Collectors, collector.Deps{Logger: o.Logger, Paths: agent.HostPaths(cfg), Flows: table})
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(mgr); err != nil {
		_ = mgr.Stop(context.Background())
		return nil, err
	}
	mgr.Start(ctx)
	select {
	case <-mgr.Ready():
	case <-ctx.Done():
		_ = mgr.Stop(context.Background())
		return nil, ctx.Err()
	}
	return &localSource{mgr: mgr, reg: reg, table: table, limit: o.MaxConnections}, nil
}

func (l *localSource) Name() string { return "local" }

// Update runs one update of every collector now (--once: the second
// reading; the collectors' own loops are idle then).
func (l *localSource) Update(ctx context.Context) { l.mgr.UpdateNow(ctx) }

func (l *localSource) Snapshot(ctx context.Context, f flow.Filter) (*top.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if l.limit > 0 {
		f.Limit = l.limit + 1
	}
	recs := l.table.Flows(f)
	snap := &top.Snapshot{Time: time.Now(), Backend: l.table.Source(), Flows: recs}
	if l.limit > 0 && len(recs) > l.limit {
		snap.Flows, snap.Truncated = recs[:l.limit], true
	}
	mfs, err := l.reg.Gather()
	if err != nil && len(mfs) == 0 {
		return nil, fmt.Errorf("gather collectors: %w", err)
	}
	snap.Host = top.HostFromMetrics(mfs)
	var states []top.CollectorState
	for _, s := range l.mgr.Status() {
		if !topCollectors[s.Name] {
			continue
		}
		states = append(states, top.CollectorState{Name: s.Name, State: string(s.State), Up: s.Up, Reason: s.Reason})
	}
	snap.Host.MergeCollectors(states)
	return snap, nil
}

// Close stops the collectors.
func (l *localSource) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return l.mgr.Stop(ctx)
}
