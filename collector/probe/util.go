package probe

import "net/netip"

func isLiteral(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}
