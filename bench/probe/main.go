// Command probebench compares netsight's prober with
// prometheus-blackbox-exporter on the same lab paths, in network namespaces
// it creates and removes itself with internal/testlab (root required;
// traffic stays inside them):
//
//  1. impaired path (user-space relay: 20 ms each way, 10% echo-request
//     loss; nftables dropping 10% of SYN-ACKs): our loss and RTT against
//     blackbox's probe_success and probe_duration_seconds;
//  2. idle veth path: our RTT against ping's;
//  3. CPU for N ICMP/TCP targets at 1/s, many addresses on one namespace,
//     for us and for blackbox driven at the same rate over loopback.
//
// Run it with bench/probe/run.sh.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/netsight/netsight/internal/testlab"
	"github.com/netsight/netsight/probe"
)

var (
	flagN        = flag.Int("n", 500, "probes per target on the impaired path")
	flagScale    = flag.String("scale", "5000,10000", "target counts for the CPU comparison")
	flagDur      = flag.Duration("duration", 20*time.Second, "measurement window of each CPU run")
	flagBlackbox = flag.String("blackbox", "/usr/bin/prometheus-blackbox-exporter", "blackbox_exporter binary")
	flagBBScale  = flag.Int("bb-scale", 5000, "targets for blackbox's CPU run (0: skip)")

	// Worker mode: the parent re-runs this binary inside the client
	// namespace (ip netns exec) so the prober uses plain socket(2), as in
	// production, and its CPU is measured alone.
	flagWorker = flag.Int("worker", 0, "internal: probe this many targets 10.78.x.y at 1/s and print stats")
	flagProto  = flag.String("worker-proto", "icmp", "internal: icmp or tcp")
)

func main() {
	flag.Parse()
	if *flagWorker > 0 {
		worker()
		return
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "probebench: needs root (network namespaces)")
		os.Exit(2)
	}
	b := &bench{}
	defer b.cleanup()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		b.cleanup()
		os.Exit(130)
	}()
	if err := b.run(); err != nil {
		b.cleanup()
		fmt.Fprintln(os.Stderr, "probebench:", err)
		os.Exit(1)
	}
}

type bench struct {
	namespaces []*testlab.NetNS
	paths      []*testlab.RelayedPath
	procs      []*exec.Cmd
	once       sync.Once
}

// ns creates a lab namespace that cleanup removes.
func (b *bench) ns() (*testlab.NetNS, error) {
	ns, err := testlab.CreateNetNS()
	if err != nil {
		return nil, err
	}
	b.namespaces = append(b.namespaces, ns)
	return ns, nil
}

// pair creates two lab namespaces joined by a veth pair.
func (b *bench) pair(opts ...testlab.VethOption) (c, s *testlab.NetNS, l *testlab.Link, err error) {
	if c, err = b.ns(); err != nil {
		return nil, nil, nil, err
	}
	if s, err = b.ns(); err != nil {
		return nil, nil, nil, err
	}
	l, err = testlab.Connect(c, s, opts...)
	return c, s, l, err
}

func (b *bench) cleanup() {
	b.once.Do(func() {
		for _, p := range b.procs {
			if p.Process != nil {
				_ = p.Process.Kill()
				_ = p.Wait()
			}
		}
		var errs []error
		for _, p := range b.paths {
			errs = append(errs, p.Close())
		}
		for _, n := range b.namespaces {
			errs = append(errs, n.Close())
		}
		if err := errors.Join(errs...); err != nil {
			fmt.Fprintln(os.Stderr, "probebench: cleanup:", err)
		}
	})
}

func (b *bench) run() error {
	fmt.Printf("probebench %s, %d CPUs, load %s\n", time.Now().UTC().Format(time.RFC3339), numCPU(), loadavg())
	if err := b.impaired(); err != nil {
		return fmt.Errorf("impaired path: %w", err)
	}
	if err := b.idle(); err != nil {
		return fmt.Errorf("idle path: %w", err)
	}
	if err := b.scale(); err != nil {
		return fmt.Errorf("scale: %w", err)
	}
	return nil
}

// ---- 1. impaired path ----

func (b *bench) impaired() error {
	// client <-> relay <-> server; the relay drops only echo requests, so
	// its DroppedLoss is the exact truth for ICMP loss.
	path, err := testlab.CreateRelayedPath(testlab.RelayConfig{
		ClientToServer: testlab.Impairment{Delay: 20 * time.Millisecond, LossPercent: 10},
		ServerToClient: testlab.Impairment{Delay: 20 * time.Millisecond},
		LossMatch:      testlab.IsICMPEchoRequest,
	})
	if err != nil {
		return err
	}
	b.paths = append(b.paths, path)
	c, s, relay := path.Client, path.Server, path.Relay
	srv := path.ServerEnd.Addr4().String()
	// TCP server, and 10% of its SYN-ACKs dropped as they arrive at the
	// client (the relay's AF_PACKET socket would see a frame dropped at the
	// middle namespace's ingress before nftables does).
	ln, err := s.ListenTCP(srv + ":8080")
	if err != nil {
		return err
	}
	defer ln.Close()
	go acceptAll(ln)
	rule, err := c.NewLossRule(testlab.Ingress, 10, testlab.OnDevice(path.ClientEnd.Name), testlab.SYNACK(), testlab.TCPSrcPort(8080))
	if err != nil {
		return err
	}
	defer rule.Remove()
	bb, err := b.startBlackbox(c)
	if err != nil {
		return err
	}
	n := *flagN
	// Warm up the sockets (neighbours are static).
	runEngine(c, []probe.Target{{Name: "w", Host: srv, Protocol: probe.ICMP, Interval: 10 * time.Millisecond, Timeout: time.Second}}, 3)

	fmt.Printf("\n== 1. impaired path: relay 20 ms each way, 10%% echo-request loss, 10%% SYN-ACK loss (nft); %d probes each ==\n", n)
	// Interleaved rounds, so both tools see the same machine load.
	const rounds = 5
	oursICMP, oursTCP := &probe.Summary{}, &probe.Summary{}
	bbICMP, bbTCP := &bbResult{}, &bbResult{}
	var relayDropped uint64
	for range rounds {
		d0 := relay.Stats().ClientToServer.DroppedLoss
		merge(oursICMP, runEngine(c, []probe.Target{{Name: "icmp", Host: srv, Protocol: probe.ICMP, Interval: 10 * time.Millisecond, Timeout: time.Second}}, n/rounds)[0])
		relayDropped += relay.Stats().ClientToServer.DroppedLoss - d0
		bbICMP.add(bb.probeMany("icmp", srv, n/rounds, 16))
		merge(oursTCP, runEngine(c, []probe.Target{{Name: "tcp", Host: srv, Port: 8080, Protocol: probe.TCP, Interval: 10 * time.Millisecond, Timeout: 2500 * time.Millisecond}}, n/rounds)[0])
		bbTCP.add(bb.probeMany("tcp", srv+":8080", n/rounds, 16))
	}
	n = n / rounds * rounds

	matched, dropped, err := rule.Counters()
	if err != nil {
		return err
	}
	fmt.Printf("truth: relay dropped %d of %d echo requests (%.1f%%); nftables dropped %d of %d SYN-ACKs (probability 10%%)\n",
		relayDropped, n, 100*float64(relayDropped)/float64(n), dropped, matched)
	fmt.Printf("%-34s %10s %10s %10s %10s %10s\n", "", "loss", "p50 ms", "p90 ms", "p99 ms", "max ms")
	row := func(name string, loss float64, rtts []time.Duration) {
		q := func(p float64) string {
			if len(rtts) == 0 {
				return "-"
			}
			v, _ := probe.Quantile(rtts, p)
			return fmt.Sprintf("%.3f", v.Seconds()*1e3)
		}
		fmt.Printf("%-34s %9.1f%% %10s %10s %10s %10s\n", name, 100*loss, q(0.5), q(0.9), q(0.99), q(1))
	}
	l, _ := oursICMP.Loss()
	row("netsight icmp (loss, RTT)", l, oursICMP.RTTs)
	row("blackbox icmp (1-success, dur)", bbICMP.loss(), bbICMP.duration)
	row("blackbox icmp (rtt phase)", bbICMP.loss(), bbICMP.rtt)
	l, _ = oursTCP.Loss()
	row("netsight tcp (SYN loss, RTT)", l, oursTCP.RTTs)
	row("blackbox tcp (1-success, dur)", bbTCP.loss(), bbTCP.duration)
	fmt.Printf("netsight tcp outcomes: ok %d timeout %d; packets sent %d received %d\n",
		oursTCP.Outcomes[probe.OK], oursTCP.Outcomes[probe.Timeout], oursTCP.Sent, oursTCP.Received)
	return nil
}

// ---- 2. idle path: RTT against ping ----

var pingLine = regexp.MustCompile(`time=([0-9.]+) ms`)

func (b *bench) idle() error {
	c, _, l, err := b.pair()
	if err != nil {
		return err
	}
	srv := l.B.Addr4().String()
	const n = 1000
	fmt.Printf("\n== 2. idle veth path: %d echoes at 10 ms, netsight vs ping (interleaved runs) ==\n", n)
	var ours, ping []time.Duration
	for round := 0; round < 4; round++ {
		sum := runEngine(c, []probe.Target{{Name: "idle", Host: srv, Protocol: probe.ICMP, Interval: 10 * time.Millisecond, Timeout: time.Second}}, n/4)[0]
		ours = append(ours, sum.RTTs...)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := c.Run(ctx, "ping", "-n", "-c", strconv.Itoa(n/4), "-i", "0.01", srv)
		cancel()
		if err != nil {
			return err
		}
		for _, m := range pingLine.FindAllStringSubmatch(out, -1) {
			v, _ := strconv.ParseFloat(m[1], 64)
			ping = append(ping, time.Duration(v*float64(time.Millisecond)))
		}
	}
	p50o, _ := probe.Quantile(ours, 0.5)
	p50p, _ := probe.Quantile(ping, 0.5)
	mo, mp := mean(ours), mean(ping)
	fmt.Printf("netsight: n=%d p50 %.4f ms mean %.4f ms\nping:     n=%d p50 %.4f ms mean %.4f ms\n",
		len(ours), p50o.Seconds()*1e3, mo*1e3, len(ping), p50p.Seconds()*1e3, mp*1e3)
	fmt.Printf("difference: p50 %+.4f ms, mean %+.4f ms (goal: |error| < 0.1 ms)\n", (p50o-p50p).Seconds()*1e3, (mo-mp)*1e3)
	return nil
}

func mean(d []time.Duration) float64 {
	if len(d) == 0 {
		return math.NaN()
	}
	var s float64
	for _, v := range d {
		s += v.Seconds()
	}
	return s / float64(len(d))
}

// ---- 3. scale: CPU per target count ----

func (b *bench) scale() error {
	var counts []int
	maxN := 0
	for _, f := range strings.Split(*flagScale, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || n > 60000 {
			return fmt.Errorf("bad -scale %q", *flagScale)
		}
		counts = append(counts, n)
		maxN = max(maxN, n)
	}
	maxN = max(maxN, *flagBBScale)
	// Target addresses (10.78.0.0/16) live on the server's loopback behind
	// one next hop, so the client needs one neighbour entry, not one per
	// target. The link's random subnet must not overlap them.
	sub := testlab.RandomSubnet()
	for sub.V4.Overlaps(scalePrefix) {
		sub = testlab.RandomSubnet()
	}
	c, s, l, err := b.pair(testlab.WithSubnet(sub))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Run(ctx, "ip", "route", "add", scalePrefix.String(), "via", l.B.Addr4().String()); err != nil {
		return err
	}
	addrs := make([]netip.Addr, maxN)
	var batch strings.Builder
	for i := range addrs {
		a := scaleAddr(i)
		addrs[i] = a
		fmt.Fprintf(&batch, "addr add %s/32 dev lo\n", a)
	}
	f, err := os.CreateTemp("", "probebench-addrs")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, _ = f.WriteString(batch.String())
	f.Close()
	if _, err := s.Run(ctx, "ip", "-batch", f.Name()); err != nil {
		return err
	}
	// The server's ICMP rate limit off (it would drop echo replies).
	for _, kv := range [][2]string{{"net.ipv4.icmp_ratelimit", "0"}, {"net.ipv4.icmp_msgs_per_sec", "1000000"}, {"net.ipv4.icmp_msgs_burst", "1000000"}} {
		_ = s.Sysctl(kv[0], kv[1])
	}
	// TCP_DEFER_ACCEPT: the server completes handshakes in the kernel and
	// never queues them for accept (our probes send no data and reset), so
	// the lab server is not the bottleneck of the measurement.
	var ln net.Listener
	err = s.Do(func() error {
		lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			_ = rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, 30)
			})
			return serr
		}}
		var err error
		ln, err = lc.Listen(context.Background(), "tcp", "0.0.0.0:8080")
		return err
	})
	if err != nil {
		return err
	}
	defer ln.Close()
	go acceptAll(ln)

	fmt.Printf("\n== 3. CPU at 1 probe/s per target, %s window, addresses on one namespace ==\n", *flagDur)
	fmt.Printf("%-28s %8s %10s %10s %10s %10s %8s\n", "", "targets", "probes/s", "cpu cores", "loss", "p50 ms", "skipped")
	for _, n := range counts {
		for _, proto := range []probe.Protocol{probe.ICMP, probe.TCP} {
			before := serverDrops(s)
			st, err := runWorker(c, n, proto, *flagDur)
			if err != nil {
				return err
			}
			fmt.Printf("%-28s %8d %10.0f %10.3f %9.2f%% %10.3f %8d", "netsight "+string(proto), n, st.rate, st.cores, 100*st.loss, st.p50*1e3, st.skipped)
			if proto == probe.TCP {
				fmt.Printf("   (server listen queue drops: %d)", serverDrops(s)-before)
			}
			fmt.Println()
		}
	}
	if *flagBBScale > 0 {
		bb, err := b.startBlackbox(c)
		if err != nil {
			return err
		}
		n := *flagBBScale
		for _, module := range []string{"icmp", "tcp"} {
			targets := make([]string, n)
			for i := range targets {
				targets[i] = addrs[i].String()
				if module == "tcp" {
					targets[i] += ":8080"
				}
			}
			st := bb.drive(module, targets, *flagDur)
			fmt.Printf("%-28s %8d %10.0f %10.3f %9.2f%% %10.3f %8s\n", "blackbox "+module, n, st.rate, st.cores, 100*st.loss, st.p50*1e3, "-")
		}
		fmt.Println("(blackbox cpu = its process only; the HTTP load generator playing Prometheus runs in this process and is not counted)")
	}
	return nil
}

type scaleStats struct {
	rate, cores, loss, p50 float64
	skipped                uint64
}

// scalePrefix holds the targets of the CPU runs.
var scalePrefix = netip.MustParsePrefix("10.78.0.0/16")

func scaleAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 78, byte(1 + i/250), byte(1 + i%250)})
}

// worker runs inside the client namespace: plain sockets, own CPU.
func worker() {
	ts := make([]probe.Target, *flagWorker)
	for i := range ts {
		a := scaleAddr(i).String()
		ts[i] = probe.Target{Name: a, Host: a, Protocol: probe.Protocol(*flagProto), Interval: time.Second, Timeout: 900 * time.Millisecond}
		if ts[i].Protocol == probe.TCP {
			ts[i].Port = 8080
		}
	}
	st := measureEngine(ts, *flagDur)
	fmt.Printf("%f %f %f %f %d\n", st.rate, st.cores, st.loss, st.p50, st.skipped)
}

func runWorker(ns *testlab.NetNS, n int, proto probe.Protocol, window time.Duration) (scaleStats, error) {
	self, err := os.Executable()
	if err != nil {
		return scaleStats{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), window+2*time.Minute)
	defer cancel()
	out, err := ns.Run(ctx, self, "-worker", strconv.Itoa(n), "-worker-proto", string(proto), "-duration", window.String())
	if err != nil {
		return scaleStats{}, err
	}
	var st scaleStats
	if _, err := fmt.Sscan(strings.TrimSpace(out), &st.rate, &st.cores, &st.loss, &st.p50, &st.skipped); err != nil {
		return st, fmt.Errorf("worker output %q: %w", out, err)
	}
	return st, nil
}

// measureEngine probes ts with plain socket(2) in the caller's namespace.
func measureEngine(ts []probe.Target, window time.Duration) scaleStats {
	var mu sync.Mutex
	var sent, recv int64
	var rtts []time.Duration
	measuring := atomic.Bool{}
	e, err := probe.New(ts, probe.Options{OnResult: func(r probe.Result) {
		if !measuring.Load() {
			return
		}
		mu.Lock()
		sent += int64(r.Sent)
		recv += int64(r.Received)
		if r.HasRTT && len(rtts) < 1_000_000 {
			rtts = append(rtts, r.RTT)
		}
		mu.Unlock()
	}})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = e.Run(ctx); close(done) }()
	time.Sleep(3 * time.Second) // spread start, ARP, sockets
	sk0 := e.Skipped()
	measuring.Store(true)
	cpu0, t0 := selfCPU(), time.Now()
	time.Sleep(window)
	cpu1, t1 := selfCPU(), time.Now()
	measuring.Store(false)
	sk1 := e.Skipped()
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	st := scaleStats{rate: float64(sent) / t1.Sub(t0).Seconds(), cores: (cpu1 - cpu0) / t1.Sub(t0).Seconds(), skipped: sk1 - sk0}
	if sent > 0 {
		st.loss = 1 - float64(recv)/float64(sent)
	}
	if p, ok := probe.Quantile(rtts, 0.5); ok {
		st.p50 = p.Seconds()
	}
	return st
}

func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func runEngine(ns *testlab.NetNS, ts []probe.Target, count int) []*probe.Summary {
	sums := make([]*probe.Summary, len(ts))
	for i := range sums {
		sums[i] = &probe.Summary{}
	}
	var mu sync.Mutex
	e, err := probe.New(ts, probe.Options{Socket: ns.Socket, Count: count, NoSpread: true, OnResult: func(r probe.Result) {
		mu.Lock()
		sums[r.Target].Add(r)
		mu.Unlock()
	}})
	if err != nil {
		panic(err)
	}
	_ = e.Run(context.Background())
	return sums
}

// ---- blackbox_exporter ----

type blackbox struct {
	ns     *testlab.NetNS
	cmd    *exec.Cmd
	client *http.Client
	addr   string
}

const blackboxConfig = `modules:
  icmp:
    prober: icmp
    timeout: 1s
    icmp:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
  tcp:
    prober: tcp
    timeout: 2500ms
    tcp:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
`

func (b *bench) startBlackbox(ns *testlab.NetNS) (*blackbox, error) {
	dir, err := os.MkdirTemp("", "probebench-bb")
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "blackbox.yml")
	if err := os.WriteFile(cfg, []byte(blackboxConfig), 0o644); err != nil {
		return nil, err
	}
	// Loopback of the client namespace only.
	addr := "127.0.0.1:19115"
	cmd := ns.Command(context.Background(), *flagBlackbox, "--config.file="+cfg, "--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start blackbox: %w", err)
	}
	b.procs = append(b.procs, cmd)
	bb := &blackbox{ns: ns, cmd: cmd, addr: addr}
	tr := &http.Transport{MaxIdleConnsPerHost: 2048, MaxConnsPerHost: 2048, DialContext: ns.Dial}
	bb.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i := 0; i < 100; i++ {
		if resp, err := bb.client.Get("http://" + addr + "/-/healthy"); err == nil {
			resp.Body.Close()
			return bb, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("blackbox did not come up on %s in netns %s", addr, ns)
}

type bbResult struct {
	success  []bool
	duration []time.Duration
	rtt      []time.Duration
}

func (r *bbResult) add(o *bbResult) {
	r.success = append(r.success, o.success...)
	r.duration = append(r.duration, o.duration...)
	r.rtt = append(r.rtt, o.rtt...)
}

func merge(dst, src *probe.Summary) {
	dst.Sent += src.Sent
	dst.Received += src.Received
	for i := range dst.Outcomes {
		dst.Outcomes[i] += src.Outcomes[i]
	}
	dst.RTTs = append(dst.RTTs, src.RTTs...)
}

func (r *bbResult) loss() float64 {
	if len(r.success) == 0 {
		return math.NaN()
	}
	bad := 0
	for _, s := range r.success {
		if !s {
			bad++
		}
	}
	return float64(bad) / float64(len(r.success))
}

var bbMetric = regexp.MustCompile(`^(probe_success|probe_duration_seconds|probe_icmp_duration_seconds\{phase="rtt"\}) ([0-9.e+-]+)$`)

func (bb *blackbox) probe(module, target string) (ok bool, dur, rtt time.Duration, err error) {
	resp, err := bb.client.Get("http://" + bb.addr + "/probe?module=" + module + "&target=" + target)
	if err != nil {
		return false, 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		m := bbMetric.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		switch {
		case m[1] == "probe_success":
			ok = v == 1
		case m[1] == "probe_duration_seconds":
			dur = time.Duration(v * 1e9)
		default:
			rtt = time.Duration(v * 1e9)
		}
	}
	return ok, dur, rtt, sc.Err()
}

// probeMany runs n probes with conc workers.
func (bb *blackbox) probeMany(module, target string, n, conc int) *bbResult {
	res := &bbResult{}
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				ok, dur, rtt, err := bb.probe(module, target)
				if err != nil {
					continue
				}
				mu.Lock()
				res.success = append(res.success, ok)
				if ok {
					res.duration = append(res.duration, dur)
					if rtt > 0 {
						res.rtt = append(res.rtt, rtt)
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return res
}

// drive scrapes /probe for every target once per second (as Prometheus
// would with a 1 s scrape interval) for window, and measures blackbox's
// CPU from /proc.
func (bb *blackbox) drive(module string, targets []string, window time.Duration) scaleStats {
	pids := childPids(bb.cmd.Process.Pid)
	var ok, total atomic.Int64
	var mu sync.Mutex
	var durs []time.Duration
	ctx, cancel := context.WithCancel(context.Background())
	sem := make(chan struct{}, 1024)
	var wg sync.WaitGroup
	var measuring atomic.Bool
	go func() {
		tk := time.NewTicker(time.Second / 50)
		defer tk.Stop()
		per := max(1, len(targets)/50)
		i := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			for k := 0; k < per; k++ {
				t := targets[i%len(targets)]
				i++
				select {
				case sem <- struct{}{}:
				default:
					continue // blackbox saturated: this scrape is skipped
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					s, d, _, err := bb.probe(module, t)
					if err != nil || !measuring.Load() {
						return
					}
					total.Add(1)
					if s {
						ok.Add(1)
						mu.Lock()
						durs = append(durs, d)
						mu.Unlock()
					}
				}()
			}
		}
	}()
	time.Sleep(3 * time.Second)
	measuring.Store(true)
	c0, t0 := procCPU(pids), time.Now()
	time.Sleep(window)
	c1, t1 := procCPU(pids), time.Now()
	measuring.Store(false)
	cancel()
	wg.Wait()
	st := scaleStats{rate: float64(total.Load()) / t1.Sub(t0).Seconds(), cores: (c1 - c0) / t1.Sub(t0).Seconds()}
	if total.Load() > 0 {
		st.loss = 1 - float64(ok.Load())/float64(total.Load())
	}
	if p, okq := probe.Quantile(durs, 0.5); okq {
		st.p50 = p.Seconds()
	}
	return st
}

// childPids returns pid and its descendants (ip netns exec execs, so
// usually just pid).
func childPids(pid int) []int {
	out := []int{pid}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err == nil {
		for _, f := range strings.Fields(string(b)) {
			if p, err := strconv.Atoi(f); err == nil {
				out = append(out, childPids(p)...)
			}
		}
	}
	return out
}

// procCPU sums utime+stime of pids in seconds.
func procCPU(pids []int) float64 {
	var total float64
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		total += (ut + st) / 100 // USER_HZ
	}
	return total
}

// serverDrops reads TcpExtListenDrops in the server namespace: SYNs the
// server itself dropped (accept queue full), which our TCP loss counts.
func serverDrops(ns *testlab.NetNS) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := ns.Run(ctx, "nstat", "-az", "TcpExtListenDrops")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "TcpExtListenDrops" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
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

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
