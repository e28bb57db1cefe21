package nftables

import (
	"context"
	"github.com/netsight/netsight/collector"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netsight/netsight/internal/metrictest"
	"github.com/netsight/netsight/internal/testlab"
)

func key(fam, proto, hook, state string) (string, string) {
	l := `{family="` + fam + `",hook="` + hook + `",protocol="` + proto + `",state="` + state + `"}`
	return "netsight_nftables_ct_packets_total" + l, "netsight_nftables_ct_bytes_total" + l
}

// TestLabCountersMatchKnownTraffic sends a known number of packets per
// conntrack state inside a lab namespace and checks every counter.
func TestLabCountersMatchKnownTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test: runs in the full (non -short) pass")
	}
	testlab.RequireRoot(t)
	testlab.RequireBinary(t, "nft")
	ns := testlab.NewNetNS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Someone else's table, and a stale table of ours from a "crashed" run.
	if out, err := ns.Run(ctx, "nft", "add table inet other; add chain inet other c; add table inet netsight; add chain inet netsight stale"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	var c *Collector
	if err := ns.Do(func() error { var err error; c, err = New(DefaultConfig(), collector.Deps{}); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	out, err := ns.Run(ctx, "nft", "list table inet netsight")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "stale") || strings.Count(out, "counter ") < 36 {
		t.Fatalf("table not (re)created as expected:\n%s", out)
	}

	const payload = 100
	udp := func(fam, network, addr string, hdr int) map[string]float64 {
		srv, err := ns.ListenPacket(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		cl, err := ns.Dial(ctx, network, srv.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		buf := make([]byte, payload)
		rbuf := make([]byte, 2048)
		for i := 0; i < 7; i++ { // 7 x new
			if _, err := cl.Write(buf); err != nil {
				t.Fatal(err)
			}
			_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := srv.ReadFrom(rbuf); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 3; i++ { // 3 x established (reply direction)
			if _, err := srv.WriteTo(buf, cl.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			_ = cl.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := cl.Read(rbuf); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 2; i++ { // 2 x established (original direction)
			if _, err := cl.Write(buf); err != nil {
				t.Fatal(err)
			}
			if _, _, err := srv.ReadFrom(rbuf); err != nil {
				t.Fatal(err)
			}
		}
		size := float64(hdr + 8 + payload)
		want := map[string]float64{}
		for _, hook := range []string{"output", "input"} {
			p, b := key(fam, "udp", hook, "new")
			want[p], want[b] = 7, 7*size
			p, b = key(fam, "udp", hook, "established")
			want[p], want[b] = 5, 5*size
			p, b = key(fam, "udp", hook, "invalid")
			want[p], want[b] = 0, 0
		}
		return want
	}
	want := udp("ipv4", "udp4", "127.0.0.1:0", 20)
	for k, v := range udp("ipv6", "udp6", "[::1]:0", 40) {
		want[k] = v
	}

	// TCP: each connection's SYN is the one "new" packet in each hook.
	srv := ns.StartSinkServer(t, "127.0.0.1:0")
	const conns = 5
	for i := 0; i < conns; i++ {
		c, err := ns.Dial(ctx, "tcp4", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	for _, hook := range []string{"output", "input"} {
		p, _ := key("ipv4", "tcp", hook, "new")
		want[p] = conns
	}

	// Invalid: TCP segments without any flag bit, sent with a raw socket
	// to the listener (which discards them silently: no reply).
	const invalid = 4
	port := srv.Addr().Port()
	if err := ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_TCP)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		seg := make([]byte, 20)
		seg[0], seg[1] = 0xc3, 0x50 // source port 50000
		seg[2], seg[3] = byte(port>>8), byte(port)
		seg[12] = 5 << 4 // data offset 5 words, flags 0
		seg[14] = 0xff   // window
		for i := 0; i < invalid; i++ {
			if err := unix.Sendto(fd, seg, 0, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, hook := range []string{"output", "input"} {
		p, b := key("ipv4", "tcp", hook, "invalid")
		want[p], want[b] = invalid, invalid*40
	}
	// Nothing is forwarded in a single namespace.
	for _, f := range []string{"ipv4", "ipv6"} {
		for _, pr := range []string{"tcp", "udp"} {
			for _, s := range []string{"new", "established", "invalid"} {
				p, b := key(f, pr, "forward", s)
				want[p], want[b] = 0, 0
			}
		}
	}
	time.Sleep(50 * time.Millisecond)
	got, err := metrictest.Gather(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 72 {
		t.Errorf("%d series, want 72 (36 counters x packets/bytes)", len(got))
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}

	// Close removes our table and leaves the other one alone.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	out, err = ns.Run(ctx, "nft", "list tables")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "netsight") || !strings.Contains(out, "table inet other") {
		t.Errorf("after Close, tables:\n%s", out)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
