package config

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Topology tells the monitors where addresses sit (the topology section).
type Topology struct {
	// Networks are named address sets with their zone, VPC and region.
	Networks []TopologyNetwork `yaml:"networks"`
	// IMDS is off, on or auto (on only where sysfs says Amazon EC2).
	IMDS string `yaml:"imds"`
	// IMDSEndpoint is the instance metadata service's base URL.
	IMDSEndpoint string `yaml:"imds_endpoint"`
	// Kubernetes is off, api (in-cluster) or file:PATH (a node list).
	Kubernetes string `yaml:"kubernetes"`
}

// TopologyNetwork is one entry of topology.networks.
type TopologyNetwork struct {
	Name   string   `yaml:"name"`
	CIDRs  []string `yaml:"cidrs"`
	Zone   string   `yaml:"zone"`
	VPC    string   `yaml:"vpc"`
	Region string   `yaml:"region"`
}

// Monitors are the named local × remote scopes (the monitors section).
type Monitors struct {
	// EvaluateEvery is how often the agent evaluates the monitors (the
	// health verdict's cadence).
	EvaluateEvery time.Duration `yaml:"evaluate_every"`
	// Window is the span a monitor's figures sum over.
	Window time.Duration `yaml:"window"`
	Items  []Monitor     `yaml:"items"`
}

// Monitor is one entry of monitors.items.
type Monitor struct {
	Name   string        `yaml:"name"`
	Local  MonitorLocal  `yaml:"local"`
	Remote MonitorRemote `yaml:"remote"`
}

// MonitorLocal selects this host's side of a connection.
type MonitorLocal struct {
	Networks []string `yaml:"networks"`
	CIDRs    []string `yaml:"cidrs"`
}

// MonitorRemote selects the other side.
type MonitorRemote struct {
	Networks   []string `yaml:"networks"`
	CIDRs      []string `yaml:"cidrs"`
	Categories []string `yaml:"categories"`
	Ports      []uint16 `yaml:"ports"`
}

// Bounds of the monitors section.
const (
	MaxMonitors          = 64
	MaxTopologyNetworks  = 1024
	MinEvaluateEvery     = time.Second
	MaxEvaluateEvery     = 5 * time.Minute
	MinMonitorWindow     = 5 * time.Second
	MaxMonitorWindow     = 5 * time.Minute
	DefaultIMDSEndpoint  = "http://169.254.169.254"
	DefaultMonitorWindow = time.Minute
)

// TrafficCategories are the fixed traffic categories
// (monitors.items[].remote.categories).
var TrafficCategories = []string{"host", "intra_zone", "inter_zone", "same_vpc", "inter_vpc", "inter_region", "internet", "unclassified"}

// MonitorNameRE is the form of a monitor or network name.
var MonitorNameRE = regexp.MustCompile(`^[a-z0-9_.-]{1,64}$`)

// DefaultTopology is the topology section's default.
func DefaultTopology() Topology {
	return Topology{Networks: []TopologyNetwork{}, IMDS: "auto", IMDSEndpoint: DefaultIMDSEndpoint, Kubernetes: "off"}
}

// DefaultMonitors is the monitors section's default.
func DefaultMonitors() Monitors {
	return Monitors{EvaluateEvery: 10 * time.Second, Window: DefaultMonitorWindow, Items: []Monitor{}}
}

// Validate checks the topology section.
func (t *Topology) Validate() error {
	var errs []error
	if len(t.Networks) > MaxTopologyNetworks {
		errs = append(errs, Errorf("networks", "at most %d networks, got %d", MaxTopologyNetworks, len(t.Networks)))
	}
	seen := map[string]bool{}
	for i, n := range t.Networks {
		p := Index("networks", i)
		switch {
		case !MonitorNameRE.MatchString(n.Name):
			errs = append(errs, Errorf(p+".name", "must match [a-z0-9_.-]{1,64}, got %q", n.Name))
		case seen[n.Name]:
			errs = append(errs, Errorf(p+".name", "duplicate network %q", n.Name))
		}
		seen[n.Name] = true
		if len(n.CIDRs) == 0 {
			errs = append(errs, Errorf(p+".cidrs", "must list at least one CIDR"))
		}
		errs = append(errs, cidrsValidate(p+".cidrs", n.CIDRs))
	}
	if !slices.Contains([]string{"off", "on", "auto"}, t.IMDS) {
		errs = append(errs, Errorf("imds", "must be off, on or auto; got %q", t.IMDS))
	}
	if err := httpURLValidate(t.IMDSEndpoint); err != nil {
		errs = append(errs, Errorf("imds_endpoint", "%v", err))
	}
	switch k := t.Kubernetes; {
	case k == "off" || k == "api":
	case strings.HasPrefix(k, "file:") && len(k) > len("file:"):
	default:
		errs = append(errs, Errorf("kubernetes", "must be off, api or file:PATH; got %q", k))
	}
	return errors.Join(errs...)
}

func httpURLValidate(s string) error {
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return fmt.Errorf("must be an http:// or https:// URL, got %q", s)
	}
	return nil
}

func cidrsValidate(path string, cidrs []string) error {
	var errs []error
	for j, c := range cidrs {
		if _, err := ParseCIDR(c); err != nil {
			errs = append(errs, Errorf(Index(path, j), "%v", err))
		}
	}
	return errors.Join(errs...)
}

// ParseCIDR parses a prefix ("10.0.0.0/16") or a single address (a /32 or
// /128).
func ParseCIDR(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("invalid CIDR %q (want e.g. 10.0.0.0/16 or 10.0.0.1)", s)
}

// Validate checks the monitors section; networks are the names
// topology.networks defines.
func (m *Monitors) Validate(networks []TopologyNetwork) error {
	errs := []error{
		durationIn("evaluate_every", m.EvaluateEvery, MinEvaluateEvery, MaxEvaluateEvery),
		durationIn("window", m.Window, MinMonitorWindow, MaxMonitorWindow),
	}
	if len(m.Items) > MaxMonitors {
		errs = append(errs, Errorf("items", "at most %d monitors, got %d", MaxMonitors, len(m.Items)))
	}
	known := map[string]bool{}
	var names []string
	for _, n := range networks {
		known[n.Name] = true
		names = append(names, n.Name)
	}
	unknown := func(path string, list []string) {
		for j, n := range list {
			if !known[n] {
				hint := "topology.networks defines none"
				if len(names) > 0 {
					hint = "known: " + strings.Join(names, ", ")
				}
				errs = append(errs, Errorf(Index(path, j), "unknown network %q (%s)", n, hint))
			}
		}
	}
	seen := map[string]bool{"all": true}
	for i, it := range m.Items {
		p := Index("items", i)
		switch {
		case !MonitorNameRE.MatchString(it.Name):
			errs = append(errs, Errorf(p+".name", "must match [a-z0-9_.-]{1,64}, got %q", it.Name))
		case it.Name == "all":
			errs = append(errs, Errorf(p+".name", `"all" is the implicit monitor of every connection`))
		case seen[it.Name]:
			errs = append(errs, Errorf(p+".name", "duplicate monitor name %q", it.Name))
		}
		seen[it.Name] = true
		unknown(p+".local.networks", it.Local.Networks)
		errs = append(errs, cidrsValidate(p+".local.cidrs", it.Local.CIDRs))
		unknown(p+".remote.networks", it.Remote.Networks)
		errs = append(errs, cidrsValidate(p+".remote.cidrs", it.Remote.CIDRs))
		for j, c := range it.Remote.Categories {
			if !slices.Contains(TrafficCategories, c) {
				errs = append(errs, Errorf(Index(p+".remote.categories", j), "unknown category %q (known: %s)", c, strings.Join(TrafficCategories, ", ")))
			}
		}
		for j, port := range it.Remote.Ports {
			if port == 0 {
				errs = append(errs, Errorf(Index(p+".remote.ports", j), "must be a port from 1 to 65535"))
			}
		}
	}
	return errors.Join(errs...)
}
