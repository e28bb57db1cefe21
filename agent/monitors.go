package agent

import (
	"context"
	"sync"
	"time"

	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/monitor"
	"github.com/netsight/netsight/monitor/topology"
)

// topologyRefresh is how often the topology sources are asked again
// (Kubernetes nodes come and go; IMDS answers do not change).
const topologyRefresh = 10 * time.Minute

// newMonitors is the monitors engine of cfg (fed by the flow table's
// observer; registered once, reconfigured by a reload).
func newMonitors(cfg *config.Config) *monitor.Engine {
	return monitor.NewEngine(monitor.EngineConfig(cfg.Monitors), &topology.Resolver{})
}

// topologyLoader asks the topology sources (IMDS, Kubernetes) in the
// background, so a slow or absent metadata service never delays the
// agent: until the first answer every address is "default".
type topologyLoader struct {
	a      *Agent
	wg     sync.WaitGroup
	cancel context.CancelFunc
	reload chan struct{}
}

func (l *topologyLoader) Start(ctx context.Context) error {
	ctx, l.cancel = context.WithCancel(ctx)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTicker(topologyRefresh)
		defer t.Stop()
		for {
			cfg := l.a.Config()
			st := l.a.monitors.Resolver().Load(ctx, topology.Options{
				Config: cfg.Topology, SysFS: HostPaths(cfg).SysFS,
				Logger: l.a.logger.With("component", "topology"),
			})
			l.a.logger.Debug("topology loaded", "sources", st)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-l.reload:
			}
		}
	}()
	return nil
}

func (l *topologyLoader) Shutdown(context.Context) error {
	if l.cancel != nil {
		l.cancel()
	}
	l.wg.Wait()
	return nil
}

// startMonitors starts the topology loader (stopped with the outputs).
func (a *Agent) startMonitors(ctx context.Context) {
	l := &topologyLoader{a: a, reload: make(chan struct{}, 1)}
	_ = l.Start(ctx)
	a.topo = l
	a.comps = append(a.comps, l)
}

// reloadMonitors applies a reloaded config's monitors and asks the
// topology sources again.
func (a *Agent) reloadMonitors(cfg *config.Config) {
	a.monitors.Configure(monitor.EngineConfig(cfg.Monitors))
	if a.topo != nil {
		select {
		case a.topo.reload <- struct{}{}:
		default:
		}
	}
}

// mountMonitors mounts the monitors API.
func (a *Agent) mountMonitors() {
	h := monitor.Handler(a.monitors)
	for _, p := range []string{monitor.MonitorsPattern, monitor.TopPattern, monitor.InsightsPattern} {
		a.server.Handle(p, h)
	}
}
