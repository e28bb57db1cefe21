package flow

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParsePrefix parses a filter's address or CIDR ("10.0.0.0/8", "10.0.0.3",
// "::1"): an address is its own host prefix; IPv4-mapped addresses are
// unmapped and CIDRs masked, so the result matches what Filter compares.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("want an address or CIDR, got %q", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("want an address or CIDR, got %q", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
