package conntrack

import (
	"context"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/netsight/netsight/internal/kernel"
	"github.com/netsight/netsight/internal/testlab"
)

// populateUDP creates n unreplied UDP conntrack entries in ns: one datagram
// each to distinct ports of 10.82.0.0/16, routed through a veth pair whose
// both ends are in ns to a gateway with a static neighbour entry. The
// datagrams are confirmed in conntrack at POSTROUTING, arrive on the peer
// and are dropped there (forwarding is off), so nothing leaves the
// namespace. The UDP timeout is raised so the entries outlive the benchmark.
func populateUDP(tb testing.TB, ns *testlab.NetNS, n int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, args := range [][]string{
		{"ip", "link", "add", "ct0", "type", "veth", "peer", "name", "ct1"},
		{"ip", "addr", "add", "10.81.0.1/24", "dev", "ct0"},
		{"ip", "link", "set", "ct0", "up"},
		{"ip", "link", "set", "ct1", "up"},
		{"ip", "neigh", "add", "10.81.0.2", "lladdr", "02:00:00:00:81:02", "dev", "ct0", "nud", "permanent"},
		{"ip", "route", "add", "10.82.0.0/16", "via", "10.81.0.2", "dev", "ct0"},
		{"nft", "add table inet t; add chain inet t c { type filter hook output priority 0; }; add rule inet t c ct state established accept"},
	} {
		if out, err := ns.Run(ctx, args[0], args[1:]...); err != nil {
			tb.Fatalf("%v %s", err, out)
		}
	}
	if err := ns.Sysctl("net.netfilter.nf_conntrack_udp_timeout", "600"); err != nil {
		tb.Fatal(err)
	}
	err := ns.Do(func() error {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 81, 0, 1)})
		if err != nil {
			return err
		}
		defer c.Close()
		for i := 0; i < n; i++ {
			dst := &net.UDPAddr{IP: net.IPv4(10, 82, byte(i/25000), 1), Port: 10000 + i%25000}
			if _, err := c.WriteToUDP([]byte{0}, dst); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	out, err := ns.Run(ctx, "conntrack", "-C")
	if err != nil {
		tb.Fatal(err)
	}
	if got, _ := strconv.Atoi(trimNL(out)); got < n {
		tb.Fatalf("conntrack -C = %s after populating %d entries", out, n)
	}
}

func trimNL(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	return s
}

// BenchmarkDumpStates20k is the per-state dump of a 20 000-entry table
// (compare with `conntrack -L` in bench/conntrack/run.sh).
//
// With NETSIGHT_BENCH_INPLACE=1 it dumps the namespace it runs in instead of
// building one (bench/conntrack/run.sh times us and conntrack -L on the same
// table that way).
func BenchmarkDumpStates20k(b *testing.B) {
	var ns *testlab.NetNS // nil: the current namespace
	if os.Getenv("NETSIGHT_BENCH_INPLACE") == "" {
		testlab.RequireRoot(b)
		testlab.RequireBinary(b, "conntrack")
		ns = testlab.NewNetNS(b)
		populateUDP(b, ns, 20000)
	}
	r := Reader{MaxDumpEntries: 1 << 20}
	err := ns.Do(func() error {
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			res, err := r.DumpStates(context.Background(), 20000)
			if err != nil {
				return err
			}
			if ns != nil && res.Seen < 20000 {
				b.Errorf("dump read %d entries", res.Seen)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(20000, "entries/op")
}

// BenchmarkDecode20k is the decoder alone on the recorded fixture, scaled
// to 20 000 entries per op: no kernel, runs anywhere.
func BenchmarkDecodeEntries(b *testing.B) {
	var bufs [][]byte
	for _, f := range []string{"../../internal/kernel/testdata/ctnetlink_dump_0.bin"} {
		bb, err := os.ReadFile(f)
		if err != nil {
			b.Skip(err)
		}
		bufs = append(bufs, bb)
	}
	n := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, bb := range bufs {
			_, c, err := kernel.ParseConntrackMessages(bb, func(*kernel.ConntrackEntry) bool { return true })
			if err != nil {
				b.Fatal(err)
			}
			n += c
		}
	}
	b.ReportMetric(float64(n)/float64(b.N), "entries/op")
}
