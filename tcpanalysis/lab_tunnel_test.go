package tcpanalysis_test

// Lab tests with real tunnel traffic: iperf3 through 3% loss inside a
// VXLAN tunnel between two namespaces (the kernel's vxlan device, on port
// 4789 and on Linux's old default 8472), captured on the underlay; and
// plain traffic logged by an nftables `log group` rule, captured from
// NFLOG. Our counts must equal tshark's. (This kernel offers no geneve,
// gre or ipip devices; those encapsulations are checked on built frames in
// encap_test.go.)

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/netsight/netsight/internal/testlab"
	"github.com/netsight/netsight/tcpanalysis"
)

// iperfThrough runs a bounded iperf3 transfer (1 s at rate) from the client
// namespace to srvIP with 3% loss on the server's ingress.
func iperfThrough(t *testing.T, p *labPair, srvIP, cliIP, rate string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, args := range [][]string{
		{"add", "table", "inet", "lab"},
		{"add", "chain", "inet", "lab", "in", "{ type filter hook input priority 0; }"},
		{"add", "rule", "inet", "lab", "in", "ip", "saddr", cliIP, "tcp", "dport", "5201",
			"numgen", "random", "mod", "100", "<", "3", "drop"},
	} {
		if out, err := p.Srv.Run(ctx, "nft", args...); err != nil {
			t.Fatalf("nft: %v: %s", err, out)
		}
	}
	srv := p.Srv.Command(ctx, "iperf3", "-s", "-1", "-B", srvIP)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	p.Srv.WaitListening(t, 5201)
	if out, err := p.Cli.Command(ctx, "iperf3", "-c", srvIP, "-t", "1", "-b", rate).CombinedOutput(); err != nil {
		t.Fatalf("iperf3: %v: %s", err, out)
	}
}

func checkAgainstTshark(t *testing.T, file string, minPackets int, tsharkArgs ...string) *tcpanalysis.Analyzer {
	t.Helper()
	a := analyzeFile(t, file)
	ours, theirs := ourCounts(a), tsharkCounts(t, file, tsharkArgs...)
	t.Logf("ours %v", ours)
	if ours["tcp.srcport"] < minPackets || ours["tcp.analysis.retransmission"] == 0 {
		t.Errorf("too little traffic decoded: %d TCP packets, %d retransmissions", ours["tcp.srcport"], ours["tcp.analysis.retransmission"])
	}
	// Our retransmissions = tshark's retransmissions + out-of-order
	// (docs/analyze.md difference 1: a segment whose bytes this capture
	// point already saw is a retransmission, never out-of-order).
	ours["tcp.analysis.retransmission"] += ours["tcp.analysis.out_of_order"]
	theirs["tcp.analysis.retransmission"] += theirs["tcp.analysis.out_of_order"]
	delete(ours, "tcp.analysis.out_of_order")
	delete(theirs, "tcp.analysis.out_of_order")
	for k, v := range theirs {
		if ours[k] != v {
			t.Errorf("%s: ours %d, tshark %d", k, ours[k], v)
		}
	}
	return a
}

func TestLabVXLAN(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test")
	}
	requireLabTools(t)
	testlab.RequireBinary(t, "ethtool")
	for i, port := range []int{4789, 8472} {
		t.Run(strconv.Itoa(port), func(t *testing.T) {
			n := 92 + i
			p := newLabPair(t, n)
			ctx := context.Background()
			for _, side := range []struct {
				ns          *testlab.NetNS
				local, peer string
				inner       string
			}{
				{p.Cli, p.CliIP, p.SrvIP, fmt.Sprintf("10.%d.1.1/24", n)},
				{p.Srv, p.SrvIP, p.CliIP, fmt.Sprintf("10.%d.1.2/24", n)},
			} {
				for _, args := range [][]string{
					// MTU 1450 as on a real node: the underlay's 1500 less the
					// 50 bytes of VXLAN over IPv4 (no outer fragments).
					{"ip", "link", "add", "vx0", "mtu", "1450", "type", "vxlan", "id", "42", "local", side.local, "remote", side.peer, "dstport", strconv.Itoa(port)},
					{"ip", "addr", "add", side.inner, "dev", "vx0"},
					{"ip", "link", "set", "vx0", "up"},
				} {
					if out, err := side.ns.Run(ctx, args[0], args[1:]...); err != nil {
						t.Fatalf("%v: %v: %s", args, err, out)
					}
				}
				// Segment in the stack, so the capture sees MSS-sized inner segments.
				_, _ = side.ns.Run(ctx, "ethtool", "-K", "vx0", "tso", "off", "gso", "off", "gro", "off")
			}
			dump := p.Cli.StartTcpdump(t, p.CliIf, testlab.TcpdumpOptions{Snaplen: 200, Filter: "udp port " + strconv.Itoa(port)})
			iperfThrough(t, p, fmt.Sprintf("10.%d.1.2", n), fmt.Sprintf("10.%d.1.1", n), "20M")
			file := dump.Stop()
			var extra []string
			if port != 4789 {
				extra = []string{"-d", "udp.port==8472,vxlan"} // tshark decodes only 4789 as VXLAN by default
			}
			a := checkAgainstTshark(t, file, 500, extra...)
			if a.Totals.EncapPackets[5] == 0 { // vxlan
				t.Errorf("no packet counted as VXLAN: %+v", a.Totals.EncapPackets)
			}
		})
	}
}

func TestLabNFLOG(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test")
	}
	requireLabTools(t)
	p := newLabPair(t, 94)
	ctx := context.Background()
	for _, args := range [][]string{
		{"add", "table", "inet", "nflog"},
		{"add", "chain", "inet", "nflog", "out", "{ type filter hook output priority 0; }"},
		{"add", "rule", "inet", "nflog", "out", "ip", "daddr", p.SrvIP, "tcp", "dport", "5201", "log", "group", "5"},
		{"add", "chain", "inet", "nflog", "in", "{ type filter hook input priority 0; }"},
		{"add", "rule", "inet", "nflog", "in", "ip", "saddr", p.SrvIP, "tcp", "sport", "5201", "log", "group", "5"},
	} {
		if out, err := p.Cli.Run(ctx, "nft", args...); err != nil {
			t.Fatalf("nft: %v: %s", err, out)
		}
	}
	dump := p.Cli.StartTcpdump(t, "nflog:5", testlab.TcpdumpOptions{BufferKiB: 16384})
	// A low rate: NFLOG drops log messages the reader does not keep up
	// with (a gap tshark and we report differently, docs/analyze.md
	// difference 4).
	iperfThrough(t, p, p.SrvIP, p.CliIP, "4M")
	file := dump.Stop()
	checkAgainstTshark(t, file, 100)
}
