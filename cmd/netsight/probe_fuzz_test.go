package main

import (
	"testing"

	"github.com/netsight/netsight/probe"
)

// FuzzParseProbeTarget parses arbitrary TARGET[:PORT] arguments: no panic,
// and an accepted target has a host, and a port exactly when it is TCP.
func FuzzParseProbeTarget(f *testing.F) {
	for _, s := range []string{"10.0.0.1", "10.0.0.1:443", "[fd00::1]:80", "fd00::1", "host.example:0", "[::1", "a:b:c",
		":80", "h:65536", "h:-1", "[]:1", "[fd00::1%eth0]:22"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, tcp bool) {
		tg, err := parseProbeTarget(s, tcp)
		if err != nil {
			return
		}
		if tg.Host == "" {
			t.Fatalf("%q: accepted with an empty host", s)
		}
		if (tg.Protocol == probe.TCP) != (tg.Port != 0) {
			t.Fatalf("%q: protocol %v with port %d", s, tg.Protocol, tg.Port)
		}
		if tcp && tg.Protocol != probe.TCP {
			t.Fatalf("%q: --tcp gave protocol %v", s, tg.Protocol)
		}
	})
}
