package testlab

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// This file holds the entry points for programs without a testing.TB, such as
// the benchmarks under bench/: the same lab, but errors are returned and the
// caller closes what it created (NetNS.Close, RelayedPath.Close,
// Relay.Close, LossRule.Remove). Everything here needs root.

// CreateNetNS is NewNetNS without a testing.TB: a fresh named namespace with
// lo up, which the caller must Close. Like NewNetNS, the first call in a
// process sweeps namespaces leaked by dead test binaries.
func CreateNetNS() (*NetNS, error) {
	sweepOnce.Do(sweepStale)
	return newNetNS(uniqueName())
}

// Connect is ConnectVeth without a testing.TB. The pair vanishes with the
// namespaces.
func Connect(a, b *NetNS, opts ...VethOption) (*Link, error) {
	return connectVeth(a, b, opts...)
}

// NewLossRule is AddLoss without a testing.TB (no requirement checks): the
// caller removes the rule with Remove, or it goes with the namespace.
func (ns *NetNS) NewLossRule(dir Direction, percent int, matches ...Match) (*LossRule, error) {
	return ns.addLoss(dir, percent, matches...)
}

// Socket is socket(2) inside the namespace: the descriptor stays bound to
// the namespace (its routes, addresses and firewall) for its whole life.
// Its signature fits injection points such as probe.SocketFunc. A nil
// *NetNS creates the socket in the caller's own namespace.
func (ns *NetNS) Socket(domain, typ, proto int) (int, error) {
	fd := -1
	err := ns.Do(func() error {
		var err error
		fd, err = unix.Socket(domain, typ, proto)
		return err
	})
	return fd, err
}

// IsICMPEchoRequest reports whether an Ethernet frame carries an IPv4 ICMP
// echo request (first fragment) or an ICMPv6 echo request without extension
// headers. Used as RelayConfig.LossMatch it makes the relay drop only echo
// requests.
func IsICMPEchoRequest(frame []byte) bool {
	if len(frame) < 14 {
		return false
	}
	ip := frame[14:]
	switch binary.BigEndian.Uint16(frame[12:]) {
	case 0x0800:
		if len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != 1 || binary.BigEndian.Uint16(ip[6:])&0x1fff != 0 {
			return false
		}
		ihl := int(ip[0]&0xf) * 4
		return ihl >= 20 && len(ip) > ihl && ip[ihl] == 8
	case 0x86dd:
		return len(ip) > 40 && ip[0]>>4 == 6 && ip[6] == 58 && ip[40] == 128
	}
	return false
}
