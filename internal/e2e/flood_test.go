package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/netsight/netsight/internal/testlab"
)

// Memory limits of the flood tests. cgroupMax is the shipped systemd unit's
// MemoryMax: a runaway agent is OOM-killed inside the test's cgroup (and the
// test fails) instead of hurting the machine. The RSS bounds are about twice
// the peaks measured on the 2-core lab VM, so a leak or an unbounded table
// fails them while ordinary variation does not.
const (
	cgroupMax       = 512 * mib
	synFloodRSSMax  = 160 * mib
	shortConnRSSMax = 160 * mib
	// Each captured interface maps a ring_size_mb (4 MiB) AF_PACKET ring,
	// counted in RSS (but not charged to the memory cgroup): 20 at once
	// add 80 MiB to the agent's ~50 MiB.
	churnRSSMax = 200 * mib
)

// TestSYNFloodCaptureBounded floods a captured namespace with SYNs from
// 60,000 distinct random source ports (every one a new flow for the capture
// flow table, default capacity 16,384) and checks that the table stays at
// its capacity, the evictions are counted in /metrics, every SYN is
// accounted for, and the agent's RSS stays bounded.
func TestSYNFloodCaptureBounded(t *testing.T) {
	pair := testlab.NewPair(t)
	const maxFlows = 16384
	a := startLabAgent(t, pair.B, cgroupMax, baseConfig(fmt.Sprintf(`collectors:
  capture:
    enabled: true
    interval: 1s
    interfaces: [%q]
    max_flows: %d
`, pair.Link.B.Name, maxFlows)))
	dev := pair.Link.B.Name
	a.waitMetric(t, 30*time.Second, "capture on "+dev, func(m Metrics) bool {
		return m.Series("netsight_capture_flows", "device", dev) == 1
	})
	srv := pair.B.StartSinkServer(t, netip.AddrPortFrom(pair.Link.B.Addr4(), 0).String())
	before := a.proc(t)

	const count = 60000
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := pair.A.SYNFlood(ctx, testlab.SYNFloodConfig{
		Src: pair.Link.A.Addr4(), Dst: pair.Link.B.Addr4(), DstPort: srv.Addr().Port(),
		Count: count, Rate: 20000, Seed: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sent %d SYNs from %d source ports in %s", res.Sent, res.Ports, res.Duration.Round(time.Millisecond))
	if res.Sent != count {
		t.Fatalf("sent %d SYNs, want %d", res.Sent, count)
	}

	// Every flood SYN arrived at the capture (kernel packets) or was
	// dropped by the kernel for a full ring (kernel drops); wait until the
	// counters settle.
	var m Metrics
	var last float64 = -1
	deadline := time.Now().Add(30 * time.Second)
	for {
		m = a.metrics(t)
		flows := m.Sum("netsight_capture_flows", "device", dev)
		if flows > maxFlows {
			t.Fatalf("capture flow table holds %.0f flows, capacity %d", flows, maxFlows)
		}
		seen := m.Sum("netsight_capture_kernel_packets_total", "device", dev)
		if seen >= count && seen == last {
			break
		}
		last = seen
		if time.Now().After(deadline) {
			t.Fatalf("capture saw %.0f packets on %s, want >= %d", seen, dev, count)
		}
		time.Sleep(time.Second)
	}
	flows := m.Sum("netsight_capture_flows", "device", dev)
	capEv := m.Sum("netsight_capture_flow_evictions_total", "device", dev, "reason", "capacity")
	idleEv := m.Sum("netsight_capture_flow_evictions_total", "device", dev, "reason", "idle")
	drops := m.Sum("netsight_capture_kernel_drops_total", "device", dev)
	syns := m.Sum("netsight_capture_tcp_packets_total", "device", dev, "direction", "rx")
	t.Logf("capture %s: %.0f flows (capacity %d), evictions capacity %.0f idle %.0f, kernel drops %.0f, rx packets %.0f",
		dev, flows, maxFlows, capEv, idleEv, drops, syns)
	if flows != maxFlows {
		t.Errorf("flow table holds %.0f flows after %d new ones; want it full at %d", flows, count, maxFlows)
	}
	// Each SYN not dropped by the kernel opened a flow: the flows still in
	// the table plus those evicted account for all of them (each flow
	// also sees the SYN-ACK and RST of its handshake, never a new flow).
	if total := flows + capEv + idleEv; total < count-drops || total > count {
		t.Errorf("flows %.0f + evicted %.0f = %.0f; want between %.0f (SYNs minus kernel drops) and %d (SYNs)",
			flows, capEv+idleEv, total, count-drops, count)
	}
	if syns < count-drops {
		t.Errorf("%.0f TCP packets received on %s; want at least the %.0f SYNs not dropped", syns, dev, count-drops)
	}
	if capEv < count-maxFlows-drops {
		t.Errorf("capacity evictions %.0f; want at least %.0f", capEv, count-maxFlows-drops)
	}
	after := a.checkMemory(t, synFloodRSSMax)
	t.Logf("RSS before flood %s, after %s", testlab.MiB(before.RSS), testlab.MiB(after.RSS))
}

// TestShortConnectionsBounded makes 100,000 short TCP connections to 32
// server ports of the agent's namespace (more groups than top_k) and checks
// that the flows table stays within max_connections, evicting the excess
// and counting it, that the top-K series stay at top_k plus "other", and
// that RSS stays bounded. It runs with the back end a host picks (auto:
// eBPF where the kernel allows, as on this lab VM) and, with 20,000
// connections, with the sock_diag back end.
func TestShortConnectionsBounded(t *testing.T) {
	for _, tc := range []struct {
		name    string
		backend string
		perSrv  int
		// hostMounts keeps /sys/fs/cgroup visible so that eBPF can attach.
		hostMounts bool
	}{
		{"auto", "auto", 3125, true}, // 32 x 3125 = 100,000
		{"sockdiag", "sockdiag", 625, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shortConnections(t, tc.backend, tc.perSrv, tc.hostMounts)
		})
	}
}

func shortConnections(t *testing.T, backend string, perSrv int, hostMounts bool) {
	pair := testlab.NewPair(t)
	const (
		maxConns = 4096
		topK     = 10
		servers  = 32
	)
	a := startLabAgentOpts(t, cgroupMax, Options{NS: pair.B, HostMounts: hostMounts, Config: baseConfig(fmt.Sprintf(`collectors:
  flows:
    backend: %s
    interval: 1s
    max_connections: %d
    top_k: %d
`, backend, maxConns, topK))})
	a.waitMetric(t, 30*time.Second, "flows collector", func(m Metrics) bool {
		return m.Series("netsight_flow_table_max_entries") == 1
	})
	m := a.metrics(t)
	t.Logf("flows back end: %v", labelsOf(m, "netsight_flow_backend_info", "backend"))
	// The client's ephemeral ports: 32 targets x 64k ports leave room for
	// 100,000 connections in TIME_WAIT (namespace-local sysctls).
	for k, v := range map[string]string{"net.ipv4.ip_local_port_range": "1024 65000", "net.ipv4.tcp_tw_reuse": "1"} {
		if err := pair.A.Sysctl(k, v); err != nil {
			t.Fatal(err)
		}
	}
	var targets []netip.AddrPort
	for range servers {
		srv := pair.B.StartEchoServer(t, netip.AddrPortFrom(pair.Link.B.Addr4(), 0).String())
		targets = append(targets, srv.Addr())
	}

	// Watch the table while the connections run.
	stop := make(chan struct{})
	var watch sync.WaitGroup
	var maxEntries, maxTop float64
	var watchErr error
	watch.Add(1)
	go func() {
		defer watch.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			m, err := a.Metrics(ctx)
			cancel()
			if err != nil {
				watchErr = err
				return
			}
			maxEntries = max(maxEntries, m.Sum("netsight_flow_table_entries"))
			maxTop = max(maxTop, float64(m.Series("netsight_flow_top_connections")))
		}
	}()

	start := time.Now()
	var wg sync.WaitGroup
	results := make([][]testlab.ConnResult, servers)
	errs := make([]error, servers)
	for i, tgt := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = pair.A.ShortConns(context.Background(), testlab.ShortConnsConfig{
				Target: tgt, Count: perSrv, Bytes: 64, Concurrency: 2, Timeout: 150 * time.Second, ConnTimeout: 10 * time.Second,
			})
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	failed := 0
	for i := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		for _, r := range results[i] {
			if r.Err != nil {
				failed++
			}
		}
	}
	ok := servers*perSrv - failed
	t.Logf("%d connections in %s (%.0f/s), %d failed", ok, elapsed.Round(time.Millisecond), float64(ok)/elapsed.Seconds(), failed)
	if failed > servers*perSrv/100 {
		t.Errorf("%d of %d connections failed", failed, servers*perSrv)
	}
	// Two more intervals so the last connections are reported.
	time.Sleep(3 * time.Second)
	close(stop)
	watch.Wait()
	if watchErr != nil {
		a.alive(t)
		t.Fatal(watchErr)
	}
	m = a.metrics(t)
	entries, maxE := m.Sum("netsight_flow_table_entries"), m.Sum("netsight_flow_table_max_entries")
	full := m.Sum("netsight_flow_table_evictions_total", "reason", "full")
	opened := m.Sum("netsight_flow_connections_opened_total", "direction", "server")
	t.Logf("flows table: max seen %.0f entries (capacity %.0f), now %.0f, evicted full %.0f; server connections opened %.0f; top series max %.0f",
		maxEntries, maxE, entries, full, opened, maxTop)
	if maxE != maxConns || maxEntries > maxConns || entries > maxConns {
		t.Errorf("table entries up to %.0f, capacity %.0f; want at most %d", maxEntries, maxE, maxConns)
	}
	if full == 0 {
		t.Errorf("no full-table evictions after %d connections through a %d-entry table", ok, maxConns)
	}
	// Server side groups: (local, remote, port) per server port; top_k of
	// them plus "other".
	if maxTop > topK+1 {
		t.Errorf("up to %.0f top series; want at most top_k+1 = %d", maxTop, topK+1)
	}
	if got := m.Series("netsight_flow_top_connections", "direction", "other"); got != 1 {
		t.Errorf("%d other series; want 1", got)
	}
	a.checkMemory(t, shortConnRSSMax)
}

// TestInterfaceChurnNoLeak creates and deletes 100 interfaces (50 veth
// pairs, 10 at a time) in the agent's namespace while capture follows every
// interface, and checks that file descriptors, goroutines and RSS return
// to where they were after a first warm-up round.
func TestInterfaceChurnNoLeak(t *testing.T) {
	ns := testlab.NewNetNS(t)
	a := startLabAgent(t, ns, cgroupMax, baseConfig(`collectors:
  capture:
    enabled: true
    interval: 1s
    interfaces: ["churn*"]
`))
	captured := func(m Metrics) float64 { return m.Sum("netsight_capture_interfaces") }
	a.waitMetric(t, 30*time.Second, "capture collector", func(m Metrics) bool {
		return m.Series("netsight_capture_interfaces") == 1
	})
	const perRound = 10 // veth pairs: 20 interfaces
	round := func(r int) {
		t.Helper()
		h := ns.Handle()
		for i := range perRound {
			name := fmt.Sprintf("churn%d", i)
			l := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}
			if err := h.LinkAdd(l); err != nil {
				t.Fatalf("round %d: add %s: %v", r, name, err)
			}
			for _, n := range []string{name, name + "p"} {
				ln, err := h.LinkByName(n)
				if err == nil {
					err = h.LinkSetUp(ln)
				}
				if err != nil {
					t.Fatalf("round %d: up %s: %v", r, n, err)
				}
			}
		}
		a.waitMetric(t, 30*time.Second, fmt.Sprintf("round %d: %d interfaces captured", r, 2*perRound), func(m Metrics) bool {
			return captured(m) == 2*perRound
		})
		for i := range perRound { // deleting one end removes its peer
			ln, err := h.LinkByName(fmt.Sprintf("churn%d", i))
			if err == nil {
				err = h.LinkDel(ln)
			}
			if err != nil {
				t.Fatalf("round %d: delete churn%d: %v", r, i, err)
			}
		}
		a.waitMetric(t, 30*time.Second, fmt.Sprintf("round %d: interfaces released", r), func(m Metrics) bool {
			return captured(m) == 0
		})
	}
	type sample struct {
		testlab.ProcStats
		goroutines float64
	}
	measure := func() sample {
		// Let deferred closes and the GC settle: two scrapes 2 s apart.
		time.Sleep(2 * time.Second)
		m := a.metrics(t)
		return sample{a.proc(t), m.Sum("go_goroutines")}
	}
	round(0) // warm-up: first-use allocations, lazily started goroutines
	before := measure()
	const rounds = 5 // 5 x 20 = 100 interfaces
	for r := 1; r <= rounds; r++ {
		round(r)
	}
	after := measure()
	m := a.metrics(t)
	t.Logf("interfaces added %.0f, removed %.0f, failed %.0f",
		m.Sum("netsight_capture_interface_changes_total", "change", "added"),
		m.Sum("netsight_capture_interface_changes_total", "change", "removed"),
		m.Sum("netsight_capture_interface_changes_total", "change", "failed"))
	t.Logf("before: fds %d, goroutines %.0f, threads %d, RSS %s; after %d interfaces: fds %d, goroutines %.0f, threads %d, RSS %s",
		before.FDs, before.goroutines, before.Threads, testlab.MiB(before.RSS), 2*perRound*rounds,
		after.FDs, after.goroutines, after.Threads, testlab.MiB(after.RSS))
	if added := m.Sum("netsight_capture_interface_changes_total", "change", "added"); added < 2*perRound*(rounds+1) {
		t.Errorf("%.0f interfaces added; want %d", added, 2*perRound*(rounds+1))
	}
	// fds: the store may have opened or closed a file (WAL segment) in the
	// meantime; a leak is one or more per interface (100+).
	if after.FDs > before.FDs+3 {
		t.Errorf("fds grew from %d to %d over %d interfaces", before.FDs, after.FDs, 2*perRound*rounds)
	}
	if after.goroutines > before.goroutines+5 {
		t.Errorf("goroutines grew from %.0f to %.0f over %d interfaces", before.goroutines, after.goroutines, 2*perRound*rounds)
	}
	// Each ring is ring_size_mb (4 MiB) of mapped memory: a leaked ring
	// shows as 4 MiB or more per interface.
	if growth := after.RSS - before.RSS; growth > 24*mib {
		t.Errorf("RSS grew by %s over %d interfaces", testlab.MiB(growth), 2*perRound*rounds)
	}
	// Links deleted before their queued events are handled are no
	// failures (that was 79 WARN lines and failures for 120 interfaces).
	if failed := m.Sum("netsight_capture_interface_changes_total", "change", "failed"); failed != 0 {
		t.Errorf("%.0f interfaces failed to open", failed)
		for _, l := range strings.Split(a.Logs(), "\n") {
			if strings.Contains(l, "cannot capture") {
				t.Log(l)
			}
		}
	}
	a.checkMemory(t, churnRSSMax)
}

// labelsOf lists the values of label in family name.
func labelsOf(m Metrics, name, label string) []string {
	var out []string
	if f := m[name]; f != nil {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == label {
					out = append(out, l.GetValue())
				}
			}
		}
	}
	return out
}
