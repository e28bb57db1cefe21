package testlab

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"testing"
)

// ClientServer is two fresh namespaces joined by a veth pair: CliIf 10.<n>.0.1/24
// (the client side) and SrvIf 10.<n>.0.2/24 (the server side). Offloads are
// off (ConnectVeth), so a capture sees MSS-sized segments as on a wire.
type ClientServer struct {
	Cli, Srv     *NetNS
	CliIf, SrvIf string
	CliIP, SrvIP string
}

// NewClientServer builds a ClientServer named vcli/vsrv on 10.<n>.0.0/24; everything is
// removed when the test ends.
func NewClientServer(tb testing.TB, n int) *ClientServer {
	tb.Helper()
	p := &ClientServer{Cli: NewNetNS(tb), Srv: NewNetNS(tb), CliIf: "vcli", SrvIf: "vsrv"}
	sub := Subnet{V4: netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/24", n)), V6: RandomSubnet().V6}
	l := ConnectVeth(tb, p.Cli, p.Srv, WithNames(p.CliIf, p.SrvIf), WithSubnet(sub))
	p.CliIP, p.SrvIP = l.A.Addr4().String(), l.B.Addr4().String()
	return p
}

// DropToPort drops pct % of the client's TCP packets to port at the
// server's ingress (nftables numgen random), so a capture on the client side
// sees originals and retransmissions.
func (p *ClientServer) DropToPort(tb testing.TB, pct, port int) {
	tb.Helper()
	for _, args := range [][]string{
		{"add", "table", "inet", "lab"},
		{"add", "chain", "inet", "lab", "in", "{ type filter hook input priority 0; }"},
		{"add", "rule", "inet", "lab", "in", "ip", "saddr", p.CliIP, "tcp", "dport", strconv.Itoa(port),
			"numgen", "random", "mod", "100", "<", strconv.Itoa(pct), "drop"},
	} {
		if out, err := p.Srv.Run(context.Background(), "nft", args...); err != nil {
			tb.Fatalf("nft: %v: %s", err, out)
		}
	}
}
