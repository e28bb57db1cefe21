package testlab

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNetNSCleanup(t *testing.T) {
	RequireRoot(t)
	RequireBinary(t, "ip")
	var name string
	var sleeper *exec.Cmd
	t.Run("create", func(t *testing.T) {
		ns := NewNetNS(t)
		name = ns.Name
		if !strings.HasPrefix(name, NamePrefix) {
			t.Errorf("name %q lacks prefix %q", name, NamePrefix)
		}
		out, err := exec.Command("ip", "netns", "list").CombinedOutput()
		if err != nil || !strings.Contains(string(out), name) {
			t.Fatalf("ip netns list does not show %s: %s %v", name, out, err)
		}
		// ip netns exec works, and lo is up.
		out2, err := ns.Run(context.Background(), "ip", "-o", "link", "show", "lo")
		if err != nil || !strings.Contains(out2, "UP") {
			t.Fatalf("lo in %s: %s %v", name, out2, err)
		}
		// A process left running must be killed by Cleanup.
		sleeper = ns.Command(context.Background(), "sleep", "60")
		if err := sleeper.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 2*time.Second, func() bool { p, _ := ns.Pids(); return len(p) == 1 }, "sleep to appear in the namespace")
	})
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), name) {
		t.Errorf("ip netns list still shows %s after cleanup:\n%s", name, out)
	}
	if _, err := os.Stat(filepath.Join(NetnsDir, name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists: %v", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- sleeper.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("sleep exited cleanly; want killed")
		}
	case <-time.After(3 * time.Second):
		t.Error("sleep still running after cleanup")
	}
}

func TestNetNSDo(t *testing.T) {
	RequireRoot(t)
	ns := NewNetNS(t)
	// Inside, only lo exists.
	var ifaces []net.Interface
	if err := ns.Do(func() error {
		var err error
		ifaces, err = net.Interfaces()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(ifaces) != 1 || ifaces[0].Name != "lo" {
		t.Errorf("interfaces in fresh netns: %v", ifaces)
	}
	want := errors.New("boom")
	if err := ns.Do(func() error { return want }); !errors.Is(err, want) {
		t.Errorf("Do error = %v, want %v", err, want)
	}
	func() {
		defer func() {
			if r := recover(); r != "panic in ns" {
				t.Errorf("recovered %v", r)
			}
		}()
		_ = ns.Do(func() error { panic("panic in ns") })
	}()
	// The listener stays in the namespace after Do returns: a host dial to
	// the same loopback port must not reach it, a dial inside must.
	ln, err := ns.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ln, true)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := ns.Dial(ctx, "tcp", srv.Addr().String())
	if err != nil {
		t.Fatalf("dial inside: %v", err)
	}
	c.Close()
	if c, err := (&net.Dialer{Timeout: 500 * time.Millisecond}).Dial("tcp", srv.Addr().String()); err == nil {
		// Something on the host may happen to use the port; it must not be ours.
		c.Close()
		if srv.Accepted() != 1 {
			t.Errorf("host dial reached the namespace's listener")
		}
	}
}

func TestVethPairConnectivity(t *testing.T) {
	RequireRoot(t)
	RequireBinary(t, "ping")
	t.Parallel()
	p := NewPair(t)
	a, b := p.Link.A, p.Link.B
	if a.Addr4() == b.Addr4() || !p.Link.Subnet.V4.Contains(a.Addr4()) || !p.Link.Subnet.V6.Contains(b.Addr6()) {
		t.Fatalf("addresses %v %v in %+v", a, b, p.Link.Subnet)
	}
	srv := p.B.StartEchoServer(t, "[::]:0")
	ctx := context.Background()
	for _, dst := range []netip.Addr{b.Addr4(), b.Addr6()} {
		t.Run(dst.String(), func(t *testing.T) {
			r, err := p.A.Ping(ctx, dst, PingOptions{Count: 3, Interval: 10 * time.Millisecond})
			if err != nil || r.Received != 3 {
				t.Fatalf("ping %v: %+v %v", dst, r, err)
			}
			res, err := p.A.ShortConns(ctx, ShortConnsConfig{Target: netip.AddrPortFrom(dst, srv.Addr().Port()), Count: 5, Bytes: 100_000})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if r.Err != nil || r.Received != 100_000 || r.Local.Addr() != map[bool]netip.Addr{true: a.Addr4(), false: a.Addr6()}[dst.Is4()] {
					t.Errorf("conn: %+v", r)
				}
			}
		})
	}
	// Offloads are off by default: wire-sized frames with full checksums.
	if _, err := exec.LookPath("ethtool"); err == nil {
		out, err := p.A.Run(ctx, "ethtool", "-k", a.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"tx-tcp-segmentation: off", "tx-tcp6-segmentation: off", "generic-segmentation-offload: off", "generic-receive-offload: off", "tx-checksumming: off"} {
			if !strings.Contains(out, f) {
				t.Errorf("ethtool -k %s lacks %q", a.Name, f)
			}
		}
	}
}

func TestHoldConnsPair(t *testing.T) {
	RequireRoot(t)
	t.Parallel()
	p := NewPair(t)
	srv := p.B.StartSinkServer(t, p.Link.B.Addr4().String()+":0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := p.A.HoldConns(ctx, srv.Addr(), 10)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	for _, l := range h.Locals() {
		if l.Addr() != p.Link.A.Addr4() {
			t.Errorf("local %v, want from %v", l, p.Link.A.Addr4())
		}
	}
	waitFor(t, 2*time.Second, func() bool { return srv.Open() == 10 }, "10 held connections")
}

// TestRelayDelay: 10 ms each way gives a 20 ms ping RTT (median within
// 1 ms), then a changed impairment takes effect.
func TestRelayDelay(t *testing.T) {
	RequireRoot(t)
	RequireBinary(t, "ping")
	t.Parallel()
	const delay = 10 * time.Millisecond
	p := NewRelayedPath(t, RelayConfig{
		ClientToServer: Impairment{Delay: delay},
		ServerToClient: Impairment{Delay: delay},
	})
	ctx := context.Background()
	for _, dst := range []netip.Addr{p.ServerEnd.Addr4(), p.ServerEnd.Addr6()} {
		r, err := p.Client.Ping(ctx, dst, PingOptions{Count: 50, Interval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		med := r.MedianRTT()
		rtts := r.RTTs()
		t.Logf("%v: %d/%d replies, median RTT %v, min %v, max %v", dst, r.Received, r.Transmitted, med, minD(rtts), maxD(rtts))
		if r.Received != 50 {
			t.Errorf("%v: %d/50 replies without loss configured", dst, r.Received)
		}
		if d := med - 2*delay; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("%v: median RTT %v, want %v ± 1ms", dst, med, 2*delay)
		}
	}
	if err := p.Relay.SetImpairment(ClientToServer, Impairment{Delay: 25 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	r, err := p.Client.Ping(ctx, p.ServerEnd.Addr4(), PingOptions{Count: 10, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if med := r.MedianRTT(); med < 34*time.Millisecond || med > 36*time.Millisecond {
		t.Errorf("after SetImpairment: median RTT %v, want 35ms ± 1ms", med)
	}
	st := p.Relay.Stats()
	t.Logf("relay stats: %+v", st)
	for _, d := range []RelayDir{ClientToServer, ServerToClient} {
		if s := st.Dir(d); s.Unintended() != 0 || s.DroppedLoss != 0 || s.Forwarded == 0 {
			t.Errorf("%v: %+v", d, s)
		}
	}
	if err := p.Relay.SetImpairment(ServerToClient, Impairment{LossPercent: 101}); err == nil {
		t.Error("SetImpairment accepted 101% loss")
	}
}

// TestRelayJitter: with order kept, jitter spreads the RTT inside
// [2(delay-jitter), 2(delay+jitter)] without reordering.
func TestRelayJitter(t *testing.T) {
	RequireRoot(t)
	RequireBinary(t, "ping")
	t.Parallel()
	p := NewRelayedPath(t, RelayConfig{
		ClientToServer: Impairment{Delay: 10 * time.Millisecond, Jitter: 4 * time.Millisecond},
		ServerToClient: Impairment{Delay: 10 * time.Millisecond, Jitter: 4 * time.Millisecond},
		Seed:           7,
	})
	r, err := p.Client.Ping(context.Background(), p.ServerEnd.Addr4(), PingOptions{Count: 40, Interval: 25 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rtts := r.RTTs()
	slices.Sort(rtts)
	p10, p90 := rtts[len(rtts)/10], rtts[len(rtts)*9/10]
	t.Logf("jitter: %d replies, RTT min %v p10 %v median %v p90 %v max %v", len(rtts), rtts[0], p10, r.MedianRTT(), p90, rtts[len(rtts)-1])
	// The relay never releases early, so the minimum is hard; the top is
	// only checked at p90 because a loaded 2-core CI machine can stall a
	// reply for a few ms now and then.
	if r.Received != 40 || rtts[0] < 12*time.Millisecond || p90 > 29*time.Millisecond || p90-p10 < 3*time.Millisecond {
		t.Errorf("RTTs out of the expected spread: min %v p10 %v p90 %v (%d replies)", rtts[0], p10, p90, r.Received)
	}
}

// TestRelayLoss checks the relay's loss against the configured probability
// with exact binomial 99.9% bounds over 1000 echo requests.
func TestRelayLoss(t *testing.T) {
	RequireRoot(t)
	RequireBinary(t, "ping")
	t.Parallel()
	tests := []struct {
		name     string
		c2s, s2c float64
	}{
		{"10pct_each_way", 10, 10},
		{"20pct_server_to_client_only", 0, 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := NewRelayedPath(t, RelayConfig{
				ClientToServer: Impairment{LossPercent: tc.c2s},
				ServerToClient: Impairment{LossPercent: tc.s2c},
				Seed:           42,
			})
			const n = 1000
			r, err := p.Client.Ping(context.Background(), p.ServerEnd.Addr4(), PingOptions{Count: n, Interval: 2 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			pReply := (1 - tc.c2s/100) * (1 - tc.s2c/100)
			lo, hi := BinomialBounds(r.Transmitted, pReply, 0.999)
			t.Logf("%d/%d replies (%.3f, expected %.3f, 99.9%% bounds [%d, %d])", r.Received, r.Transmitted, r.ReplyRatio(), pReply, lo, hi)
			if r.Transmitted != n || r.Received < lo || r.Received > hi {
				t.Errorf("replies %d/%d outside [%d, %d]", r.Received, r.Transmitted, lo, hi)
			}
			st := p.Relay.Stats()
			for _, d := range []struct {
				dir RelayDir
				pct float64
			}{{ClientToServer, tc.c2s}, {ServerToClient, tc.s2c}} {
				s := st.Dir(d.dir)
				lo, hi := BinomialBounds(int(s.Received), d.pct/100, 0.999)
				t.Logf("%v: received %d, dropped %d (%.3f), forwarded %d, bounds [%d, %d]", d.dir, s.Received, s.DroppedLoss,
					float64(s.DroppedLoss)/float64(max(s.Received, 1)), s.Forwarded, lo, hi)
				if int(s.DroppedLoss) < lo || int(s.DroppedLoss) > hi {
					t.Errorf("%v: dropped %d of %d outside [%d, %d]", d.dir, s.DroppedLoss, s.Received, lo, hi)
				}
				if s.Unintended() != 0 || s.Received != s.Forwarded+s.DroppedLoss {
					t.Errorf("%v: unintended loss: %+v", d.dir, s)
				}
			}
		})
	}
}

// TestRelayThroughput: iperf3 through the relay at 300 Mbit/s with 5 ms each
// way, and the relay itself loses nothing. The throughput floor gets up to
// three tries, since other test binaries may load the two CPUs; the relay
// must never lose a frame on its own in any of them.
func TestRelayThroughput(t *testing.T) {
	RequireRoot(t)
	RequireBinary(t, "iperf3")
	p := NewRelayedPath(t, RelayConfig{
		ClientToServer: Impairment{Delay: 5 * time.Millisecond},
		ServerToClient: Impairment{Delay: 5 * time.Millisecond},
	})
	const floor = 250e6
	best := 0.0
	for try := 1; try <= 3 && best < floor; try++ {
		res := Iperf3(t, p.Client, p.Server, p.ServerEnd.Addr4(), Iperf3Options{Duration: 2 * time.Second, Bitrate: "300M"})
		st := p.Relay.Stats()
		t.Logf("try %d: iperf3 via relay: sent %d B, received %d B, %.0f Mbit/s, %d retransmits", try, res.SentBytes, res.ReceivedBytes, res.ReceivedBitsPerSecond/1e6, res.Retransmits)
		t.Logf("try %d: relay: %+v", try, st)
		for _, d := range []RelayDir{ClientToServer, ServerToClient} {
			if s := st.Dir(d); s.Unintended() != 0 {
				t.Fatalf("%v: relay lost frames on its own: %+v", d, s)
			}
		}
		if res.Retransmits != 0 {
			t.Errorf("retransmits %d on a lossless path", res.Retransmits)
		}
		best = max(best, res.ReceivedBitsPerSecond)
	}
	if best < floor {
		if raceEnabled {
			t.Logf("race detector on: not enforcing the %.0f Mbit/s floor (best %.0f)", floor/1e6, best/1e6)
			return
		}
		t.Errorf("throughput %.0f Mbit/s through the relay, want >= %.0f", best/1e6, floor/1e6)
	}
}

func TestIperf3Pair(t *testing.T) {
	RequireRoot(t)
	RequireBinary(t, "iperf3")
	p := NewPair(t)
	res := Iperf3(t, p.A, p.B, p.Link.B.Addr4(), Iperf3Options{Duration: 2 * time.Second, Parallel: 2, MSS: 1200})
	t.Logf("iperf3 pair: sent %d B, received %d B, %.0f Mbit/s, %d retransmits, %.2fs, streams %+v",
		res.SentBytes, res.ReceivedBytes, res.ReceivedBitsPerSecond/1e6, res.Retransmits, res.Seconds, res.Streams)
	if res.SentBytes == 0 || res.ReceivedBytes > res.SentBytes || float64(res.ReceivedBytes) < 0.9*float64(res.SentBytes) {
		t.Errorf("bytes: sent %d received %d", res.SentBytes, res.ReceivedBytes)
	}
	if res.ReceivedBitsPerSecond < 50e6 || res.Seconds < 1.9 || res.Seconds > 2.5 || res.Retransmits < 0 {
		t.Errorf("implausible: %.0f bit/s over %.2fs, %d retransmits", res.ReceivedBitsPerSecond, res.Seconds, res.Retransmits)
	}
	if len(res.Streams) != 2 {
		t.Fatalf("streams: %+v", res.Streams)
	}
	for _, s := range res.Streams {
		if s.Local.Addr() != p.Link.A.Addr4() || s.Local.Port() == 0 || s.Remote.Addr() != p.Link.B.Addr4() || s.SentBytes == 0 {
			t.Errorf("stream: %+v", s)
		}
	}

	// Reverse, rate-limited, from a fixed client port, over IPv6 (the
	// namespace is private, so any port is free).
	const cport = 45000
	rev := Iperf3(t, p.A, p.B, p.Link.B.Addr6(), Iperf3Options{Duration: time.Second, Reverse: true, Bitrate: "100M", CPort: cport})
	t.Logf("iperf3 reverse: %.1f Mbit/s, %d retransmits, streams %+v", rev.ReceivedBitsPerSecond/1e6, rev.Retransmits, rev.Streams)
	if rev.ReceivedBitsPerSecond < 80e6 || rev.ReceivedBitsPerSecond > 120e6 {
		t.Errorf("reverse at 100M: %.1f Mbit/s", rev.ReceivedBitsPerSecond/1e6)
	}
	if len(rev.Streams) != 1 || rev.Streams[0].Local != netip.AddrPortFrom(p.Link.A.Addr6(), cport) {
		t.Errorf("reverse streams: %+v", rev.Streams)
	}
}

// TestNftLoss: an nft numgen rule drops its share of the matching frames,
// within binomial bounds, on ingress and on egress.
func TestNftLoss(t *testing.T) {
	RequireRoot(t)
	RequireBinary(t, "ping")
	RequireBinary(t, "nft")
	t.Parallel()
	for _, dir := range []Direction{Ingress, Egress} {
		t.Run(dir.String(), func(t *testing.T) {
			t.Parallel()
			p := NewPair(t)
			const pct, n = 20, 1000
			// Echo requests are dropped entering B, or leaving A (on the
			// wire, i.e. at B's ingress, so ping does not notice).
			var rule *LossRule
			if dir == Ingress {
				rule = p.B.AddLoss(t, Ingress, pct, OnDevice(p.Link.B.Name), Proto("icmp"))
			} else {
				rule = p.Link.A.AddLoss(t, Egress, pct, Proto("icmp"))
			}
			r, err := p.A.Ping(context.Background(), p.Link.B.Addr4(), PingOptions{Count: n, Interval: 2 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			matched, dropped, err := rule.Counters()
			if err != nil {
				t.Fatal(err)
			}
			lo, hi := BinomialBounds(n, 1-pct/100.0, 0.999)
			t.Logf("%v: %d/%d replies, rule matched %d dropped %d, bounds [%d, %d]", dir, r.Received, r.Transmitted, matched, dropped, lo, hi)
			if r.Received < lo || r.Received > hi {
				t.Errorf("replies %d outside [%d, %d]", r.Received, lo, hi)
			}
			if matched != uint64(r.Transmitted) || dropped != uint64(r.Transmitted-r.Received) {
				t.Errorf("counters matched=%d dropped=%d, want %d and %d", matched, dropped, r.Transmitted, r.Transmitted-r.Received)
			}
			if err := rule.Remove(); err != nil {
				t.Fatal(err)
			}
			r, err = p.A.Ping(context.Background(), p.Link.B.Addr4(), PingOptions{Count: 20, Interval: 2 * time.Millisecond})
			if err != nil || r.Received != 20 {
				t.Errorf("after Remove: %+v %v", r, err)
			}
		})
	}
}

// TestNftLossSYNACK drops 10% of the SYN-ACKs of one server port: every
// connection still completes (after a retransmission), and the rule's drop
// count fits its match count.
func TestNftLossSYNACK(t *testing.T) {
	RequireRoot(t)
	RequireBinary(t, "nft")
	t.Parallel()
	p := NewPair(t)
	srv := p.B.StartEchoServer(t, p.Link.B.Addr4().String()+":0")
	other := p.B.StartEchoServer(t, p.Link.B.Addr4().String()+":0")
	rule := p.B.AddLoss(t, Egress, 10, SYNACK(), SrcPort(srv.Addr().Port()))
	ctx := context.Background()
	res, err := p.A.ShortConns(ctx, ShortConnsConfig{Target: srv.Addr(), Count: 100, Bytes: 1000, Concurrency: 100, ConnTimeout: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// Connections to another port are not affected.
	res2, err := p.A.ShortConns(ctx, ShortConnsConfig{Target: other.Addr(), Count: 20, Bytes: 1000, Concurrency: 20})
	if err != nil {
		t.Fatal(err)
	}
	slow := 0
	for _, r := range res {
		if r.Err != nil || r.Received != 1000 {
			t.Errorf("conn %d: %+v", r.Index, r)
		}
		if r.ConnectTime > 900*time.Millisecond {
			slow++
		}
	}
	for _, r := range res2 {
		if r.Err != nil || r.ConnectTime > 500*time.Millisecond {
			t.Errorf("unaffected port, conn %d: %+v", r.Index, r)
		}
	}
	matched, dropped, err := rule.Counters()
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := BinomialBounds(int(matched), 0.1, 0.999)
	t.Logf("SYN-ACKs matched %d dropped %d (bounds [%d, %d]); %d/100 connections needed a retransmission", matched, dropped, lo, hi, slow)
	if matched < 100 || int(dropped) < lo || int(dropped) > hi {
		t.Errorf("matched %d dropped %d outside [%d, %d]", matched, dropped, lo, hi)
	}
	if dropped > 0 && slow == 0 {
		t.Errorf("%d SYN-ACKs dropped but no connection was slow", dropped)
	}
}

func minD(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m
}

func maxD(ds []time.Duration) time.Duration {
	m := time.Duration(0)
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
