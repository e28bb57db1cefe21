package capture

// Privileged lab tests: live capture in a network namespace compared with
// tcpdump on the same veth, and interfaces followed as they come and go.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/netsight/netsight/collector"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/netsight/netsight/internal/metrictest"
	"github.com/netsight/netsight/internal/testlab"
	"github.com/netsight/netsight/tcpanalysis"
	"github.com/netsight/netsight/tcpanalysis/pcapfile"
)

type labPair = testlab.ClientServer

func newLabPair(t *testing.T, n int) *labPair { return testlab.NewClientServer(t, n) }

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
	c, err := New(cfg, collector.Deps{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
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
		waitFor(t, 20*time.Second, func() bool { return contains(c.Devices(), want) }, "capture on "+want)
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
	srv := p.Srv.Command(ctx, "iperf3", "-s", "-1", "-B", p.SrvIP)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	p.Srv.WaitListening(t, 5201)
	out, err := p.Cli.Command(ctx, "iperf3", append([]string{"-c", p.SrvIP, "-J"}, args...)...).Output()
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

// tracedPacket is one analysed packet: its captured bytes (the identity of
// the packet: with the IP ID and TCP timestamps no two are alike), decoded
// fields and events.
type tracedPacket struct {
	frame string
	p     tcpanalysis.Packet
	ev    tcpanalysis.Events
}

// flowDir is one direction of one flow: the unit whose packet order the
// TCP analysis depends on (the previous ACK number and window).
type flowDir struct {
	k tcpanalysis.Key
	d int
}

func (tp *tracedPacket) flowDir() flowDir {
	k, d := tcpanalysis.MakeKey(&tp.p)
	return flowDir{k, d}
}

// readTraced decodes and analyses a pcap file in file order.
func readTraced(t *testing.T, file string) ([]tracedPacket, *tcpanalysis.Analyzer) {
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
	var out []tracedPacket
	for {
		data, ci, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		tp := tracedPacket{frame: string(data)}
		tp.p.TimestampNanos, tp.p.WireLen = ci.TimestampNanos, ci.WireLen
		if err := tcpanalysis.Decode(ci.LinkType, data, &tp.p); err != nil || !tp.p.TCPValid {
			t.Fatalf("tcpdump packet %d does not decode as TCP: %v", len(out), err)
		}
		tp.ev, _ = a.Process(&tp.p)
		out = append(out, tp)
	}
	return out, a
}

// predecessorChanges counts the packets of b whose previous packet in the
// same flow direction is not the same as in a (both orders of the same
// packets). Only such a packet can be analysed differently in the two
// orders: whether an ACK is a duplicate depends on the previous ACK number
// and window of its direction, a retransmission on the sequence numbers
// seen before it in its direction.
func predecessorChanges(a, b []tracedPacket) int {
	prev := func(l []tracedPacket) map[string]string {
		last := map[flowDir]string{}
		m := make(map[string]string, len(l))
		for i := range l {
			fd := l[i].flowDir()
			m[l[i].frame] = last[fd]
			last[fd] = l[i].frame
		}
		return m
	}
	pa, pb := prev(a), prev(b)
	n := 0
	for f, p := range pb {
		if pa[f] != p {
			n++
		}
	}
	return n
}

func describe(tp *tracedPacket) string {
	p := &tp.p
	return fmt.Sprintf("t=%s %d>%d seq=%d ack=%d flags=%#02x win=%d len=%d", time.Unix(0, p.TimestampNanos).UTC().Format("15:04:05.000000"),
		p.SrcPort, p.DstPort, p.Seq, p.Ack, p.Flags, p.Window, p.PayloadLen)
}

func countEvent(l []tracedPacket, ev tcpanalysis.Events) uint64 {
	var n uint64
	for i := range l {
		if l[i].ev&ev != 0 {
			n++
		}
	}
	return n
}

func absDiff(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

// TestLabLiveMatchesTcpdump: the collector and tcpdump capture the same veth
// during an iperf3 run under 3% loss. Both sockets see exactly the same
// packets, and the live analysis equals the offline analysis of those
// packets.
//
// Order: the two AF_PACKET sockets do not always see the packets in the same
// order. The server's ACKs reach vcli through the per-CPU backlog of the CPU
// that sent them (veth without NAPI): two ACKs sent at once from two CPUs
// (the softirq answering data, and the process or a timer) are delivered to
// the packet taps by both CPUs at the same time, and each socket queues them
// in the order it happens to receive them. Measured on 2 cores at 100 Mbit/s
// with 3% loss: 30-75 packets of ~20,000 had a different predecessor in
// their direction, and in about 2 runs of 10 that moved the duplicate-ACK
// count by 1-2 (e.g. ACKs for the same number with windows 320, 354, 320:
// one order has a repeated window, the other none). No capture can be more
// right than the other, so the test checks:
//   - exactly the same packets (byte for byte) in both captures;
//   - exact: tcpdump's packets analysed in the order our ring delivered them
//     give every live event count;
//   - tcpdump's own order: retransmission and duplicate-ACK counts differ
//     by at most the number of packets whose same-direction predecessor
//     differs between the two orders (0 when the orders agree).
func TestLabLiveMatchesTcpdump(t *testing.T) {
	requireLab(t)
	p := newLabPair(t, 70)
	p.DropToPort(t, 3, 5201)
	cfg := DefaultConfig()
	cfg.Interfaces = []string{"vcli"}
	c := startCollector(t, p.Cli, cfg, "vcli")
	r := c.ringFor("vcli")
	var live []tracedPacket
	r.mu.Lock()
	r.trace = func(frame []byte, pk *tcpanalysis.Packet, _ int, ev tcpanalysis.Events) {
		live = append(live, tracedPacket{frame: string(frame), p: *pk, ev: ev})
	}
	r.mu.Unlock()

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

	// Our ring runs before tcpdump is listening, and the traffic starts
	// after both capture; Stop waits until tcpdump's file stops growing,
	// then we wait until our ring has every packet: both windows cover the
	// whole iperf3 run (checked below packet by packet).
	dump := p.Cli.StartTcpdump(t, p.CliIf, testlab.TcpdumpOptions{Snaplen: 128, BufferKiB: 16384, Filter: "tcp"})
	bps := runIperf(t, p, "-t", "2", "-b", "100M")
	time.Sleep(300 * time.Millisecond) // FIN/ACK exchange after iperf3 exits
	file := dump.Stop()
	offPkts, off := readTraced(t, file)

	// Wait until our ring has every packet tcpdump has, or (drops, a
	// failure) its count has not moved for a second.
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
		return stable > 50
	}, "the live capture to catch up")
	time.Sleep(200 * time.Millisecond)
	r.mu.Lock()
	r.trace = nil
	r.mu.Unlock()
	s = r.snapshot(0)
	_, drops, _, err := r.kernelStats()
	if err != nil {
		t.Fatal(err)
	}
	if r.finished() {
		t.Errorf("the reader ended: %v", r.err)
	}
	t.Logf("packets live=%d tcpdump=%d, kernel drops=%d", totalPackets(s), off.Totals.Packets, drops)
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
	if uint64(len(live)) != totalPackets(s) {
		t.Fatalf("traced %d packets, ring counted %d", len(live), totalPackets(s))
	}
	if off.Totals.Retransmissions == 0 {
		t.Error("no retransmissions under 3% loss: loss rule ineffective")
	}
	if s.st.packets[dirRx] == 0 || s.st.packets[dirTx] == 0 {
		t.Errorf("direction split rx=%d tx=%d: both must be seen", s.st.packets[dirRx], s.st.packets[dirTx])
	}
	if got, want := totalPackets(s), off.Totals.Packets; got != want && got+drops < want {
		t.Errorf("live packets %d != tcpdump's %d and kernel drops (%d) do not explain it", got, want, drops)
	}
	if drops != 0 {
		t.Logf("kernel drops %d: analysis not compared", drops)
		return
	}

	// The same packets, byte for byte.
	byFrame := make(map[string][]int, len(offPkts))
	for i := range offPkts {
		byFrame[offPkts[i].frame] = append(byFrame[offPkts[i].frame], i)
	}
	reordered := make([]tracedPacket, 0, len(live))
	var onlyLiveIdx []int
	for i := range live {
		q := byFrame[live[i].frame]
		if len(q) == 0 {
			onlyLiveIdx = append(onlyLiveIdx, i)
			continue
		}
		reordered = append(reordered, offPkts[q[0]])
		byFrame[live[i].frame] = q[1:]
	}
	onlyLive, onlyTcpdump := len(onlyLiveIdx), len(offPkts)-len(reordered)
	if onlyLive != 0 || onlyTcpdump != 0 {
		for _, i := range onlyLiveIdx[:min(5, len(onlyLiveIdx))] {
			t.Logf("only live: #%d of %d %s", i, len(live), describe(&live[i]))
		}
		shown := 0
		for _, q := range byFrame {
			for _, i := range q {
				if shown < 5 {
					t.Logf("only tcpdump: #%d of %d %s", i, len(offPkts), describe(&offPkts[i]))
					shown++
				}
			}
		}
		t.Fatalf("the captures differ: %d packets only live, %d only in tcpdump's file (of %d live, %d tcpdump)",
			onlyLive, onlyTcpdump, len(live), len(offPkts))
	}

	// Exact: tcpdump's packets in our ring's order.
	a := tcpanalysis.NewAnalyzer(tcpanalysis.Config{})
	for i := range reordered {
		reordered[i].ev, _ = a.Process(&reordered[i].p)
	}
	for _, e := range eventDefs {
		if got, want := eventCount(s, e.name), countEvent(reordered, e.ev); got != want {
			t.Errorf("event %s: live %d, tcpdump's packets in the live order %d", e.name, got, want)
		}
	}

	// tcpdump's own order: differences bounded by the reordering measured.
	changed := predecessorChanges(offPkts, live)
	liveRetr, offRetr := eventCount(s, "retransmission"), off.Totals.Retransmissions
	liveDup, offDup := eventCount(s, "duplicate_ack"), off.Totals.DuplicateAcks
	t.Logf("iperf3 %.0f Mbit/s; packets live=%d (rx %d, tx %d) tcpdump=%d, same packets; %d with another same-direction predecessor in tcpdump's order; "+
		"retransmissions live=%d offline=%d; dup ACKs live=%d offline=%d",
		bps/1e6, totalPackets(s), s.st.packets[dirRx], s.st.packets[dirTx], off.Totals.Packets, changed, liveRetr, offRetr, liveDup, offDup)
	if d := absDiff(liveRetr, offRetr); d > uint64(changed) {
		t.Errorf("live retransmissions %d, offline %d: differ by more than the %d reordered packets", liveRetr, offRetr, changed)
	}
	if d := absDiff(liveDup, offDup); d > uint64(changed) {
		t.Errorf("live duplicate ACKs %d, offline %d: differ by more than the %d reordered packets", liveDup, offDup, changed)
	}
	// Reordering is the rare race described above, not the rule.
	if max := len(live) / 20; changed > max {
		t.Errorf("%d of %d packets reordered relative to tcpdump (more than 5%%)", changed, len(live))
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
	c := startCollector(t, p.Cli, cfg, "vcli")
	r := c.ringFor("vcli")
	dump := p.Cli.StartTcpdump(t, p.CliIf, testlab.TcpdumpOptions{Snaplen: 128, BufferKiB: 16384, Filter: "tcp"})
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

// sendTCPFrame writes one hand-made Ethernet/IPv4/TCP frame (10.99.0.1 ->
// 10.99.0.2, both only inside ns) out of dev with AF_PACKET; the peer of
// dev receives it.
func sendTCPFrame(ns *testlab.NetNS, dev string) error {
	return ns.Do(func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		f := make([]byte, 14+20+20)
		copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		copy(f[6:12], ifi.HardwareAddr)
		binary.BigEndian.PutUint16(f[12:], 0x0800)
		ip := f[14:34]
		ip[0], ip[8], ip[9] = 0x45, 64, 6
		binary.BigEndian.PutUint16(ip[2:], 40)
		copy(ip[12:16], []byte{10, 99, 0, 1})
		copy(ip[16:20], []byte{10, 99, 0, 2})
		var sum uint32
		for i := 0; i < 20; i += 2 {
			sum += uint32(binary.BigEndian.Uint16(ip[i:]))
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
		tcp := f[34:]
		binary.BigEndian.PutUint16(tcp[0:], 40000)
		binary.BigEndian.PutUint16(tcp[2:], 5201)
		tcp[12], tcp[13] = 5<<4, 0x10 // ACK
		binary.BigEndian.PutUint16(tcp[14:], 1000)
		sa := &unix.SockaddrLinklayer{Protocol: 0x0300, Ifindex: ifi.Index, Halen: 6}
		copy(sa.Addr[:], f[0:6])
		return unix.Sendto(fd, f, 0, sa)
	})
}

// TestLabFollowsInterfaces: interfaces matching the pattern are captured as
// they appear, released as they disappear, captured again after a down/up
// (checked with a packet, not only a running reader); excluded ones never.
func TestLabFollowsInterfaces(t *testing.T) {
	requireLab(t)
	ns := testlab.NewNetNS(t)
	cfg := DefaultConfig()
	cfg.Interfaces = []string{"pod*"}
	cfg.Exclude = []string{"pod9*"}
	c := startCollector(t, ns, cfg, "")
	ctx := context.Background()
	run := func(args ...string) {
		t.Helper()
		if out, err := ns.Run(ctx, args[0], args[1:]...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	// Generous deadlines: conditions, not sleeps (a loaded 2-core CI VM).
	const deadline = 20 * time.Second
	for i := 0; i < 3; i++ { // pods churn: add and remove repeatedly
		run("ip", "link", "add", "pod0", "type", "veth", "peer", "name", "pod9")
		run("ip", "link", "set", "pod9", "up")
		waitFor(t, deadline, func() bool { return contains(c.Devices(), "pod0") }, "pod0 captured")
		if contains(c.Devices(), "pod9") {
			t.Fatal("excluded pod9 captured")
		}
		// Down and up again, faster than the reader notices the down (the
		// link events are all handled before it ends): captured again.
		for _, st := range []string{"up", "down", "up"} {
			run("ip", "link", "set", "pod0", st)
		}
		var sendErr error
		waitFor(t, deadline, func() bool {
			r := c.ringFor("pod0")
			if r == nil || r.finished() {
				return false
			}
			if sendErr = sendTCPFrame(ns, "pod9"); sendErr != nil {
				return false
			}
			return totalPackets(r.snapshot(0)) > 0
		}, "pod0 captured after down/up (a frame sent from pod9 counted)")
		if sendErr != nil {
			t.Fatal(sendErr)
		}
		run("ip", "link", "del", "pod0")
		waitFor(t, deadline, func() bool { return len(c.Devices()) == 0 }, "pod0 released")
	}
	if added, removed := c.added.Load(), c.removed.Load(); added < 3 || added != removed {
		t.Errorf("added = %d, removed = %d; want equal and >= 3", added, removed)
	}
}
