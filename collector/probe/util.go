package probe

import "net/netip"

type netipAddr = netip.Addr

func isLiteral(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}
