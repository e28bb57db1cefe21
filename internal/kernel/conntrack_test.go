package kernel

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netsight/netsight/internal/testlab"
)

var record = flag.Bool("record", false, "re-record the ctnetlink and sock_diag testdata fixtures from a lab namespace (root)")

func TestParseConntrackCPUStats(t *testing.T) {
	b, err := os.ReadFile("testdata/nf_conntrack_stat.txt")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseConntrackCPUStats(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Rows) != 4 || len(s.Columns) != 17 {
		t.Fatalf("got %d rows x %d columns, want 4 x 17", len(s.Rows), len(s.Columns))
	}
	for _, tc := range []struct {
		col  string
		want uint64
	}{{"drop", 0x10 + 0x2}, {"insert_failed", 0x3 + 0x1 + 0xffffffff}, {"early_drop", 0}, {"search_restart", 0x2a}, {"entries", 4 * 0x3c}} {
		if got, ok := s.Sum(tc.col); !ok || got != tc.want {
			t.Errorf("Sum(%s) = %d, %v; want %d", tc.col, got, ok, tc.want)
		}
	}
}

func TestParseConntrackCPUStatsErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "empty input"},
		{"short row", "a b\n1\n", "line 2: 1 values, header has 2 columns"},
		{"not hex", "a b\n1 zz\n", `line 2 column "b": "zz" is not a 32-bit hex number`},
		{"too big", "a\n1ffffffff\n", `line 2 column "a"`},
		{"dup", "a a\n1 1\n", `duplicate column "a"`},
		{"bad name", "a B\n1 1\n", `column 2 "B"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConntrackCPUStats([]byte(tc.in))
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func FuzzParseConntrackCPUStats(f *testing.F) {
	if b, err := os.ReadFile("testdata/nf_conntrack_stat.txt"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("entries found\n0 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseConntrackCPUStats(b)
		if err != nil {
			return
		}
		for _, r := range s.Rows {
			if len(r) != len(s.Columns) {
				t.Fatalf("row of %d values with %d columns", len(r), len(s.Columns))
			}
		}
	})
}

// TestParseConntrackDump decodes a ctnetlink dump recorded from a lab
// namespace holding 3 established TCP connections over 127.0.0.1, one
// unreplied UDP flow and one replied ICMP echo (re-record with -record).
func TestParseConntrackDump(t *testing.T) {
	bufs := readDumpFixture(t)
	type key struct {
		fam, proto, state uint8
		has               bool
		st                uint32
	}
	got := map[key]int{}
	done := false
	for _, b := range bufs {
		d, _, err := ParseConntrackMessages(b, func(e *ConntrackEntry) bool {
			got[key{e.Family, e.Proto, e.State, e.HasState, e.Status & (IPSSeenReply | IPSAssured)}]++
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		done = done || d
	}
	if !done {
		t.Error("no NLMSG_DONE in fixture")
	}
	want := map[key]int{
		{unix.AF_INET, unix.IPPROTO_TCP, 3, true, IPSSeenReply | IPSAssured}: 3,
		{unix.AF_INET, unix.IPPROTO_UDP, 0, false, 0}:                        1,
		{unix.AF_INET, unix.IPPROTO_ICMP, 0, false, IPSSeenReply}:            1,
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("entries %+v: got %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
}

func TestParseConntrackDumpErrors(t *testing.T) {
	bufs := readDumpFixture(t)
	b := bufs[0]
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"truncated header", b[:10], "offset 0: truncated netlink header"},
		{"length beyond buffer", b[:40], "offset 0: netlink message length"},
		{"bad attribute", corruptAttr(b), "offset 20: attribute length"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseConntrackMessages(tc.in, func(*ConntrackEntry) bool { return true })
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func corruptAttr(b []byte) []byte {
	c := bytes.Clone(b[:nlenc.Uint32(b)])
	nlenc.PutUint16(c[20:], 0xfff0) // first attribute claims 65520 bytes
	return c
}

func FuzzParseConntrackMessages(f *testing.F) {
	for _, b := range readDumpFixtureF(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		_, cnt, _ := ParseConntrackMessages(b, func(e *ConntrackEntry) bool { n++; return true })
		if cnt != n {
			t.Fatalf("returned %d entries, callback saw %d", cnt, n)
		}
	})
}

func readDumpFixture(t *testing.T) [][]byte {
	t.Helper()
	if *record {
		recordDumpFixture(t)
	}
	return readDumpFixtureF(t)
}

func readDumpFixtureF(tb testing.TB) [][]byte {
	tb.Helper()
	files, _ := filepath.Glob("testdata/ctnetlink_dump_*.bin")
	if len(files) == 0 {
		tb.Fatal("no testdata/ctnetlink_dump_*.bin fixtures (record with -record as root)")
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func recordDumpFixture(t *testing.T) {
	testlab.RequireRoot(t)
	ns := testlab.NewNetNS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := ns.Run(ctx, "nft", "add table inet t; add chain inet t c { type filter hook output priority 0; }; add rule inet t c ct state established accept"); err != nil {
		t.Fatalf("nft: %v %s", err, out)
	}
	srv := ns.StartSinkServer(t, "127.0.0.1:0") // keeps the connections open
	for i := 0; i < 3; i++ {
		c, err := ns.Dial(ctx, "tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	u, err := ns.Dial(ctx, "udp", "127.0.0.1:9") // discard port, nobody listens: unreplied... until ICMP
	if err != nil {
		t.Fatal(err)
	}
	_, _ = u.Write([]byte("x"))
	u.Close()
	if out, err := ns.Run(ctx, "ping", "-c", "1", "-W", "1", "127.0.0.1"); err != nil {
		t.Fatalf("ping: %v %s", err, out)
	}
	_ = os.Remove("testdata/ctnetlink_dump_0.bin")
	i := 0
	err = ns.Do(func() error {
		d := &ConntrackDumper{tap: func(b []byte) {
			_ = os.WriteFile(filepath.Join("testdata", "ctnetlink_dump_"+string(rune('0'+i))+".bin"), b, 0o644)
			i++
		}}
		_, _, err := d.Dump(ctx, func(*ConntrackEntry) bool { return true })
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
