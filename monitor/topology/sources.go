package topology

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/netsight/netsight/config"
)

// Options are the topology sources to ask.
type Options struct {
	Config config.Topology
	// SysFS is the sysfs root (config paths.sysfs) where imds: auto looks
	// for the EC2 vendor strings.
	SysFS string
	// Kube is the API server for kubernetes: api; zero: InClusterAPI.
	Kube KubeAPI
	// HostAddrs lists this host's addresses; nil: the interfaces of the
	// agent's network namespace.
	HostAddrs func() ([]netip.Addr, error)
	// Timeout bounds each request to IMDS or the API server (default 2s).
	Timeout time.Duration
	Logger  *slog.Logger
}

// Status is what one source gave, for /api/v1/monitors and the log.
type Status struct {
	Source string `json:"source"`
	// State is "ok", "off" or "error".
	State    string `json:"state"`
	Detail   string `json:"detail,omitempty"`
	Networks int    `json:"networks"`
}

// NoMetadataEnv, when set in the environment (CI sets it), keeps the agent
// from contacting the real instance metadata address whatever topology.imds
// says; a test binary never contacts it either.
const NoMetadataEnv = "NETSIGHT_NO_METADATA"

// metadataForbidden reports whether endpoint is the real metadata service
// (169.254.169.254 or fd00:ec2::254) and this process must not reach it.
func metadataForbidden(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil {
		return true
	}
	a, err := netip.ParseAddr(u.Hostname())
	if err != nil || a.Unmap() != netip.MustParseAddr("169.254.169.254") && a != netip.MustParseAddr("fd00:ec2::254") {
		return false
	}
	return testing.Testing() || os.Getenv(NoMetadataEnv) != ""
}

// ConfigNetworks converts topology.networks (already validated).
func ConfigNetworks(cfg []config.TopologyNetwork) []Network {
	out := make([]Network, 0, len(cfg))
	for _, n := range cfg {
		nw := Network{Name: n.Name, Zone: n.Zone, VPC: n.VPC, Region: n.Region, Source: SourceNetworks}
		for _, c := range n.CIDRs {
			if p, err := config.ParseCIDR(c); err == nil {
				nw.Prefixes = append(nw.Prefixes, p)
			}
		}
		out = append(out, nw)
	}
	return out
}

// Load asks every configured source and installs the answer in r: config
// networks first, then IMDS subnets and VPCs, then Kubernetes nodes. A
// source that fails is logged and reported in Status; the others still
// count. It returns the statuses (also kept for Statuses).
func (r *Resolver) Load(ctx context.Context, o Options) []Status {
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	nets := ConfigNetworks(o.Config.Networks)
	st := []Status{{Source: SourceNetworks, State: "ok", Networks: len(nets)}}
	if len(nets) == 0 {
		st[0].State = "off"
	}
	var host Place

	imds := Status{Source: SourceIMDS, State: "off"}
	switch mode := o.Config.IMDS; {
	case mode == "off":
	case mode == "auto" && !OnEC2(o.SysFS):
		imds.Detail = "auto: " + o.SysFS + "/class/dmi/id/sys_vendor and board_vendor do not say Amazon EC2"
	case metadataForbidden(o.Config.IMDSEndpoint):
		imds.State = "error"
		imds.Detail = "refusing the real metadata address in a test (set topology.imds_endpoint to a loopback server; " + NoMetadataEnv + " is set or this is a test binary)"
		log.Warn("topology: " + imds.Detail)
	default:
		info, err := FetchIMDS(ctx, o.Config.IMDSEndpoint, o.Timeout)
		if err != nil {
			imds.State, imds.Detail = "error", err.Error()
			log.Warn("topology: instance metadata unavailable; zones and VPCs come from the other sources only", "err", err)
		} else {
			imds.State, imds.Networks = "ok", len(info.Networks)
			imds.Detail = fmt.Sprintf("zone %s, region %s", info.ZoneID, info.Region)
			nets = append(nets, info.Networks...)
			host = info.Host
		}
	}
	st = append(st, imds)

	kube := Status{Source: SourceKubernetes, State: "off"}
	var ns []Network
	var err error
	switch k := o.Config.Kubernetes; {
	case k == "" || k == "off":
	case strings.HasPrefix(k, "file:"):
		ns, err = NodeNetworksFile(strings.TrimPrefix(k, "file:"))
	case k == "api":
		api := o.Kube
		if api.Server == "" {
			api, err = InClusterAPI()
		}
		if err == nil {
			ns, err = FetchNodeNetworks(ctx, api, o.Timeout)
		}
	}
	switch {
	case err != nil:
		kube.State, kube.Detail = "error", err.Error()
		log.Warn("topology: kubernetes nodes unavailable", "err", err)
	case o.Config.Kubernetes != "" && o.Config.Kubernetes != "off":
		kube.State, kube.Networks = "ok", len(ns)
		nets = append(nets, ns...)
	}
	st = append(st, kube)

	hostSt := Status{Source: SourceHost, State: "ok"}
	addrs, err := hostAddrs(o.HostAddrs)
	if err != nil {
		hostSt.State, hostSt.Detail = "error", err.Error()
	}
	hostSt.Networks = len(addrs)
	st = append(st, hostSt)

	r.Set(nets, addrs, host)
	r.mu.Lock()
	r.status = st
	r.mu.Unlock()
	return st
}

func hostAddrs(f func() ([]netip.Addr, error)) ([]netip.Addr, error) {
	if f != nil {
		return f()
	}
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("host addresses: %w", err)
	}
	var out []netip.Addr
	for _, a := range as {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}

// Statuses returns what each source gave at the last Load (nil before).
func (r *Resolver) Statuses() []Status {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]Status(nil), r.status...)
}
