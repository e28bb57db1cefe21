package drops

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/internal/metrictest"
	"github.com/netsight/netsight/internal/testlab"
)

// inode returns the inode of a namespace file, 0 when unreadable.
func inode(path string) uint32 {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0
	}
	return uint32(st.Ino)
}

func openCollector(t testing.TB) *Collector {
	t.Helper()
	c, err := New(DefaultConfig(), collector.Deps{})
	if err != nil {
		t.Fatalf("drops collector: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// nftDrop installs `table inet <table> { chain c { type filter hook <hook>
// priority 0; <match> counter drop } }` in ns and returns a function
// reading the rule's packet counter.
func nftDrop(t *testing.T, ns *testlab.NetNS, table, hook, match string) func() uint64 {
	t.Helper()
	script := fmt.Sprintf("table inet %s {\n\tchain c {\n\t\ttype filter hook %s priority 0; policy accept;\n\t\t%s counter drop\n\t}\n}\n", table, hook, match)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := ns.Command(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s\n%s", err, out, script)
	}
	return func() uint64 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := ns.Run(ctx, "nft", "-j", "list", "chain", "inet", table, "c")
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Nftables []struct {
				Rule *struct {
					Expr []struct {
						Counter *struct{ Packets uint64 } `json:"counter"`
					} `json:"expr"`
				} `json:"rule"`
			} `json:"nftables"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("nft json: %v", err)
		}
		for _, o := range doc.Nftables {
			if o.Rule != nil {
				for _, e := range o.Rule.Expr {
					if e.Counter != nil {
						return e.Counter.Packets
					}
				}
			}
		}
		t.Fatalf("no counter in %s", out)
		return 0
	}
}

// sendUDP sends n datagrams from ns to addr (errors of dropped sends
// ignored: a drop at output returns EPERM to the sender).
func sendUDP(t testing.TB, ns *testlab.NetNS, addr string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := ns.Dial(ctx, "udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	payload := make([]byte, 64)
	for range n {
		_, _ = conn.Write(payload)
	}
}

// waitDrops polls DropsByNetNS until reason in netns reaches want or 5s
// pass, and returns the last value.
func waitDrops(c *Collector, netns uint32, reason string, want uint64) uint64 {
	var got uint64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		if got = c.DropsByNetNS()[netns][reason]; got >= want {
			break
		}
	}
	return got
}

// TestLabNetfilterDrop: an nftables drop rule in a namespace the test
// creates; NETFILTER_DROP counted for that namespace equals the rule's own
// counter, on the receive path (namespace from skb->dev) and on the output
// path of a local sender (namespace from skb->sk). The other namespace sees
// none, and the per-reason total counts at least as many.
func TestLabNetfilterDrop(t *testing.T) {
	testlab.RequireRoot(t)
	testlab.RequireBinary(t, "nft")
	c := openCollector(t)
	p := testlab.NewPair(t)
	inoA, inoB := inode("/run/netns/"+p.A.Name), inode("/run/netns/"+p.B.Name)
	if inoA == 0 || inoB == 0 {
		t.Fatal("namespace inodes")
	}
	const n = 2000
	before := c.DropsTotal()["NETFILTER_DROP"]

	t.Run("input", func(t *testing.T) {
		counter := nftDrop(t, p.B, "dropin", "input", "udp dport 9999")
		sendUDP(t, p.A, net.JoinHostPort(p.Link.B.Addr4().String(), "9999"), n)
		want := counter()
		got := waitDrops(c, inoB, "NETFILTER_DROP", want)
		t.Logf("nft counter %d, NETFILTER_DROP in %s: %d", want, p.B.Name, got)
		if want != n || got != want {
			t.Errorf("NETFILTER_DROP in the receiving namespace %d, nft counter %d, sent %d", got, want, n)
		}
		if a := c.DropsByNetNS()[inoA]["NETFILTER_DROP"]; a != 0 {
			t.Errorf("sender namespace counted %d NETFILTER_DROP", a)
		}
	})
	t.Run("output", func(t *testing.T) {
		counter := nftDrop(t, p.A, "dropout", "output", "udp dport 9998")
		sendUDP(t, p.A, net.JoinHostPort(p.Link.B.Addr4().String(), "9998"), n)
		want := counter()
		got := waitDrops(c, inoA, "NETFILTER_DROP", want)
		t.Logf("nft counter %d, NETFILTER_DROP in %s: %d", want, p.A.Name, got)
		if want != n || got != want {
			t.Errorf("NETFILTER_DROP in the sending namespace %d, nft counter %d, sent %d", got, want, n)
		}
	})
	total := c.DropsTotal()["NETFILTER_DROP"] - before
	if total < 2*n {
		t.Errorf("NETFILTER_DROP total grew by %d, want at least %d", total, 2*n)
	}
	m := metrictest.MustGather(t, c)
	if v := m[`netsight_skb_drops_total{reason="NETFILTER_DROP"}`]; v < 2*n {
		t.Errorf("metric NETFILTER_DROP %v, want at least %d", v, 2*n)
	}
	if _, ok := m[`netsight_skb_drops_total{reason="CONSUMED"}`]; ok {
		t.Error("CONSUMED exported")
	}
}

// TestLabNoSocket: UDP to a port nothing listens on is a NO_SOCKET drop in
// the receiving namespace, equal to the namespace's own Udp.NoPorts.
func TestLabNoSocket(t *testing.T) {
	testlab.RequireRoot(t)
	c := openCollector(t)
	p := testlab.NewPair(t)
	inoB := inode("/run/netns/" + p.B.Name)
	const n = 500
	sendUDP(t, p.A, net.JoinHostPort(p.Link.B.Addr4().String(), "9"), n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := p.B.Run(ctx, "cat", "/proc/net/snmp")
	if err != nil {
		t.Fatal(err)
	}
	noPorts := udpNoPorts(t, out)
	got := waitDrops(c, inoB, "NO_SOCKET", noPorts)
	t.Logf("Udp.NoPorts %d, NO_SOCKET %d (sent %d)", noPorts, got, n)
	if got != noPorts || noPorts == 0 {
		t.Errorf("NO_SOCKET %d, Udp.NoPorts %d", got, noPorts)
	}
}

func udpNoPorts(t *testing.T, snmp string) uint64 {
	t.Helper()
	var names []string
	for _, line := range strings.Split(snmp, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f[1:]
			continue
		}
		for i, name := range names {
			if name == "NoPorts" {
				var v uint64
				fmt.Sscan(f[i+1], &v)
				return v
			}
		}
	}
	t.Fatalf("no Udp.NoPorts in %s", snmp)
	return 0
}
