package agent

import (
	"context"
	"time"

	"github.com/netsight/netsight/export"
	"github.com/netsight/netsight/store"
)

// startExports builds and starts the `outputs:` list on the started store.
// An output that cannot be built is logged and reported as
// netsight_export_up{output} 0; it never stops the agent.
func (a *Agent) startExports(ctx context.Context, st *store.Handle) {
	if len(a.cfg.Outputs) == 0 {
		return
	}
	for _, oc := range a.cfg.Outputs {
		if !a.cfg.Store.StoreEnabled() {
			a.logger.Error("output not started: outputs read the embedded store, which is disabled (store.enabled: false)",
				"output", oc.Name)
			export.ReportFailed(a.reg, oc.Name)
			continue
		}
		o, err := export.New(oc, st.Queryable(), export.Deps{DataDir: a.cfg.DataDir, ScrapeInterval: st.Interval(),
			Registerer: a.reg, Logger: a.logger.With("component", "export")})
		if err == nil {
			err = o.Start(ctx)
		}
		if err != nil {
			a.logger.Error("output not started", "output", oc.Name, "type", oc.Type, "err", err)
			export.ReportFailed(a.reg, oc.Name)
			continue
		}
		a.logger.Info("output started", "output", oc.Name, "type", oc.Type, "url", oc.URL, "acked_until", time.UnixMilli(o.Delivery().Acked()).UTC())
		a.comps = append(a.comps, o)
	}
}
