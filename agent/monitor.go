package agent

import "github.com/netsight/netsight/monitor"

// monitorCollector is the derived views (NIC capacity, conntrack
// exhaustion forecast) over the current manager's sources, registered once:
// a reload swaps the sources it reads, the forecast's history stays.
func (a *Agent) monitorCollector() *monitor.Collector {
	return monitor.NewCollector(a.source)
}
