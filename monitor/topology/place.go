package topology

import (
	"net/netip"
	"slices"
)

// Place is where an address sits, as the resolver answered.
type Place struct {
	// Network is the topology.networks name (or the IMDS subnet / node
	// name); "" when no source named it.
	Network string `json:"network,omitempty"`
	Zone    string `json:"zone,omitempty"`
	VPC     string `json:"vpc,omitempty"`
	Region  string `json:"region,omitempty"`
	// Category is one of the fixed set: host, intra_zone, inter_zone,
	// same_vpc, inter_vpc, inter_region, internet, unclassified.
	Category string `json:"category"`
	// Source is which resolver gave the answer: "networks", "imds",
	// "kubernetes", "host", "default".
	Source string `json:"source"`
}

// The traffic categories (a fixed set: metric labels are bounded by it).
const (
	Host        = "host"
	IntraZone   = "intra_zone"
	InterZone   = "inter_zone"
	SameVPC     = "same_vpc"
	InterVPC    = "inter_vpc"
	InterRegion = "inter_region"
	Internet    = "internet"
	Unclass     = "unclassified"
)

// Categories lists the categories in a fixed order (CategoryIndex's).
var Categories = []string{Host, IntraZone, InterZone, SameVPC, InterVPC, InterRegion, Internet, Unclass}

// CategoryIndex returns c's position in Categories, or -1.
func CategoryIndex(c string) int { return slices.Index(Categories, c) }

// The sources of an answer.
const (
	SourceNetworks   = "networks"
	SourceIMDS       = "imds"
	SourceKubernetes = "kubernetes"
	SourceHost       = "host"
	SourceDefault    = "default"
)

// Network is a named set of prefixes with its zone, VPC and region (each
// may be empty), from one source.
type Network struct {
	Name              string
	Prefixes          []netip.Prefix
	Zone, VPC, Region string
	Source            string
}

// Category classifies a connection from local to remote, given where each
// sits (host fills what the local side lacks: the instance's own zone, VPC
// and region from IMDS).
func Category(local, remote, host Place, remoteAddr netip.Addr) string {
	if remote.Source == SourceHost {
		return Host
	}
	if remote.Source == SourceDefault {
		if isPublic(remoteAddr) {
			return Internet
		}
		return Unclass
	}
	lz, lv, lr := or(local.Zone, host.Zone), or(local.VPC, host.VPC), or(local.Region, host.Region)
	switch {
	case lr != "" && remote.Region != "" && lr != remote.Region:
		return InterRegion
	case lv != "" && remote.VPC != "" && lv != remote.VPC:
		return InterVPC
	case lz != "" && remote.Zone != "":
		if lz == remote.Zone {
			return IntraZone
		}
		return InterZone
	case lv != "" && remote.VPC != "":
		return SameVPC
	}
	return Unclass
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// isPublic reports whether a is a globally routed unicast address (not
// private, loopback, link-local, CGNAT, ULA or documentation).
func isPublic(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"),   // CGNAT
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
}
