package drops

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/netsight/netsight/internal/testlab"
)

// BenchmarkDropPath measures the cost the program adds to each drop: one
// op is one UDP datagram sent from a namespace and dropped by an nftables
// output rule (sendto, routing, netfilter, kfree_skb), without and with
// the program attached; "attached" also reports the program's own run time
// per drop from the kernel's BPF statistics (prog-ns/drop).
//
//	go test -run '^$' -bench DropPath ./collector/drops
func BenchmarkDropPath(b *testing.B) {
	testlab.RequireRoot(b)
	testlab.RequireBinary(b, "nft")
	p := testlab.NewPair(b)
	nftDropB(b, p.A)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := p.A.Dial(ctx, "udp", net.JoinHostPort(p.Link.B.Addr4().String(), "9997"))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	payload := make([]byte, 64)
	send := func(b *testing.B) {
		for b.Loop() {
			_, _ = conn.Write(payload)
		}
	}
	b.Run("detached", send)
	b.Run("attached", func(b *testing.B) {
		c := openCollector(b)
		stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
		if err != nil {
			b.Fatalf("enable BPF stats: %v", err)
		}
		defer stats.Close()
		before, err := c.objs.NetsightKfreeSkb.Stats()
		if err != nil {
			b.Fatal(err)
		}
		send(b)
		after, err := c.objs.NetsightKfreeSkb.Stats()
		if err != nil {
			b.Fatal(err)
		}
		if runs := after.RunCount - before.RunCount; runs > 0 {
			b.ReportMetric(float64(after.Runtime-before.Runtime)/float64(runs), "prog-ns/drop")
		}
	})
}

func nftDropB(b *testing.B, ns *testlab.NetNS) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := ns.Run(ctx, "nft", "add table inet benchdrop; add chain inet benchdrop c { type filter hook output priority 0; }; add rule inet benchdrop c udp dport 9997 drop"); err != nil {
		b.Fatalf("nft: %v: %s", err, out)
	}
}

// BenchmarkRead measures one read of both kernel maps (what an Update or
// a read interface call costs) with the per-namespace table holding keys
// (reason, namespace) keys.
func BenchmarkRead(b *testing.B) {
	testlab.RequireRoot(b)
	c := openCollector(b)
	const keys = 4096
	ncpu, _ := ebpf.PossibleCPU()
	vals := make([]uint64, ncpu)
	vals[0] = 1
	for i := range keys {
		if err := c.objs.Drops.Put(dropsDropKey{Reason: uint32(i % 100), Netns: uint32(i / 100)}, vals); err != nil {
			b.Fatal(err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for b.Loop() {
		if err := c.readLocked(); err != nil {
			b.Fatal(err)
		}
	}
	if c.keys < keys {
		b.Fatalf("read %d keys, want %d", c.keys, keys)
	}
}
