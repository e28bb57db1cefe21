package kernel

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

func sock(peer string, port uint16) *InetSocket {
	a := netip.MustParseAddr(peer)
	s := &InetSocket{DPort: port, State: 1}
	if a.Is4() {
		s.Family = unix.AF_INET
		b := a.As4()
		copy(s.Dst[:], b[:])
	} else {
		s.Family = unix.AF_INET6
		s.Dst = a.As16()
	}
	return s
}

// TestTrackedRule spells out the EC2 connection-tracking guide's awk filter on the peer column.
func TestTrackedRule(t *testing.T) {
	for _, tc := range []struct {
		peer string
		port uint16
		want bool
		why  string
	}{
		{"10.0.0.5", 443, true, "ordinary peer"},
		{"0.0.0.0", 0, false, "0.0.0.0:* (listener, unconnected UDP)"},
		{"::", 0, false, "[::]:*"},
		{"127.0.0.1", 8080, false, "127.0.0.1:"},
		{"::ffff:127.0.0.1", 8080, false, "[::ffff:127.0.0.1]"},
		{"::1", 8080, true, "the seed does not exclude ::1"},
		{"127.0.0.2", 80, true, "only 127.0.0.1 is excluded"},
		{"0.0.0.0", 53, true, "0.0.0.0:53 does not match /0.0.0.0:\\*/"},
		{"2001:db8::1", 443, true, "IPv6 peer"},
		{"::ffff:10.0.0.5", 443, true, "v4-mapped non-loopback"},
	} {
		if got := IsTrackedSocket(sock(tc.peer, tc.port)); got != tc.want {
			t.Errorf("peer %s port %d: Tracked = %v, want %v (%s)", tc.peer, tc.port, got, tc.want, tc.why)
		}
	}
}
