package probe

import (
	"context"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netsight/netsight/internal/testlab"
)

// labPair is a client and a server namespace joined by a testlab veth pair
// on a random 10.x.y.0/24 (client host 1, server host 2, plus a ULA /64).
// The server routes a second random /24 and rejects it with ICMP host
// unreachable.
type labPair struct {
	client, server *testlab.NetNS
	link           *testlab.Link
	srv4, srv6     string // server addresses
	dead           string // unused address in the client's subnet
	unreach        string // an address behind the server that it rejects
}

// labTest gates privileged tests: they run in the full pass (as root in
// CI), not in the -short race pass.
func labTest(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("lab test: skipped with -short")
	}
	testlab.RequireRoot(t)
}

func newLabPair(t *testing.T) *labPair {
	t.Helper()
	labTest(t)
	testlab.RequireBinary(t, "ip")
	testlab.RequireBinary(t, "nft")
	sub := testlab.RandomSubnetBits(24)
	p := testlab.NewPair(t, testlab.WithSubnet(sub))
	lab := &labPair{client: p.A, server: p.B, link: p.Link,
		srv4: p.Link.B.Addr4().String(), srv6: p.Link.B.Addr6().String()}
	dead, err := sub.Host4(99)
	if err != nil {
		t.Fatal(err)
	}
	lab.dead = dead.Addr().String()
	unreachNet := testlab.RandomSubnetBits(24).V4
	for unreachNet.Overlaps(sub.V4) {
		unreachNet = testlab.RandomSubnetBits(24).V4
	}
	lab.unreach = unreachNet.Addr().Next().Next().Next().Next().Next().String() // host .5
	// The unreachable network sits behind the server, whose firewall
	// answers with ICMP host unreachable (nft reject: not rate limited,
	// unlike "unreachable" routes).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := lab.client.Run(ctx, "ip", "route", "add", unreachNet.String(), "via", lab.srv4); err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][2]string{{"net.ipv4.ip_forward", "1"}, {"net.ipv4.icmp_ratelimit", "0"}} {
		if err := lab.server.Sysctl(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	nftApply(t, lab.server, "table ip unreach { chain forward_filter { type filter hook forward priority 0; ip daddr "+
		unreachNet.String()+" reject with icmp type host-unreachable; }; }")
	return lab
}

// nftApply loads an nft script in ns.
func nftApply(t *testing.T, ns *testlab.NetNS, script string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := ns.Command(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f in %s: %v: %s\n%s", ns, err, out, script)
	}
}

// runProbes runs count probes per target from namespace ns and returns a
// summary per target.
func runProbes(t *testing.T, ns *testlab.NetNS, targets []Target, count int, opts Options) []*Summary {
	t.Helper()
	sums := make([]*Summary, len(targets))
	for i := range sums {
		sums[i] = &Summary{}
	}
	var mu sync.Mutex
	opts.Socket = ns.Socket
	opts.Count = count
	opts.NoSpread = true
	opts.OnResult = func(r Result) {
		mu.Lock()
		sums[r.Target].Add(r)
		mu.Unlock()
	}
	e, err := New(targets, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("probes did not finish: %v", ctx.Err())
	}
	return sums
}

// TestLabICMPRelay is the acceptance test: 500 echoes through a testlab
// relay adding 20 ms each way and dropping 10% of echo requests (only
// those: LossMatch), so every lost probe is one the relay dropped.
func TestLabICMPRelay(t *testing.T) {
	labTest(t)
	path := testlab.NewRelayedPath(t, testlab.RelayConfig{
		ClientToServer: testlab.Impairment{Delay: 20 * time.Millisecond, LossPercent: 10},
		ServerToClient: testlab.Impairment{Delay: 20 * time.Millisecond},
		LossMatch:      testlab.IsICMPEchoRequest,
	})
	relay := path.Relay
	// Warm up the sockets with a few probes (neighbours are static).
	target := Target{Name: "relay", Host: path.ServerEnd.Addr4().String(), Protocol: ICMP, Interval: 10 * time.Millisecond, Timeout: time.Second}
	runProbes(t, path.Client, []Target{target}, 3, Options{})
	drop0 := relay.Stats().ClientToServer.DroppedLoss

	start := time.Now()
	sum := runProbes(t, path.Client, []Target{target}, 500, Options{})[0]
	took := time.Since(start)
	st := relay.Stats()
	dropped := int64(st.ClientToServer.DroppedLoss - drop0)
	lost := sum.Sent - sum.Received
	p50, ok := sum.Quantile(0.5)
	if !ok {
		t.Fatal("no RTT")
	}
	p99, _ := sum.Quantile(0.99)
	lo, hi := testlab.BinomialBounds(500, 0.10, 0.999)
	t.Logf("500 echoes in %s: sent %d received %d lost %d (relay dropped %d, 99.9%% bounds %d..%d), RTT p50 %s p99 %s min %s max %s",
		took.Round(time.Millisecond), sum.Sent, sum.Received, lost, dropped, lo, hi, p50, p99, sum.RTTMin, sum.RTTMax)
	t.Logf("relay: %+v", st)
	if sum.Sent != 500 {
		t.Errorf("sent %d, want 500", sum.Sent)
	}
	if lost < int64(lo) || lost > int64(hi) {
		t.Errorf("lost %d outside binomial 99.9%% bounds %d..%d", lost, lo, hi)
	}
	if lost != dropped {
		t.Errorf("lost %d, but the relay dropped exactly %d echo requests", lost, dropped)
	}
	if d := p50 - 40*time.Millisecond; d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("RTT p50 %s, want 40ms ± 1ms", p50)
	}
	if sum.Outcomes[Timeout] != lost {
		t.Errorf("timeouts %d, lost %d", sum.Outcomes[Timeout], lost)
	}
}

var pingTime = regexp.MustCompile(`time=([0-9.]+) ms`)

// TestLabICMPSockets checks the datagram and the raw path, IPv4 and IPv6,
// large and DF probes, a dead address, and compares RTTs with ping.
func TestLabICMPSockets(t *testing.T) {
	lab := newLabPair(t)
	for _, mode := range []struct {
		name       string
		pingGroups string
		want       ICMPMode
	}{
		{"raw", "1\t0", ICMPRaw},                    // the default: datagram sockets denied, raw fallback
		{"datagram", "0\t2147483647", ICMPDatagram}, // everyone may open ping sockets
	} {
		t.Run(mode.name, func(t *testing.T) {
			if err := lab.client.Sysctl("net.ipv4.ping_group_range", mode.pingGroups); err != nil {
				t.Fatal(err)
			}
			var e *Engine
			targets := []Target{
				{Name: "v4", Host: lab.srv4, Protocol: ICMP, Interval: 10 * time.Millisecond, Timeout: time.Second},
				{Name: "v6", Host: lab.srv6, Protocol: ICMP, Interval: 10 * time.Millisecond, Timeout: time.Second},
				{Name: "big", Host: lab.srv4, Protocol: ICMP, Size: MaxSize, Interval: 10 * time.Millisecond, Timeout: time.Second},
				{Name: "big6", Host: lab.srv6, Protocol: ICMP, Size: MaxSize, Interval: 10 * time.Millisecond, Timeout: time.Second},
				{Name: "df-fits", Host: lab.srv4, Protocol: ICMP, Size: 1472, DF: true, Interval: 10 * time.Millisecond, Timeout: time.Second},
				{Name: "df-too-big", Host: lab.srv4, Protocol: ICMP, Size: 1473, DF: true, Interval: 10 * time.Millisecond, Timeout: time.Second},
				{Name: "dead", Host: lab.dead, Protocol: ICMP, Interval: 10 * time.Millisecond, Timeout: 300 * time.Millisecond},
				{Name: "unreach", Host: lab.unreach, Protocol: ICMP, Interval: 10 * time.Millisecond, Timeout: time.Second},
			}
			sums := make([]*Summary, len(targets))
			for i := range sums {
				sums[i] = &Summary{}
			}
			var mu sync.Mutex
			e, err := New(targets, Options{Socket: lab.client.Socket, Count: 20, NoSpread: true,
				OnResult: func(r Result) {
					mu.Lock()
					sums[r.Target].Add(r)
					if r.Outcome != OK && targets[r.Target].Name != "dead" && sums[r.Target].Outcomes[r.Outcome] == 1 {
						t.Logf("%s: first %s: %v", targets[r.Target].Name, r.Outcome, r.Err)
					}
					mu.Unlock()
				}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var socks []SocketInfo
			go func() {
				time.Sleep(100 * time.Millisecond)
				s := e.Sockets()
				mu.Lock()
				socks = s
				mu.Unlock()
			}()
			if err := e.Run(ctx); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(socks) == 0 {
				t.Fatal("no icmp socket reported")
			}
			for _, s := range socks {
				if s.Mode != mode.want {
					t.Errorf("socket %+v, want mode %s", s, mode.want)
				}
			}
			// Four sockets at most: {v4, v6} x {df, no df}, shared by all targets.
			if len(socks) > 4 {
				t.Errorf("%d sockets, want at most 4 shared ones", len(socks))
			}
			for i, tg := range targets {
				s := sums[i]
				loss, _ := s.Loss()
				p50, hasRTT := s.Quantile(0.5)
				t.Logf("%-10s sent %d received %d loss %.2f p50 %s outcomes %v", tg.Name, s.Sent, s.Received, loss, p50, s.Outcomes)
				switch tg.Name {
				case "dead":
					if loss != 1 || hasRTT {
						t.Errorf("dead address: loss %v, RTT present %v; want loss 1 and no RTT", loss, hasRTT)
					}
				case "unreach":
					// The router answers only the first few probes (the
					// kernel limits ICMP errors per flow); the others
					// time out. Both count as loss, neither has an RTT.
					if loss != 1 || hasRTT || s.Outcomes[Unreachable] < 1 || s.Outcomes[Unreachable]+s.Outcomes[Timeout] != 20 {
						t.Errorf("unreachable network: loss %v outcomes %v, want unreachable (and timeouts)", loss, s.Outcomes)
					}
				case "df-too-big":
					if loss != 1 || hasRTT || s.Outcomes[Error] != 20 {
						t.Errorf("DF probe over the MTU: loss %v outcomes %v, want 20 errors", loss, s.Outcomes)
					}
				default:
					if s.Sent != 20 || s.Received != 20 || !hasRTT {
						t.Errorf("%s: sent %d received %d, want 20/20", tg.Name, s.Sent, s.Received)
					}
				}
			}
			// Same path, ping's view. Both use kernel receive stamps and
			// user-space send stamps; on an idle veth they agree within
			// tens of µs (see bench/probe for the measured error).
			testlab.RequireBinary(t, "ping")
			pctx, pcancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer pcancel()
			out, err := lab.client.Run(pctx, "ping", "-n", "-c", "20", "-i", "0.01", lab.srv4)
			if err != nil {
				t.Fatal(err)
			}
			var pings []time.Duration
			for _, m := range pingTime.FindAllStringSubmatch(out, -1) {
				v, _ := strconv.ParseFloat(m[1], 64)
				pings = append(pings, time.Duration(v*float64(time.Millisecond)))
			}
			pingP50, ok := Quantile(pings, 0.5)
			if !ok {
				t.Fatalf("cannot parse ping output: %s", out)
			}
			ours, _ := sums[0].Quantile(0.5)
			t.Logf("idle veth RTT p50: netsight %s, ping %s", ours, pingP50)
			if d := ours - pingP50; d > time.Millisecond || d < -time.Millisecond {
				t.Errorf("RTT p50 %s differs from ping's %s by more than 1 ms", ours, pingP50)
			}
		})
	}
}

// TestLabTCP checks the outcomes: open, refused (closed port), timeout
// (dead address), and that SYN-ACK loss shows as loss, not as RTT spikes.
func TestLabTCP(t *testing.T) {
	lab := newLabPair(t)
	testlab.RequireBinary(t, "nft")
	ln, err := lab.server.ListenTCP(netip.AddrPortFrom(lab.link.B.Addr4(), 8080).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go acceptAll(ln)
	ln6, err := lab.server.ListenTCP(netip.AddrPortFrom(lab.link.B.Addr6(), 8080).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln6.Close()
	go acceptAll(ln6)

	t.Run("outcomes", func(t *testing.T) {
		targets := []Target{
			{Name: "open", Host: lab.srv4, Port: 8080, Protocol: TCP, Interval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond},
			{Name: "open6", Host: lab.srv6, Port: 8080, Protocol: TCP, Interval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond},
			{Name: "closed", Host: lab.srv4, Port: 8081, Protocol: TCP, Interval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond},
			{Name: "dead", Host: lab.dead, Port: 8080, Protocol: TCP, Interval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond},
		}
		sums := runProbes(t, lab.client, targets, 10, Options{})
		for i, tg := range targets {
			s := sums[i]
			loss, _ := s.Loss()
			p50, _ := s.Quantile(0.5)
			t.Logf("%-7s sent %d received %d loss %.2f p50 %s outcomes %v", tg.Name, s.Sent, s.Received, loss, p50, s.Outcomes)
		}
		if s := sums[0]; s.Outcomes[OK] != 10 || s.Sent != 10 || s.Received != 10 {
			t.Errorf("open port: %+v", s.Outcomes)
		}
		if s := sums[1]; s.Outcomes[OK] != 10 {
			t.Errorf("open port over IPv6: %+v", s.Outcomes)
		}
		if s := sums[2]; s.Outcomes[Refused] != 10 || s.Outcomes[OK] != 0 {
			t.Errorf("closed port: outcomes %v, want 10 refused and no ok", s.Outcomes)
		}
		s := sums[3]
		loss, _ := s.Loss()
		if _, hasRTT := s.Quantile(0.5); loss != 1 || hasRTT || s.Outcomes[OK] != 0 {
			t.Errorf("dead address: loss %v outcomes %v, want loss 1, no RTT", loss, s.Outcomes)
		}
		if s.Outcomes[Timeout]+s.Outcomes[Unreachable] != 10 {
			t.Errorf("dead address: outcomes %v, want timeouts or unreachable", s.Outcomes)
		}
		// No TIME_WAIT left behind by our probes (linger 0).
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := lab.client.Run(ctx, "ss", "-tan", "state", "time-wait")
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(out, lab.srv4+":8080"); n > 0 {
			t.Errorf("%d TIME_WAIT sockets left by probes:\n%s", n, out)
		}
	})

	t.Run("synack-loss", func(t *testing.T) {
		// Drop 10% of the server's SYN-ACKs on the wire: testlab hooks the
		// rule on the client's ingress, so the server does not notice.
		rule := lab.link.B.AddLoss(t, testlab.Egress, 10, testlab.SYNACK(), testlab.TCPSrcPort(8080))
		// 40 targets at 50 ms: 400 probes in ~0.5 s, plus SYN RTOs.
		var targets []Target
		for i := range 40 {
			targets = append(targets, Target{Name: "t" + strconv.Itoa(i), Host: lab.srv4, Port: 8080, Protocol: TCP,
				Interval: 50 * time.Millisecond, Timeout: 2500 * time.Millisecond})
		}
		sums := runProbes(t, lab.client, targets, 10, Options{})
		var all Summary
		for _, s := range sums {
			all.Sent += s.Sent
			all.Received += s.Received
			for i := range all.Outcomes {
				all.Outcomes[i] += s.Outcomes[i]
			}
			all.RTTs = append(all.RTTs, s.RTTs...)
		}
		lost := all.Sent - all.Received
		loss, _ := all.Loss()
		// Model: each handshake's first SYN-ACK is dropped with p = 0.1;
		// such a handshake loses exactly one exchange (the SYN-ACKs that
		// answer the retransmitted SYN and the server's own retransmission
		// race, so a second loss is rare). Lost packets ~ Binomial(400, 0.1),
		// i.e. a loss ratio of ~0.1/1.1 of the packets sent.
		lo, hi := testlab.BinomialBounds(400, 0.10, 0.999)
		p50, _ := Quantile(all.RTTs, 0.5)
		maxRTT, _ := Quantile(all.RTTs, 1)
		matched, dropped, err := rule.Counters()
		if err != nil {
			t.Fatal(err)
		}
		drops := int64(dropped)
		t.Logf("400 handshakes: packets sent %d received %d lost %d (loss %.3f, 99.9%% bounds %d..%d lost); nft dropped %d of %d SYN-ACKs; outcomes %v; RTT p50 %s max %s (%d samples)",
			all.Sent, all.Received, lost, loss, lo, hi, drops, matched, all.Outcomes, p50, maxRTT, len(all.RTTs))
		if lost < int64(lo) || lost > int64(hi) {
			t.Errorf("lost %d of %d outside binomial 99.9%% bounds %d..%d for 10%% SYN-ACK loss", lost, all.Sent, lo, hi)
		}
		// Cross-check with the independent counter: we never count more
		// losses than nftables dropped SYN-ACKs, and we miss at most the
		// drops of redundant server retransmissions.
		if lost > drops || lost < drops/2 {
			t.Errorf("lost %d, nftables dropped %d SYN-ACKs: want drops/2 <= lost <= drops", lost, drops)
		}
		if maxRTT > 200*time.Millisecond {
			t.Errorf("max RTT %s: a SYN retransmission leaked into the RTT", maxRTT)
		}
		if all.Outcomes[OK] < 390 {
			t.Errorf("only %d of 400 handshakes completed (timeout 2.5s covers one retransmission)", all.Outcomes[OK])
		}
	})
}

func acceptAll(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}
