package monitor

import (
	"net/netip"

	"github.com/netsight/netsight/config"
)

// EngineConfig converts the monitors section (validated) to the engine's
// configuration.
func EngineConfig(c config.Monitors) Config {
	out := Config{Window: c.Window}
	for _, m := range c.Items {
		out.Monitors = append(out.Monitors, Spec{
			Name:        m.Name,
			LocalNets:   m.Local.Networks,
			LocalCIDRs:  cidrs(m.Local.CIDRs),
			RemoteNets:  m.Remote.Networks,
			RemoteCIDRs: cidrs(m.Remote.CIDRs),
			RemoteCats:  m.Remote.Categories,
			RemotePorts: m.Remote.Ports,
		})
	}
	return out
}

func cidrs(ss []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		if p, err := config.ParseCIDR(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}
