package web

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/netsight/netsight/flow"
)

func TestParseFilter(t *testing.T) {
	for _, tc := range []struct {
		q       string
		want    flow.Filter
		wantErr string
	}{
		{q: "", want: flow.Filter{Limit: 1000}},
		{q: "remote=10.0.0.2&port=5201&min_retransmissions=3&direction=client&limit=5",
			want: flow.Filter{Remote: netip.MustParsePrefix("10.0.0.2/32"), Port: 5201, MinRetransmits: 3, Direction: flow.DirClient, Limit: 5}},
		{q: "remote=10.1.2.3/16", want: flow.Filter{Remote: netip.MustParsePrefix("10.1.0.0/16"), Limit: 1000}},
		{q: "remote=::ffff:10.0.0.1", want: flow.Filter{Remote: netip.MustParsePrefix("10.0.0.1/32"), Limit: 1000}},
		{q: "remote=nope", wantErr: `remote: want an address or CIDR, got "nope"`},
		{q: "port=70000", wantErr: `port: want 1-65535, got "70000"`},
		{q: "limit=0", wantErr: "limit: want 1-10000"},
		{q: "min_retransmissions=-1", wantErr: "min_retransmissions"},
		{q: "direction=up", wantErr: `direction "up"`},
		{q: "netns=4026531840", want: flow.Filter{NetNS: 4026531840, Limit: 1000}},
		{q: "netns=0", wantErr: `netns: want a network namespace inode`},
		{q: "netns=host", wantErr: `netns: want a network namespace inode (1-4294967295), got "host"`},
		{q: "netns=4294967296", wantErr: `netns: want`},
	} {
		t.Run(tc.q, func(t *testing.T) {
			q := map[string][]string{}
			for kv := range strings.SplitSeq(tc.q, "&") {
				if k, v, ok := strings.Cut(kv, "="); ok {
					q[k] = []string{v}
				}
			}
			got, err := ParseFilter(q)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
