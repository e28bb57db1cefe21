package agent

import (
	"context"
	"sync"
	"time"

	"github.com/netsight/netsight/monitor/health"
)

// healthLoop evaluates the health verdict every monitors.evaluate_every
// (read again at each tick, so a reload changes the cadence) over the
// monitors' windows and the host's own counters.
type healthLoop struct {
	a      *Agent
	wg     sync.WaitGroup
	cancel context.CancelFunc
}

func (l *healthLoop) Start(ctx context.Context) error {
	ctx, l.cancel = context.WithCancel(ctx)
	reader := &health.HostReader{
		ProcFS:  HostPaths(l.a.Config()).ProcFS,
		Sources: l.a.source,
		Warn: func(part string, err error) {
			l.a.logger.Info("health verdict reads no "+part+" (its rules stay quiet)", "component", "health", "err", err)
		},
	}
	// A first evaluation now: the verdict (insufficient_data until the
	// windows fill) exists from the first scrape on.
	now := time.Now()
	l.a.health.Evaluate(now, l.a.monitors.Windows(now), reader.Read(ctx, now))
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		every := l.a.Config().Monitors.EvaluateEvery
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				l.a.health.Evaluate(now, l.a.monitors.Windows(now), reader.Read(ctx, now))
				if e := l.a.Config().Monitors.EvaluateEvery; e != every && e > 0 {
					every = e
					t.Reset(every)
				}
			}
		}
	}()
	return nil
}

func (l *healthLoop) Shutdown(context.Context) error {
	if l.cancel != nil {
		l.cancel()
	}
	l.wg.Wait()
	return nil
}

// startHealth starts the verdict's evaluation (stopped with the outputs).
func (a *Agent) startHealth(ctx context.Context) {
	l := &healthLoop{a: a}
	_ = l.Start(ctx)
	a.comps = append(a.comps, l)
}

// source is the running source of a collector type, nil when it does not
// run (the current manager's: a reload swaps them).
func (a *Agent) source(name string) any {
	a.mu.RLock()
	m := a.manager
	a.mu.RUnlock()
	if m == nil {
		return nil
	}
	return m.Source(name)
}
