package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netsight/netsight/internal/e2e"
	"github.com/netsight/netsight/internal/testlab"
)

// The lab (TestLabVerdicts): a monitored client namespace, a router with
// nftables, a second router for zone-b behind the delay relay, two servers
// in zone-a and two in zone-b:
//
//	a1, a2 ── R ── C (client, agent)
//	          │
//	       M (relay) ── RB ── b1, b2
//
// The client's traffic runs in a cgroup the eBPF flow back end is attached
// to (collectors.flows.cgroup_path), so the agent judges the client's
// connections only, as on a real host, not the servers' ends of them.

// helperEnv selects a helper mode of the test binary (the client's traffic
// generators run as processes inside the client cgroup).
const helperEnv = "NETSIGHT_HEALTH_LAB_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode, os.Getenv(helperEnv+"_ARGS")))
	}
	os.Exit(m.Run())
}

type helperArgs struct {
	Targets []string      `json:"targets"`
	Every   time.Duration `json:"every"`
	For     time.Duration `json:"for"`
	Rate    int           `json:"rate"` // bytes per second (slowread)
}

// helperMain runs one generator until its time is up; every one is bounded
// in time (For) and in count (one connection per target per Every).
func helperMain(mode, raw string) int {
	var a helperArgs
	if err := json.Unmarshal([]byte(raw), &a); err != nil || a.For <= 0 || a.For > 30*time.Minute {
		fmt.Fprintln(os.Stderr, "helper: bad args", raw, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.For)
	defer cancel()
	var wg sync.WaitGroup
	for _, t := range a.Targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch mode {
			case "conns": // short connections: connect, 64 bytes echoed, close
				tick := time.NewTicker(a.Every)
				defer tick.Stop()
				for {
					d := net.Dialer{Timeout: 3 * time.Second}
					if c, err := d.DialContext(ctx, "tcp", t); err == nil {
						_ = c.SetDeadline(time.Now().Add(3 * time.Second))
						buf := make([]byte, 64)
						if _, err := c.Write(buf); err == nil {
							_, _ = io.ReadFull(c, buf)
						}
						c.Close()
					}
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
				}
			case "send": // write as fast as the peer takes it
				c, err := (&net.Dialer{}).DialContext(ctx, "tcp", t)
				if err != nil {
					return
				}
				defer c.Close()
				dl, _ := ctx.Deadline()
				_ = c.SetWriteDeadline(dl)
				buf := make([]byte, 64<<10)
				for ctx.Err() == nil {
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			case "slowread": // read Rate bytes per second
				c, err := (&net.Dialer{}).DialContext(ctx, "tcp", t)
				if err != nil {
					return
				}
				defer c.Close()
				dl, _ := ctx.Deadline()
				_ = c.SetReadDeadline(dl)
				chunk := max(a.Rate/10, 1)
				buf := make([]byte, chunk)
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
				}
			}
		}()
	}
	wg.Wait()
	return 0
}

type labNet struct {
	t                  *testing.T
	c, r, m, rb        *testlab.NetNS
	servers            map[string]*testlab.NetNS
	addrs              map[string]netip.Addr
	cIf                string // R's interface toward the client
	relay              *testlab.Relay
	clientCG           *v2Cgroup
	agent              *e2e.Agent
	echo               map[string]*testlab.Server
	stall, stream      net.Listener
	heldMu             sync.Mutex
	held               []net.Conn // accepted on stallPort, never read
	zoneA, zoneB, cNet []netip.Prefix
}

const (
	echoPort   = 7000
	stallPort  = 7001
	streamPort = 7002
	iperfPort  = 5201
)

func ip(t *testing.T, ns *testlab.NetNS, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := ns.Run(ctx, "ip", args...); err != nil {
		t.Fatalf("ip %v in %s: %v: %s", args, ns, err, out)
	}
}

// newLab builds the namespaces, routes, relay and servers.
func newLab(t *testing.T) *labNet {
	l := &labNet{t: t, servers: map[string]*testlab.NetNS{}, addrs: map[string]netip.Addr{}, echo: map[string]*testlab.Server{}}
	l.c, l.r, l.m, l.rb = testlab.NewNetNS(t), testlab.NewNetNS(t), testlab.NewNetNS(t), testlab.NewNetNS(t)
	cl := testlab.ConnectVeth(t, l.c, l.r)
	l.cIf = cl.B.Name
	l.addrs["client"] = cl.A.Addr4()
	l.cNet = []netip.Prefix{cl.Subnet.V4.Masked()}
	ip(t, l.c, "route", "add", "default", "via", cl.B.Addr4().String())
	// R -- M (relay) -- RB share one subnet across the relay.
	rm := testlab.ConnectVeth(t, l.r, l.m, testlab.WithoutAddresses())
	mb := testlab.ConnectVeth(t, l.m, l.rb, testlab.WithoutAddresses())
	sub := testlab.RandomSubnet()
	rAddr, _ := sub.Host4(1)
	rbAddr, _ := sub.Host4(2)
	ip(t, l.r, "addr", "add", rAddr.String(), "dev", rm.A.Name)
	ip(t, l.rb, "addr", "add", rbAddr.String(), "dev", mb.B.Name)
	ip(t, l.rb, "route", "add", "default", "via", rAddr.Addr().String())
	l.relay = testlab.StartRelay(t, l.m, rm.B.Name, mb.A.Name, testlab.RelayConfig{})
	for _, ns := range []*testlab.NetNS{l.r, l.rb} {
		if err := ns.Sysctl("net.ipv4.ip_forward", "1"); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"a1", "a2", "b1", "b2"} {
		s := testlab.NewNetNS(t)
		router, gw := l.r, netip.Addr{}
		if name[0] == 'b' {
			router = l.rb
		}
		lk := testlab.ConnectVeth(t, router, s)
		gw = lk.A.Addr4()
		ip(t, s, "route", "add", "default", "via", gw.String())
		if name[0] == 'b' {
			ip(t, l.r, "route", "add", lk.Subnet.V4.Masked().String(), "via", rbAddr.Addr().String())
			l.zoneB = append(l.zoneB, lk.Subnet.V4.Masked())
		} else {
			l.zoneA = append(l.zoneA, lk.Subnet.V4.Masked())
		}
		l.servers[name], l.addrs[name] = s, lk.B.Addr4()
		l.echo[name] = s.StartEchoServer(t, netip.AddrPortFrom(lk.B.Addr4(), echoPort).String())
	}
	// a1 accepts and never reads (scenario 7); b1 streams (scenario 8).
	var err error
	l.stall, err = l.servers["a1"].ListenTCP(netip.AddrPortFrom(l.addrs["a1"], stallPort).String())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.stall.Accept()
			if err != nil {
				return
			}
			l.heldMu.Lock()
			l.held = append(l.held, c) // never read
			l.heldMu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.stall.Close()
		l.closeHeld()
	})
	l.stream, err = l.servers["b1"].ListenTCP(netip.AddrPortFrom(l.addrs["b1"], streamPort).String())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.stream.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetWriteDeadline(time.Now().Add(2 * time.Minute))
				buf := make([]byte, 64<<10)
				for {
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { l.stream.Close() })
	// Conntrack active in the client namespace (scenario 10).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := l.c.Run(ctx, "nft", "add table inet healthlab; add chain inet healthlab out { type filter hook output priority 0; }; add rule inet healthlab out ct state new counter"); err != nil {
		t.Fatalf("nft conntrack rule: %v: %s", err, out)
	}
	return l
}

// closeHeld closes the stalled server's connections (its sender's socket
// would otherwise linger, probing the zero window, after the sender exits).
func (l *labNet) closeHeld() {
	l.heldMu.Lock()
	defer l.heldMu.Unlock()
	for _, c := range l.held {
		c.Close()
	}
	l.held = nil
}

// start runs the helper in the client cgroup and namespace.
func (l *labNet) helper(ctx context.Context, mode string, a helperArgs) *exec.Cmd {
	l.t.Helper()
	raw, _ := json.Marshal(a)
	cmd := l.c.Command(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperEnv+"_ARGS="+string(raw))
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := l.clientCG.start(cmd); err != nil {
		l.t.Fatalf("helper %s: %v", mode, err)
	}
	go func() { _ = cmd.Wait() }()
	return cmd
}

func (l *labNet) addr(name string, port int) string {
	return netip.AddrPortFrom(l.addrs[name], uint16(port)).String()
}

// traffic starts the steady load for total: an iperf3 upload (10 Mbit/s)
// and a short connection every 250 ms to each server.
func (l *labNet) traffic(ctx context.Context, total time.Duration) {
	t := l.t
	secs := strconv.Itoa(int(total.Seconds()))
	for _, name := range []string{"a1", "a2", "b1", "b2"} {
		srv := l.servers[name].Command(ctx, "iperf3", "-s", "-p", strconv.Itoa(iperfPort), "--idle-timeout", secs)
		srv.Stdout, srv.Stderr = io.Discard, io.Discard
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = srv.Wait() }()
		l.servers[name].WaitListening(t, iperfPort)
		cli := l.c.Command(ctx, "iperf3", "-c", l.addrs[name].String(), "-p", strconv.Itoa(iperfPort),
			"-t", secs, "-b", "10M", "--connect-timeout", "5000")
		cli.Stdout, cli.Stderr = io.Discard, io.Discard
		if err := l.clientCG.start(cli); err != nil {
			t.Fatal(err)
		}
		go func() { _ = cli.Wait() }()
	}
	var targets []string
	for _, name := range []string{"a1", "a2", "b1", "b2"} {
		targets = append(targets, l.addr(name, echoPort))
	}
	l.helper(ctx, "conns", helperArgs{Targets: targets, Every: 250 * time.Millisecond, For: total})
}

func (l *labNet) config() string {
	cidrs := func(ps []netip.Prefix) string {
		var s []string
		for _, p := range ps {
			s = append(s, `"`+p.String()+`"`)
		}
		return "[" + strings.Join(s, ", ") + "]"
	}
	return fmt.Sprintf(`log:
  level: info
store:
  enabled: false
collectors:
  flows: {backend: ebpf, interval: 1s, cgroup_path: %q}
  conntrack: {interval: 1s}
  nic: {enabled: false}
  probe: {enabled: false}
topology:
  imds: "off"
  networks:
    - {name: client, cidrs: %s, zone: zone-a}
    - {name: zone-a, cidrs: %s, zone: zone-a}
    - {name: zone-b, cidrs: %s, zone: zone-b}
monitors:
  evaluate_every: 1s
  window: 10s
  items:
    - {name: to-a, remote: {networks: [zone-a]}}
    - {name: to-b, remote: {networks: [zone-b]}}
`, l.clientCG.path, cidrs(l.cNet), cidrs(l.zoneA), cidrs(l.zoneB))
}

func (l *labNet) report(ctx context.Context) (Report, error) {
	var rep Report
	b, err := l.agent.Get(ctx, "/api/v1/health")
	if err != nil {
		return rep, err
	}
	return rep, json.Unmarshal(b, &rep)
}

// expect is a scenario's wanted verdict per monitor ("" for any) with
// culprit and scope substrings.
type expect map[string]struct {
	verdict        Verdict
	culprit, scope string
}

// waitFor polls the report until every monitor matches want or timeout; it
// returns the report and how long it took.
func (l *labNet) waitFor(ctx context.Context, want expect, timeout time.Duration) (Report, time.Duration, bool) {
	start := time.Now()
	var rep Report
	for time.Since(start) < timeout {
		r, err := l.report(ctx)
		if err == nil {
			rep = r
			ok := true
			for name, w := range want {
				m, found := r.Monitor(name)
				if !found || (w.verdict != "" && m.Verdict != w.verdict) || !strings.Contains(m.Culprit, w.culprit) || !strings.Contains(m.Scope, w.scope) {
					ok = false
				}
			}
			if ok {
				return rep, time.Since(start), true
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	return rep, time.Since(start), false
}

func healthyAll() expect {
	e := expect{}
	for _, n := range []string{"all", "to-a", "to-b"} {
		e[n] = struct {
			verdict        Verdict
			culprit, scope string
		}{verdict: Healthy}
	}
	return e
}

func expectOf(pairs ...any) expect {
	e := healthyAll()
	for i := 0; i+3 < len(pairs); i += 4 {
		e[pairs[i].(string)] = struct {
			verdict        Verdict
			culprit, scope string
		}{pairs[i+1].(Verdict), pairs[i+2].(string), pairs[i+3].(string)}
	}
	return e
}

func dump(rep Report) string {
	var b strings.Builder
	for _, m := range rep.Monitors {
		ev, _ := json.Marshal(m.Evidence)
		fmt.Fprintf(&b, "\n  %s: %s (%s) culprit %q scope %q: %s\n    evidence %s", m.Name, m.Verdict, m.Confidence, m.Culprit, m.Scope, m.Summary, ev)
		for _, f := range m.Findings {
			fmt.Fprintf(&b, "\n    finding %s: %s", f.Verdict, f.Summary)
		}
	}
	return b.String()
}

// baselineDuration is scenario 1's healthy run: 3 minutes as the issue
// asks; NETSIGHT_HEALTH_LAB_BASELINE shortens it for local iteration only.
func baselineDuration() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("NETSIGHT_HEALTH_LAB_BASELINE")); err == nil && !testlab.InCI() {
		return d
	}
	return 3 * time.Minute
}

// TestLabVerdicts runs the agent once against the lab and injects the
// issue's scenarios one after the other: each verdict within 30 s of the
// injection, back to healthy within 60 s of its removal.
func TestLabVerdicts(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test: skipped with -short")
	}
	testlab.RequireRoot(t)
	testlab.RequireBinary(t, "iperf3")
	testlab.RequireBinary(t, "nft")
	testlab.RequireBinary(t, "nsenter")
	l := newLab(t)
	l.clientCG = newV2Cgroup(t)
	agentCG := testlab.NewCgroup(t, 512<<20)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 14*time.Minute)
	defer cancel()
	bin, err := e2e.Build(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	l.agent, err = e2e.Start(ctx, e2e.Options{Binary: bin, NS: l.c, HostMounts: true, Cgroup: agentCG,
		Config: l.config(), DataDir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent logs:\n%s", l.agent.Logs())
		}
		_ = l.agent.Stop()
	})
	base := baselineDuration()
	total := base + 9*time.Minute
	l.traffic(ctx, total)

	t.Run("1 healthy baseline", func(t *testing.T) {
		// The windows fill and the baselines learn; then no transition at
		// all for the rest of the run.
		rep, took, ok := l.waitFor(ctx, healthyAll(), 40*time.Second)
		if !ok {
			t.Fatalf("not healthy after %v:%s", took, dump(rep))
		}
		trans := map[string]int{}
		for _, m := range rep.Monitors {
			trans[m.Name] = len(m.Transitions)
		}
		start := time.Now()
		var degraded int
		var evals int
		var last Report
		for time.Since(start) < base {
			time.Sleep(time.Second)
			r, err := l.report(ctx)
			if err != nil {
				continue
			}
			evals++
			last = r
			for _, m := range r.Monitors {
				if m.Verdict != Healthy {
					degraded++
					t.Errorf("%s: %s during the healthy run:%s", m.Name, m.Verdict, dump(r))
				}
			}
		}
		// No transition at all, not even one shorter than a poll.
		for _, m := range last.Monitors {
			if n := len(m.Transitions); n != trans[m.Name] {
				t.Errorf("%s: %d transitions during the healthy run: %+v", m.Name, n-trans[m.Name], m.Transitions)
			}
		}
		t.Logf("healthy run: %v, %d reports x 3 monitors, %d not healthy (false alarms), no transition", base, evals, degraded)
	})

	type scenario struct {
		name     string
		inject   func(t *testing.T) (remove func())
		want     expect
		diagnose bool // also check `netsight diagnose --agent --json`
	}
	scenarios := []scenario{
		{"2 router drops 3% of all TCP", func(t *testing.T) func() {
			r := l.r.AddLoss(t, testlab.Ingress, 3, testlab.Proto("tcp"))
			return func() { _ = r.Remove() }
		}, expectOf("all", PathDegraded, "", "all", "to-a", PathDegraded, "", "", "to-b", PathDegraded, "", ""), true},
		{"3 router drops 5% toward one server", func(t *testing.T) func() {
			r := l.r.AddLoss(t, testlab.Ingress, 5, testlab.OnDevice(l.cIf), testlab.Proto("tcp"), testlab.Expr("ip daddr "+l.addrs["b1"].String()))
			return func() { _ = r.Remove() }
		}, expectOf("all", RemoteDegraded, l.addrs["b1"].String(), "", "to-b", RemoteDegraded, l.addrs["b1"].String(), ""), false},
		{"4 relay adds 20 ms toward zone-b", func(t *testing.T) func() {
			if err := l.relay.SetImpairment(testlab.ClientToServer, testlab.Impairment{Delay: 20 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			return func() { _ = l.relay.SetImpairment(testlab.ClientToServer, testlab.Impairment{}) }
		}, expectOf("all", PathDegraded, "", "zone:zone-b", "to-b", PathDegraded, "", "zone:zone-b"), false},
		{"5 SYNs to one server dropped", func(t *testing.T) func() {
			r := l.r.AddLoss(t, testlab.Ingress, 100, testlab.OnDevice(l.cIf), testlab.TCPFlags("syn|ack", "syn"), testlab.Expr("ip daddr "+l.addrs["a2"].String()))
			return func() { _ = r.Remove() }
		}, expectOf("all", RemoteDegraded, l.addrs["a2"].String(), "", "to-a", RemoteDegraded, l.addrs["a2"].String(), ""), false},
		{"6 no listener on one server", func(t *testing.T) func() {
			_ = l.echo["b2"].Close()
			return func() { l.echo["b2"] = l.servers["b2"].StartEchoServer(l.t, l.addr("b2", echoPort)) } // the lab's t: it outlives this scenario
		}, expectOf("all", RemoteApplication, l.addrs["b2"].String(), "", "to-b", RemoteApplication, l.addrs["b2"].String(), ""), true},
		{"7 server accepts and never reads", func(t *testing.T) func() {
			cctx, stop := context.WithCancel(ctx)
			l.helper(cctx, "send", helperArgs{Targets: []string{l.addr("a1", stallPort)}, For: 90 * time.Second})
			return func() { stop(); l.closeHeld() }
		}, expectOf("all", RemoteApplication, l.addrs["a1"].String(), "", "to-a", RemoteApplication, l.addrs["a1"].String(), ""), false},
		{"8 client reads 10 KB/s from a streaming server", func(t *testing.T) func() {
			cctx, stop := context.WithCancel(ctx)
			l.helper(cctx, "slowread", helperArgs{Targets: []string{l.addr("b1", streamPort)}, For: 90 * time.Second, Rate: 10 << 10})
			return stop
		}, expectOf("all", LocalApplication, l.addrs["b1"].String(), "", "to-b", LocalApplication, l.addrs["b1"].String(), ""), false},
		{"9 client firewall drops 3% of its outbound TCP", func(t *testing.T) func() {
			r := l.c.AddLoss(t, testlab.Egress, 3, testlab.Proto("tcp"))
			return func() {
				matched, dropped, err := r.Counters()
				t.Logf("client nft egress rule: %d matched, %d dropped (%v)", matched, dropped, err)
				_ = r.Remove()
			}
		}, expectOf("all", HostStack, "NETFILTER_DROP", "", "to-a", Verdict(""), "", "", "to-b", Verdict(""), "", ""), false},
		{"10 nf_conntrack_max lowered to the current count", func(t *testing.T) func() {
			restore := lowerConntrackMax(t, l.c)
			return restore
		}, expectOf("all", HostConntrack, "conntrack", "", "to-a", Verdict(""), "", "", "to-b", Verdict(""), "", ""), true},
		{"11 local listener with backlog 1 and no accept", func(t *testing.T) func() {
			return l.overflowListener(t, ctx)
		}, expectOf("all", LocalApplication, "listener "+l.addrs["client"].String(), ""), false},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			if rep, took, ok := l.waitFor(ctx, healthyAll(), 60*time.Second); !ok {
				t.Fatalf("not healthy before the injection (%v):%s", took, dump(rep))
			}
			remove := sc.inject(t)
			rep, took, ok := l.waitFor(ctx, sc.want, 30*time.Second)
			removed := false
			defer func() {
				if !removed {
					remove()
				}
			}()
			if !ok {
				t.Errorf("no verdict %v within 30 s:%s", sc.want, dump(rep))
			} else {
				t.Logf("verdict after %v:%s", took.Round(100*time.Millisecond), dump(rep))
				if sc.diagnose {
					l.checkDiagnose(t, ctx, bin, sc.want)
				}
			}
			remove()
			removed = true
			rep, took, ok = l.waitFor(ctx, healthyAll(), 60*time.Second)
			if !ok {
				t.Errorf("not healthy within 60 s of the removal:%s", dump(rep))
			} else {
				t.Logf("healthy %v after the removal", took.Round(100*time.Millisecond))
			}
		})
	}
}

// checkDiagnose runs `netsight diagnose --agent URL --json` in the client
// namespace: exit code 1 (degraded) and the monitors' verdicts the API
// gives.
func (l *labNet) checkDiagnose(t *testing.T, ctx context.Context, bin string, want expect) {
	t.Helper()
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := l.c.Command(dctx, bin, "diagnose", "--agent", "http://"+l.agent.Addr(), "--json")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("netsight diagnose: %v, want exit code 1 (degraded)", err)
	}
	var rep Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("netsight diagnose --json: %v: %s", err, out)
	}
	api, err := l.report(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range want {
		d, _ := rep.Monitor(name)
		a, _ := api.Monitor(name)
		if (w.verdict != "" && d.Verdict != w.verdict) || a.Verdict != d.Verdict {
			t.Errorf("%s: diagnose says %s, the API %s, want %s", name, d.Verdict, a.Verdict, w.verdict)
		}
	}
	t.Logf("netsight diagnose --json: %s (exit 1), as the API", rep.Verdict)
}

// lowerConntrackMax sets nf_conntrack_max (global, set from the initial
// namespace) to the client namespace's current entry count and returns
// the restore.
func lowerConntrackMax(t *testing.T, c *testlab.NetNS) func() {
	const maxPath = "/proc/sys/net/netfilter/nf_conntrack_max"
	orig, err := os.ReadFile(maxPath)
	if err != nil {
		t.Fatal(err)
	}
	var count string
	if err := c.Do(func() error {
		// Read from a thread inside the namespace: /proc/sys/net is the
		// reader's namespace's.
		b, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_count")
		count = strings.TrimSpace(string(b))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.Atoi(count); n < 4 {
		count = "4"
	}
	restore := func() { _ = os.WriteFile(maxPath, orig, 0o644) }
	t.Cleanup(restore)
	if err := os.WriteFile(maxPath, []byte(count), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("nf_conntrack_max %s -> %s", strings.TrimSpace(string(orig)), count)
	return restore
}

// overflowListener listens in the client namespace with backlog 1, never
// accepts, and makes 200 connects to it (3 s timeout each, 20 at a time).
func (l *labNet) overflowListener(t *testing.T, ctx context.Context) func() {
	var fd int
	if err := l.c.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Port: 7100, Addr: l.addrs["client"].As4()}); err != nil {
			return err
		}
		return unix.Listen(fd, 1)
	}); err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sem := make(chan struct{}, 20)
		var wg sync.WaitGroup
		for range 200 {
			select {
			case sem <- struct{}{}:
			case <-cctx.Done():
				wg.Wait()
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				dctx, cancel := context.WithTimeout(cctx, 3*time.Second)
				defer cancel()
				if c, err := l.c.Dial(dctx, "tcp", l.addr("client", 7100)); err == nil {
					<-dctx.Done()
					c.Close()
				}
			}()
		}
		wg.Wait()
	}()
	return func() {
		stop()
		<-done
		unix.Close(fd)
	}
}

// v2Cgroup is a cgroup v2 directory for the client's processes: the eBPF
// flow back end attaches its sock_ops program there (on hybrid hosts the
// memory-limited testlab.Cgroup is a v1 one, which sock_ops cannot use).
type v2Cgroup struct{ path string }

func newV2Cgroup(t *testing.T) *v2Cgroup {
	t.Helper()
	root := ""
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if pre, post, ok := strings.Cut(line, " - "); ok && strings.HasPrefix(post, "cgroup2 ") {
			if f := strings.Fields(pre); len(f) >= 5 {
				root = f[4]
				break
			}
		}
	}
	testlab.Require(t, root != "", "a cgroup v2 hierarchy (for the eBPF flow back end's sock_ops)")
	c := &v2Cgroup{path: filepath.Join(root, fmt.Sprintf("%shealthlab-%d-%d", testlab.CgroupPrefix, os.Getpid(), time.Now().UnixNano()))}
	if err := os.Mkdir(c.path, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 50; i++ {
			b, _ := os.ReadFile(filepath.Join(c.path, "cgroup.procs"))
			pids := strings.Fields(string(b))
			for _, p := range pids {
				if pid, err := strconv.Atoi(p); err == nil {
					_ = unix.Kill(pid, unix.SIGKILL)
				}
			}
			if err := os.Remove(c.path); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("could not remove cgroup %s", c.path)
	})
	return c
}

// start runs cmd inside the cgroup from its first instruction (through sh,
// which moves itself in and execs the command).
func (c *v2Cgroup) start(cmd *exec.Cmd) error {
	sh, err := exec.LookPath("sh")
	if err != nil {
		return err
	}
	cmd.Args = append([]string{"sh", "-c", `echo $$ > "$0" && exec "$@"`, filepath.Join(c.path, "cgroup.procs"), cmd.Path}, cmd.Args[1:]...)
	cmd.Path = sh
	return cmd.Start()
}
