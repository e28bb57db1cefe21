package capture

// Privileged lab tests: live capture in a network namespace compared with
// tcpdump on the same veth, and interfaces followed as they come and go.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netsight/netsight/internal/metrictest"
	"github.com/netsight/netsight/internal/testlab"
	"github.com/netsight/netsight/tcpanalysis"
	"github.com/netsight/netsight/tcpanalysis/pcapfile"
)

type labPair struct {
	cli, srv     *testlab.NetNS
	cliIf, srvIf string
	cliIP, srvIP string
}

func newLabPair(t *testing.T, n int) *labPair {
	t.Helper()
	p := &labPair{cli: testlab.NewNetNS(t), srv: testlab.NewNetNS(t), cliIf: "vcli", srvIf: "vsrv",
		cliIP: fmt.Sprintf("10.%d.0.1", n), srvIP: fmt.Sprintf("10.%d.0.2", n)}
	if out, err := exec.Command("ip", "link", "add", p.cliIf, "netns", p.cli.Name, "type", "veth", "peer", "name", p.srvIf, "netns", p.srv.Name).CombinedOutput(); err != nil {
		t.Fatalf("create veth: %v: %s", err, out)
	}
	ctx := context.Background()
	for _, c := range []struct {
		ns   *testlab.NetNS
		args []string
	}{
		{p.cli, []string{"ip", "addr", "add", p.cliIP + "/24", "dev", p.cliIf}},
		{p.srv, []string{"ip", "addr", "add", p.srvIP + "/24", "dev", p.srvIf}},
		{p.cli, []string{"ip", "link", "set", p.cliIf, "up"}},
		{p.srv, []string{"ip", "link", "set", p.srvIf, "up"}},
	} {
		if out, err := c.ns.Run(ctx, c.args[0], c.args[1:]...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	_, _ = p.cli.Run(ctx, "ethtool", "-K", p.cliIf, "tso", "off", "gso", "off", "gro", "off")
	_, _ = p.srv.Run(ctx, "ethtool", "-K", p.srvIf, "tso", "off", "gso", "off", "gro", "off")
	return p
}

func (p *labPair) loss(t *testing.T, pct int) {
	t.Helper()
	for _, args := range [][]string{
		{"add", "table", "inet", "lab"},
		{"add", "chain", "inet", "lab", "in", "{ type filter hook input priority 0; }"},
		{"add", "rule", "inet", "lab", "in", "ip", "saddr", p.cliIP, "tcp", "dport", "5201", "numgen", "random", "mod", "100", "<", fmt.Sprint(pct), "drop"},
	} {
		if out, err := p.srv.Run(context.Background(), "nft", args...); err != nil {
			t.Fatalf("nft: %v: %s", err, out)
		}
	}
}

func requireLab(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test")
	}
	testlab.RequireRoot(t)
	for _, b := range []string{"tcpdump", "iperf3", "nft", "ip", "ethtool"} {
		testlab.RequireBinary(t, b)
	}
}

// startCollector runs the collector inside ns and waits until it captures
// on want (if not empty).
func startCollector(t *testing.T, ns *testlab.NetNS, cfg *Config, want string) *Collector {
	t.Helper()
	cfg.NetNS = filepath.Join(testlab.NetnsDir, ns.Name)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		_ = c.Close()
	})
	if want != "" {
		waitFor(t, 5*time.Second, func() bool { return contains(c.Devices(), want) }, "capture on "+want)
	}
	return c
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Collector) ringFor(name string) *ring {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.rings {
		if r.link.name == name {
			return r
		}
	}
	return nil
}

func totalPackets(s snapshot) uint64 {
	var n uint64
	for _, v := range s.st.packets {
		n += v
	}
	return n
}

func eventCount(s snapshot, name string) uint64 {
	var n uint64
	for i, e := range eventDefs {
		if e.name == name {
			for d := range s.st.events {
				n += s.st.events[d][i]
			}
		}
	}
	return n
}

func analyzeFile(t *testing.T, file string) *tcpanalysis.Analyzer {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := pcapfile.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	a := tcpanalysis.NewAnalyzer(tcpanalysis.Config{})
	if _, err := pcapfile.Analyze(context.Background(), rd, a, nil); err != nil {
		t.Fatal(err)
	}
	return a
}

// runIperf runs one bounded iperf3 test from the client namespace and
// returns the JSON-reported sender throughput.
func runIperf(t *testing.T, p *labPair, args ...string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := p.srv.Command(ctx, "iperf3", "-s", "-1", "-B", p.srvIP)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	p.srv.WaitListening(t, 5201)
	out, err := p.cli.Command(ctx, "iperf3", append([]string{"-c", p.srvIP, "-J"}, args...)...).Output()
	if err != nil {
		t.Fatalf("iperf3: %v: %s", err, out)
	}
	var r struct {
		End struct {
			SumSent struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_sent"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("iperf3 json: %v", err)
	}
	return r.End.SumSent.BitsPerSecond
}

// TestLabLiveMatchesTcpdump: the collector and tcpdump capture the same veth
// during an iperf3 run under 3% loss. Every packet tcpdump saw, we saw (or
// the kernel's drop counter accounts for it), and the live analysis equals
// the offline analysis of tcpdump's file.
func TestLabLiveMatchesTcpdump(t *testing.T) {
	requireLab(t)
	p := newLabPair(t, 70)
	p.loss(t, 3)
	cfg := DefaultConfig()
	cfg.Interfaces = []string{"vcli"}
	c := startCollector(t, p.cli, cfg, "vcli")
	r := c.ringFor("vcli")

	// Scrape concurrently with the capture (for -race and for the locking).
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrictest.AsPrometheus(c))
	scrapeDone := make(chan struct{})
	scraped := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-scrapeDone:
				scraped <- n
				return
			case <-time.After(50 * time.Millisecond):
				if _, err := reg.Gather(); err != nil {
					t.Errorf("gather: %v", err)
				}
				n++
			}
		}
	}()

	dump := p.cli.StartTcpdump(t, p.cliIf, testlab.TcpdumpOptions{Snaplen: 128, BufferKiB: 16384, Filter: "tcp"})
	bps := runIperf(t, p, "-t", "2", "-b", "100M")
	time.Sleep(300 * time.Millisecond) // FIN/ACK exchange after iperf3 exits
	file := dump.Stop()
	off := analyzeFile(t, file)

	var s snapshot
	waitFor(t, 3*time.Second, func() bool {
		s = r.snapshot(0)
		return totalPackets(s) >= off.Totals.Packets
	}, "the live capture to catch up")
	time.Sleep(200 * time.Millisecond)
	s = r.snapshot(0)
	_, drops, _, err := r.kernelStats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("iperf3 %.0f Mbit/s; packets live=%d (rx %d, tx %d) tcpdump=%d kernel drops=%d; retransmissions live=%d offline=%d; dup ACKs live=%d offline=%d",
		bps/1e6, totalPackets(s), s.st.packets[dirRx], s.st.packets[dirTx], off.Totals.Packets, drops,
		eventCount(s, "retransmission"), off.Totals.Retransmissions, eventCount(s, "duplicate_ack"), off.Totals.DuplicateAcks)
	close(scrapeDone)
	if n := <-scraped; n < 10 {
		t.Errorf("only %d concurrent scrapes", n)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var exported float64
	for _, mf := range mfs {
		if mf.GetName() == "netsight_capture_tcp_packets_total" {
			for _, m := range mf.GetMetric() {
				exported += m.GetCounter().GetValue()
			}
		}
	}
	if uint64(exported) != totalPackets(s) {
		t.Errorf("exported netsight_capture_tcp_packets_total = %v, ring has %d", exported, totalPackets(s))
	}
	if got, want := totalPackets(s), off.Totals.Packets; got != want && got+drops < want {
		t.Errorf("live packets %d != tcpdump's %d and kernel drops (%d) do not explain it", got, want, drops)
	}
	if drops == 0 {
		if got, want := eventCount(s, "retransmission"), off.Totals.Retransmissions; got != want {
			t.Errorf("live retransmissions %d, offline %d", got, want)
		}
		if got, want := eventCount(s, "duplicate_ack"), off.Totals.DuplicateAcks; got != want {
			t.Errorf("live duplicate ACKs %d, offline %d", got, want)
		}
	}
	if off.Totals.Retransmissions == 0 {
		t.Error("no retransmissions under 3% loss: loss rule ineffective")
	}
	if s.st.packets[dirRx] == 0 || s.st.packets[dirTx] == 0 {
		t.Errorf("direction split rx=%d tx=%d: both must be seen", s.st.packets[dirRx], s.st.packets[dirTx])
	}
}

// TestLabKeepUpSmallMSS measures (not asserts on time) how the collector
// keeps up with iperf3 -M 536 at up to 1 Gbit/s; every packet tcpdump saw
// must be counted by us or by our kernel drop counter.
func TestLabKeepUpSmallMSS(t *testing.T) {
	requireLab(t)
	p := newLabPair(t, 71)
	cfg := DefaultConfig()
	cfg.Interfaces = []string{"vcli"}
	cfg.RingSizeMB = 16
	c := startCollector(t, p.cli, cfg, "vcli")
	r := c.ringFor("vcli")
	dump := p.cli.StartTcpdump(t, p.cliIf, testlab.TcpdumpOptions{Snaplen: 128, BufferKiB: 16384, Filter: "tcp"})
	start := time.Now()
	bps := runIperf(t, p, "-t", "2", "-b", "1G", "-M", "536")
	time.Sleep(300 * time.Millisecond)
	file := dump.Stop()
	elapsed := time.Since(start)
	off := analyzeFile(t, file)
	// Wait until the ring has caught up: all packets counted, or the
	// count stopped moving (the rest was dropped by the kernel).
	var s snapshot
	var drops uint64
	last, stable := uint64(0), 0
	waitFor(t, 20*time.Second, func() bool {
		s = r.snapshot(0)
		var err error
		if _, drops, _, err = r.kernelStats(); err != nil {
			t.Fatal(err)
		}
		n := totalPackets(s)
		if n+drops >= off.Totals.Packets {
			return true
		}
		if n == last {
			stable++
		} else {
			last, stable = n, 0
		}
		return stable > 50 // ~1 s without progress
	}, "catch up")
	pps := float64(totalPackets(s)) / elapsed.Seconds()
	t.Logf("small MSS: iperf3 %.0f Mbit/s; packets live=%d tcpdump=%d kernel drops=%d; ~%.0f packets/s over %s",
		bps/1e6, totalPackets(s), off.Totals.Packets, drops, pps, elapsed.Round(time.Millisecond))
	if got := totalPackets(s); got+drops < off.Totals.Packets {
		t.Errorf("live %d + drops %d < tcpdump %d", got, drops, off.Totals.Packets)
	}
}

// TestLabFollowsInterfaces: interfaces matching the pattern are captured as
// they appear, released as they disappear; excluded ones never.
func TestLabFollowsInterfaces(t *testing.T) {
	requireLab(t)
	ns := testlab.NewNetNS(t)
	cfg := DefaultConfig()
	cfg.Interfaces = []string{"pod*"}
	cfg.Exclude = []string{"pod9*"}
	c := startCollector(t, ns, cfg, "")
	ctx := context.Background()
	for i := 0; i < 3; i++ { // pods churn: add and remove repeatedly
		if out, err := ns.Run(ctx, "ip", "link", "add", "pod0", "type", "veth", "peer", "name", "pod9"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		waitFor(t, 5*time.Second, func() bool { return contains(c.Devices(), "pod0") }, "pod0 captured")
		if contains(c.Devices(), "pod9") {
			t.Fatal("excluded pod9 captured")
		}
		// down and up again: still (or again) captured
		for _, st := range []string{"up", "down", "up"} {
			if out, err := ns.Run(ctx, "ip", "link", "set", "pod0", st); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
		}
		waitFor(t, 5*time.Second, func() bool { r := c.ringFor("pod0"); return r != nil && !r.finished() }, "pod0 captured after down/up")
		if out, err := ns.Run(ctx, "ip", "link", "del", "pod0"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		waitFor(t, 5*time.Second, func() bool { return len(c.Devices()) == 0 }, "pod0 released")
	}
	if added, removed := c.added.Load(), c.removed.Load(); added < 3 || added != removed {
		t.Errorf("added = %d, removed = %d; want equal and >= 3", added, removed)
	}
}
