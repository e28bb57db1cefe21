package testlab

import (
	"testing"
	"time"
)

// WaitListening waits until some TCP socket in ns (nil: the host) listens
// on port, reading the namespace's /proc/net/tcp{,6} tables so that a one-off
// server such as `iperf3 -s -1` is not consumed by a test connection. It
// fails the test after 10 s.
func (ns *NetNS) WaitListening(tb testing.TB, port uint16) {
	tb.Helper()
	if err := ns.waitListening(port, 10*time.Second); err != nil {
		tb.Fatalf("testlab: in netns %s: %v", ns, err)
	}
}
