package web

import (
	"testing"
)

// FuzzParseFilter throws arbitrary values at the flow API's query
// parameters: ParseFilter never panics, and a filter it accepts is within
// the documented ranges.
func FuzzParseFilter(f *testing.F) {
	f.Add("10.0.0.0/8", "443", "1", "client", "4026531840", "100")
	f.Add("fd00::1", "65535", "0", "server", "1", "10000")
	f.Add("::ffff:10.1.2.3/120", "0", "-1", "both", "0", "0")
	f.Add("10.0.0.1/33", "65536", "x", "", "4294967296", "10001")
	f.Add("", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, remote, port, minRetr, dir, netns, limit string) {
		q := map[string][]string{"remote": {remote}, "port": {port}, "min_retransmissions": {minRetr},
			"direction": {dir}, "netns": {netns}, "limit": {limit}}
		flt, err := ParseFilter(q)
		if err != nil {
			return
		}
		if flt.Limit < 1 || flt.Limit > MaxLimit {
			t.Fatalf("limit %d accepted for %q", flt.Limit, limit)
		}
		if port != "" && flt.Port == 0 {
			t.Fatalf("port %q accepted as 0", port)
		}
		if remote != "" && !flt.Remote.IsValid() {
			t.Fatalf("remote %q accepted as an invalid prefix", remote)
		}
	})
}
