package testlab

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"
)

func TestSubnetHosts(t *testing.T) {
	s := Subnet{V4: netip.MustParsePrefix("10.1.2.4/30"), V6: netip.MustParsePrefix("fd00:1:2:3::/64")}
	tests := []struct {
		host    int
		want4   string
		want6   string
		wantErr bool
	}{
		{1, "10.1.2.5/30", "fd00:1:2:3::1/64", false},
		{2, "10.1.2.6/30", "fd00:1:2:3::2/64", false},
		{3, "", "", true}, // broadcast of a /30
		{0, "", "", true},
	}
	for _, tc := range tests {
		got4, err4 := s.Host4(tc.host)
		got6, err6 := s.Host6(tc.host)
		if tc.wantErr {
			if err4 == nil {
				t.Errorf("Host4(%d) = %v, want error", tc.host, got4)
			}
			continue
		}
		if err4 != nil || err6 != nil || got4.String() != tc.want4 || got6.String() != tc.want6 {
			t.Errorf("host %d: %v %v / %v %v, want %s %s", tc.host, got4, err4, got6, err6, tc.want4, tc.want6)
		}
	}
}

func TestRandomSubnet(t *testing.T) {
	seen := map[netip.Prefix]bool{}
	for range 100 {
		s := RandomSubnet()
		if s.V4.Bits() != 30 || s.V4.Addr().As4()[0] != 10 || s.V4 != s.V4.Masked() {
			t.Fatalf("bad v4 %v", s.V4)
		}
		if s.V6.Bits() != 64 || s.V6.Addr().As16()[0] != 0xfd || s.V6 != s.V6.Masked() {
			t.Fatalf("bad v6 %v", s.V6)
		}
		seen[s.V4] = true
	}
	if len(seen) < 95 {
		t.Errorf("only %d distinct subnets out of 100", len(seen))
	}
	if s := RandomSubnetBits(29); s.V4.Bits() != 29 {
		t.Errorf("RandomSubnetBits(29) = %v", s.V4)
	}
}

func TestBinomialBounds(t *testing.T) {
	tests := []struct {
		n      int
		p, c   float64
		lo, hi int
	}{
		{1000, 0.1, 0.999, 70, 132},
		{1000, 0.81, 0.999, 768, 850},
		{100, 0, 0.999, 0, 0},
		{100, 1, 0.999, 100, 100},
		{10, 0.5, 0.9, 2, 8},
	}
	for _, tc := range tests {
		lo, hi := BinomialBounds(tc.n, tc.p, tc.c)
		// Reference values: the same quantile definition computed in
		// Python with math.comb.
		if lo != tc.lo || hi != tc.hi {
			t.Errorf("BinomialBounds(%d, %v, %v) = [%d, %d], want [%d, %d]", tc.n, tc.p, tc.c, lo, hi, tc.lo, tc.hi)
		}
	}
}

const pingOK = `PING 10.1.2.6 (10.1.2.6) 56(84) bytes of data.
64 bytes from 10.1.2.6: icmp_seq=1 ttl=64 time=20.4 ms
64 bytes from 10.1.2.6: icmp_seq=2 ttl=64 time=20.2 ms
64 bytes from 10.1.2.6: icmp_seq=2 ttl=64 time=20.9 ms (DUP!)
64 bytes from 10.1.2.6: icmp_seq=4 ttl=64 time=0.051 ms

--- 10.1.2.6 ping statistics ---
4 packets transmitted, 3 received, +1 duplicates, 25% packet loss, time 63ms
rtt min/avg/max/mdev = 0.051/15.1/20.9/8.7 ms
`

func TestParsePing(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		tx, rx  int
		replies int
		median  time.Duration
		wantErr bool
	}{
		{"replies and dup", pingOK, 4, 3, 4, 20200 * time.Microsecond, false},
		{"nothing back", "PING fd00::2(fd00::2) 56 data bytes\n\n--- fd00::2 ping statistics ---\n5 packets transmitted, 0 received, 100% packet loss, time 4ms\n", 5, 0, 0, 0, false},
		{"busybox", "PING 10.0.0.1 (10.0.0.1): 56 data bytes\n64 bytes from 10.0.0.1: seq=0 ttl=64 time=0.1 ms\n\n--- 10.0.0.1 ping statistics ---\n1 packets transmitted, 1 packets received, 0% packet loss\n", 1, 1, 0, 0, false},
		{"no summary", "ping: connect: Network is unreachable\n", 0, 0, 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParsePing([]byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want error, got %+v", r)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Transmitted != tc.tx || r.Received != tc.rx || len(r.Replies) != tc.replies || r.MedianRTT() != tc.median {
				t.Errorf("got tx=%d rx=%d replies=%d median=%v, want %d %d %d %v", r.Transmitted, r.Received, len(r.Replies), r.MedianRTT(), tc.tx, tc.rx, tc.replies, tc.median)
			}
		})
	}
}

func FuzzParsePing(f *testing.F) {
	f.Add([]byte(pingOK))
	f.Add([]byte("1 packets transmitted, 1 received\nicmp_seq=1 time=1e400 ms"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParsePing(data)
		if err == nil && (r.Transmitted < 0 || r.Received < 0) {
			t.Fatalf("negative counts: %+v", r)
		}
	})
}

func TestParseIperf3JSON(t *testing.T) {
	client, err := os.ReadFile("testdata/iperf3-client.json")
	if err != nil {
		t.Fatal(err)
	}
	server, err := os.ReadFile("testdata/iperf3-server.json")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("client", func(t *testing.T) {
		r, err := ParseIperf3JSON(client)
		if err != nil {
			t.Fatal(err)
		}
		if r.SentBytes != 25165824 || r.ReceivedBytes != 25165824 || r.Retransmits != 0 || int(r.SentBitsPerSecond) != 201306863 {
			t.Errorf("sums: %+v", r)
		}
		if len(r.Streams) != 2 {
			t.Fatalf("streams: %+v", r.Streams)
		}
		s := r.Streams[0]
		if s.Local != netip.MustParseAddrPort("127.0.0.1:58132") || s.Remote != netip.MustParseAddrPort("127.0.0.1:5299") ||
			s.SentBytes != 12582912 || s.ReceivedBytes != 12582912 || s.MeanRTT != 143*time.Microsecond {
			t.Errorf("stream 0: %+v", s)
		}
	})
	t.Run("server", func(t *testing.T) {
		r, err := ParseIperf3JSON(server)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Streams) != 2 || r.Streams[0].Local.Port() != 5299 || r.ReceivedBytes != 25165824 {
			t.Errorf("server: %+v", r)
		}
	})
	t.Run("error", func(t *testing.T) {
		_, err := ParseIperf3JSON([]byte(`{"start":{"connected":[]},"intervals":[],"end":{},"error":"unable to connect to server: Connection refused"}`))
		if err == nil || err.Error() != "iperf3: unable to connect to server: Connection refused" {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		if _, err := ParseIperf3JSON([]byte("iperf3: error - unable to connect")); err == nil {
			t.Error("want error")
		}
	})
}

func FuzzParseIperf3JSON(f *testing.F) {
	if b, err := os.ReadFile("testdata/iperf3-client.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"end":{"sum":{"bytes":1}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseIperf3JSON(data)
		if err == nil && r == nil {
			t.Fatal("nil result without error")
		}
	})
}

const nftChainJSON = `{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"chain": {"family": "netdev", "table": "testlab", "name": "loss1", "handle": 1, "type": "filter", "hook": "egress", "prio": -500, "policy": "accept"}}, {"rule": {"family": "netdev", "table": "testlab", "chain": "loss1", "handle": 3, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "sport"}}, "right": 80}}, {"counter": {"packets": 120, "bytes": 7200}}, {"match": {"op": "<", "left": {"numgen": {"mode": "random", "mod": 100, "offset": 0}}, "right": 10}}, {"counter": {"packets": 13, "bytes": 780}}, {"drop": null}]}}]}`

func TestParseNftCounters(t *testing.T) {
	got, err := parseNftCounters([]byte(nftChainJSON))
	if err != nil || len(got) != 2 || got[0] != 120 || got[1] != 13 {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := parseNftCounters([]byte(`{"nftables":[{"rule":{"expr":[{"counter":{}}]}}]}`)); err == nil {
		t.Error("counter without packets: want error")
	}
}

func FuzzParseNftCounters(f *testing.F) {
	f.Add([]byte(nftChainJSON))
	f.Fuzz(func(t *testing.T, data []byte) { _, _ = parseNftCounters(data) })
}

func TestListensOn(t *testing.T) {
	table := []byte(`  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:14B1 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1
`)
	for port, want := range map[uint16]bool{5297: true, 8080: false, 80: false} {
		if got := listensOn(table, port); got != want {
			t.Errorf("listensOn(%d) = %v, want %v", port, got, want)
		}
	}
}

func TestLossExempt(t *testing.T) {
	arp := make([]byte, 42)
	arp[12], arp[13] = 0x08, 0x06
	ns := make([]byte, 14+40+24)
	ns[12], ns[13] = 0x86, 0xdd
	ns[14+6] = 58
	ns[14+40] = 135
	echo6 := make([]byte, len(ns))
	copy(echo6, ns)
	echo6[14+40] = 128
	ip4 := make([]byte, 60)
	ip4[12] = 0x08
	for name, tc := range map[string]struct {
		frame []byte
		want  bool
	}{
		"arp": {arp, true}, "ndp ns": {ns, true}, "icmpv6 echo": {echo6, false}, "ipv4": {ip4, false}, "runt": {arp[:10], false},
	} {
		if got := lossExempt(tc.frame); got != tc.want {
			t.Errorf("%s: lossExempt = %v, want %v", name, got, tc.want)
		}
	}
}

// TestRelayQueueOrder drives the scheduling part of the relay without
// sockets: with order kept, release times never go backwards; with Reorder,
// frames leave in release-time order even if that differs from arrival.
func TestRelayQueueOrder(t *testing.T) {
	for _, reorder := range []bool{false, true} {
		timer, err := newTimerFD()
		if err != nil {
			t.Fatal(err)
		}
		rd := &relayDir{
			timer:   timer,
			limit:   1000,
			imp:     Impairment{Delay: 10 * time.Millisecond, Jitter: 8 * time.Millisecond, Reorder: reorder},
			lossRNG: newRNG(1, 1),
			jitRNG:  newRNG(1, 2),
		}
		rd.pool.New = func() any { return &frame{buf: make([]byte, 64)} }
		now := time.Now()
		var batch []*frame
		var stamps []time.Time
		for i := range 200 {
			f := rd.pool.Get().(*frame)
			f.n = 60
			batch = append(batch, f)
			stamps = append(stamps, now.Add(time.Duration(i)*100*time.Microsecond))
		}
		rd.enqueue(batch, stamps)
		var prev time.Time
		var prevSeq uint64
		outOfOrder := 0
		for rd.q.Len() > 0 {
			f := popFrame(&rd.q)
			if f.release.Before(prev) {
				t.Fatalf("reorder=%v: heap released %v before %v", reorder, f.release, prev)
			}
			if f.seq < prevSeq {
				outOfOrder++
			}
			prev, prevSeq = f.release, f.seq
		}
		if !reorder && outOfOrder != 0 {
			t.Errorf("order kept: %d frames overtook", outOfOrder)
		}
		if reorder && outOfOrder == 0 {
			t.Errorf("reorder: no frame overtook another with 8ms jitter at 100us spacing")
		}
		_ = timer.Close()
	}
}

func TestShortConnsLoopback(t *testing.T) {
	var host *NetNS // nil: the test process's own namespace, loopback only
	srv := host.StartEchoServer(t, "127.0.0.1:0")
	res, err := host.ShortConns(context.Background(), ShortConnsConfig{
		Target: srv.Addr(), Count: 50, Bytes: 300_000, Concurrency: 8, Timeout: 20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ports := map[uint16]bool{}
	for _, r := range res {
		if r.Err != nil || r.Sent != 300_000 || r.Received != 300_000 {
			t.Fatalf("conn %d: %+v", r.Index, r)
		}
		ports[r.Local.Port()] = true
	}
	if len(ports) != 50 || srv.Accepted() != 50 || srv.BytesReceived() != 50*300_000 {
		t.Errorf("ports=%d accepted=%d bytes=%d", len(ports), srv.Accepted(), srv.BytesReceived())
	}
}

func TestShortConnsTimeLimit(t *testing.T) {
	var host *NetNS
	// A listener that never accepts beyond its backlog and a server that
	// never echoes: every connection must end by the time limits.
	srv := host.StartSinkServer(t, "127.0.0.1:0")
	start := time.Now()
	res, err := host.ShortConns(context.Background(), ShortConnsConfig{
		Target: srv.Addr(), Count: 4, Bytes: 10, Concurrency: 2, Timeout: 500 * time.Millisecond, ConnTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("run took %v", d)
	}
	for _, r := range res {
		if r.Err == nil {
			t.Errorf("conn %d: want a timeout error (no echo from a sink), got %+v", r.Index, r)
		}
	}
}

func TestHoldConnsLoopback(t *testing.T) {
	var host *NetNS
	srv := host.StartSinkServer(t, "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := host.HoldConns(ctx, srv.Addr(), 20)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(h.Locals()); got != 20 {
		t.Fatalf("locals: %d", got)
	}
	waitFor(t, 2*time.Second, func() bool { return srv.Accepted() == 20 && srv.Open() == 20 }, "20 open connections")
	h.Release()
	h.Release() // idempotent
	waitFor(t, 2*time.Second, func() bool { return srv.Open() == 0 }, "connections closed after Release")

	// Bounded by ctx as well.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if _, err := host.HoldConns(ctx2, srv.Addr(), 3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, func() bool { return srv.Open() == 0 && srv.Accepted() == 23 }, "connections closed at ctx end")
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
