package topology

import (
	"cmp"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
)

// Resolver maps addresses to places. The zero value knows nothing (every
// address is "default"); Set installs what the sources found. It is safe
// for concurrent use.
type Resolver struct {
	mu     sync.RWMutex
	gen    atomic.Uint64
	nets   []entry // longest prefix first
	addrs  map[netip.Addr]bool
	host   Place
	status []Status
}

type entry struct {
	p netip.Prefix
	n *Network
}

// Set replaces the resolver's knowledge: networks in order of precedence
// (config first, then IMDS, then Kubernetes: an earlier source wins for
// the same prefix length), this host's own addresses, and the host's own
// place (its zone, VPC and region, "" when unknown).
func (r *Resolver) Set(networks []Network, hostAddrs []netip.Addr, host Place) {
	var es []entry
	for i := range networks {
		n := &networks[i]
		for _, p := range n.Prefixes {
			es = append(es, entry{p.Masked(), n})
		}
	}
	// Stable: equal lengths keep the sources' order.
	slices.SortStableFunc(es, func(a, b entry) int { return cmp.Compare(b.p.Bits(), a.p.Bits()) })
	addrs := make(map[netip.Addr]bool, len(hostAddrs))
	for _, a := range hostAddrs {
		addrs[a.Unmap()] = true
	}
	r.mu.Lock()
	r.nets, r.addrs, r.host = es, addrs, host
	r.gen.Add(1)
	r.mu.Unlock()
}

// Gen counts Set calls: a cached classification older than Gen is stale.
func (r *Resolver) Gen() uint64 { return r.gen.Load() }

// Host is this host's own place (from IMDS; empty otherwise).
func (r *Resolver) Host() Place {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.host
}

// Lookup returns where a sits (Category is left empty: it depends on the
// other end; see Classify).
func (r *Resolver) Lookup(a netip.Addr) Place {
	a = a.Unmap()
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.lookup(a)
}

func (r *Resolver) lookup(a netip.Addr) Place {
	for _, e := range r.nets {
		if e.p.Contains(a) {
			return Place{Network: e.n.Name, Zone: e.n.Zone, VPC: e.n.VPC, Region: e.n.Region, Source: e.n.Source}
		}
	}
	if a.IsLoopback() || r.addrs[a] {
		return Place{Network: r.host.Network, Zone: r.host.Zone, VPC: r.host.VPC, Region: r.host.Region, Source: SourceHost}
	}
	return Place{Source: SourceDefault}
}

// Classify returns the places of both ends of a connection, the remote's
// with its Category set; gen is the Gen the answer reflects.
func (r *Resolver) Classify(local, remote netip.Addr) (lp, rp Place, gen uint64) {
	local, remote = local.Unmap(), remote.Unmap()
	r.mu.RLock()
	defer r.mu.RUnlock()
	lp, rp = r.lookup(local), r.lookup(remote)
	if remote.IsLoopback() || r.addrs[remote] || remote == local {
		rp.Category = Host
	} else {
		rp.Category = Category(lp, rp, r.host, remote)
	}
	lp.Category = Host
	return lp, rp, r.gen.Load()
}

// NetworkNames returns the names of networks (for validation messages).
func NetworkNames(ns []Network) []string {
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return out
}
