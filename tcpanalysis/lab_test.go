package tcpanalysis_test

// Lab tests: real TCP traffic between two network namespaces joined by a
// veth pair, captured with tcpdump, analysed by us and checked against
// independent truth (the capture's own repeated segments counted from
// tshark's field output, iperf3's Retr, tshark's tcp.analysis.* counts).
// They need root and run in the second (non -short) CI pass.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netsight/netsight/internal/testlab"
	"github.com/netsight/netsight/tcpanalysis"
	"github.com/netsight/netsight/tcpanalysis/pcapfile"
)

type labPair = testlab.ClientServer

func newLabPair(t *testing.T, n int) *labPair { return testlab.NewClientServer(t, n) }

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
		t.Fatalf("analyze %s: %v", file, err)
	}
	return a
}

// frameEvents returns our events per frame number (1-based, like tshark).
func frameEvents(t *testing.T, file string) map[int]tcpanalysis.Events {
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
	out := map[int]tcpanalysis.Events{}
	var p tcpanalysis.Packet
	for n := 1; ; n++ {
		data, ci, err := rd.Next()
		if err != nil {
			break
		}
		p.TimestampNanos, p.WireLen = ci.TimestampNanos, ci.WireLen
		if tcpanalysis.Decode(ci.LinkType, data, &p) != nil {
			continue
		}
		if ev, _ := a.Process(&p); ev != 0 {
			out[n] = ev
		}
	}
	return out
}

func head(x []int) []int {
	if len(x) > 5 {
		return x[:5]
	}
	return x
}

// tsharkView is one tshark pass over a file: for each analysis field, the
// frames that carry it, plus the data segments' (port, raw seq, len).
type tsharkView struct {
	frames  int
	flagged map[string]map[int]bool
	repeats int
	data    int
}

var tsharkFieldNames = []string{
	"tcp.analysis.retransmission", "tcp.analysis.fast_retransmission", "tcp.analysis.out_of_order",
	"tcp.analysis.duplicate_ack", "tcp.analysis.zero_window", "tcp.analysis.zero_window_probe",
	"tcp.analysis.keep_alive", "tcp.analysis.window_full", "tcp.flags.reset",
}

func tsharkAnalyze(t *testing.T, file string) *tsharkView {
	t.Helper()
	args := []string{"-n", "-r", file, "-T", "fields", "-E", "separator=;", "-E", "occurrence=f", "-e", "frame.number",
		"-e", "tcp.srcport", "-e", "tcp.seq_raw", "-e", "tcp.len"}
	for _, f := range tsharkFieldNames {
		args = append(args, "-e", f)
	}
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	v := &tsharkView{flagged: map[string]map[int]bool{}}
	for _, f := range tsharkFieldNames {
		v.flagged[f] = map[int]bool{}
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		col := strings.Split(line, ";")
		if len(col) != 4+len(tsharkFieldNames) {
			continue
		}
		n, err := strconv.Atoi(col[0])
		if err != nil {
			continue
		}
		v.frames++
		if l, _ := strconv.Atoi(col[3]); l > 0 {
			v.data++
			k := col[1] + "/" + col[2] + "/" + col[3]
			if seen[k] {
				v.repeats++
			}
			seen[k] = true
		}
		for i, f := range tsharkFieldNames {
			c := col[4+i]
			if c != "" && c != "0" && c != "False" {
				v.flagged[f][n] = true
			}
		}
	}
	return v
}

func (v *tsharkView) count(field string) int { return len(v.flagged[field]) }

func within(got, want int, frac float64, abs int) bool {
	tol := int(math.Ceil(float64(want) * frac))
	if tol < abs {
		tol = abs
	}
	return got >= want-tol && got <= want+tol
}

func requireLabTools(t *testing.T) {
	testlab.RequireRoot(t)
	for _, b := range []string{"tcpdump", "tshark", "iperf3", "nft", "ip"} {
		testlab.RequireBinary(t, b)
	}
}

func TestLabRetransmissionsUnderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test")
	}
	requireLabTools(t)
	for i, pct := range []int{1, 3, 10} {
		t.Run(fmt.Sprintf("loss %d%%", pct), func(t *testing.T) {
			p := newLabPair(t, 80+i)
			p.DropToPort(t, pct, 5201)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			srv := p.Srv.Command(ctx, "iperf3", "-s", "-1", "-B", p.SrvIP)
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
			p.Srv.WaitListening(t, 5201)
			dump := p.Cli.StartTcpdump(t, p.CliIf, testlab.TcpdumpOptions{Snaplen: 128, Filter: "tcp"})
			// Bitrate-limited so the capture stays small (~20k packets).
			out, err := p.Cli.Command(ctx, "iperf3", "-c", p.SrvIP, "-t", "2", "-b", "80M", "-J").Output()
			file := dump.Stop()
			if err != nil {
				t.Fatalf("iperf3: %v: %s", err, out)
			}
			var ip struct {
				End struct {
					SumSent struct {
						Retransmits int `json:"retransmits"`
					} `json:"sum_sent"`
				} `json:"end"`
			}
			if err := json.Unmarshal(out, &ip); err != nil {
				t.Fatalf("iperf3 json: %v", err)
			}
			a := analyzeFile(t, file)
			tv := tsharkAnalyze(t, file)
			repeats, dataSegs := tv.repeats, tv.data
			ours := int(a.Totals.Retransmissions)
			// The bulk flow's retransmissions alone, for iperf3's Retr.
			var bulk uint64
			a.Table.Each(func(f *tcpanalysis.Flow) {
				if s := f.Stats(f.Client); s.PayloadBytes > 1<<20 {
					bulk = s.Retransmissions
				}
			})
			tsDup := tv.count("tcp.analysis.duplicate_ack")
			tsPackets := tv.frames
			t.Logf("loss %d%%: packets ours=%d tshark=%d; data segments %d; retransmissions ours=%d repeated(port,seq,len)=%d iperf3 Retr=%d (bulk flow ours=%d); dup ACKs ours=%d tshark=%d; fast=%d",
				pct, a.Totals.Packets, tsPackets, dataSegs, ours, repeats, ip.End.SumSent.Retransmits, bulk,
				a.Totals.DuplicateAcks, tsDup, a.Totals.FastRetransmissions)
			if int(a.Totals.Packets) != tsPackets {
				t.Errorf("packets: ours %d, tshark %d", a.Totals.Packets, tsPackets)
			}
			if repeats == 0 {
				t.Fatalf("no retransmissions in the capture: the loss rule did not work")
			}
			if !within(ours, repeats, 0.01, 1) {
				t.Errorf("retransmissions %d not within 1%% of repeated segments %d", ours, repeats)
			}
			if !within(int(bulk), ip.End.SumSent.Retransmits, 0.10, 3) {
				t.Errorf("bulk flow retransmissions %d not within 10%% of iperf3 Retr %d", bulk, ip.End.SumSent.Retransmits)
			}
			if !within(int(a.Totals.DuplicateAcks), tsDup, 0.01, 1) {
				t.Errorf("duplicate ACKs %d, tshark %d", a.Totals.DuplicateAcks, tsDup)
			}
			// Frame by frame: the same packets carry the same flags.
			ev := frameEvents(t, file)
			retransOrOOO := map[int]bool{}
			for f := range tv.flagged["tcp.analysis.retransmission"] {
				retransOrOOO[f] = true
			}
			for f := range tv.flagged["tcp.analysis.out_of_order"] {
				retransOrOOO[f] = true
			}
			for _, c := range []struct {
				filter string
				frames map[int]bool
				mask   tcpanalysis.Events
			}{
				{"tcp.analysis.duplicate_ack", tv.flagged["tcp.analysis.duplicate_ack"], tcpanalysis.EvDuplicateAck},
				{"tcp.analysis.fast_retransmission", tv.flagged["tcp.analysis.fast_retransmission"], tcpanalysis.EvFastRetransmission},
				// our retransmissions = tshark's retransmissions + out-of-order
				// segments repeating earlier bytes (docs/analyze.md)
				{"tcp.analysis.retransmission || tcp.analysis.out_of_order", retransOrOOO, tcpanalysis.EvRetransmission | tcpanalysis.EvOutOfOrder},
			} {
				ts := c.frames
				var missing, extra []int
				for f := range ts {
					if ev[f]&c.mask == 0 {
						missing = append(missing, f)
					}
				}
				for f, e := range ev {
					if e&c.mask != 0 && !ts[f] {
						extra = append(extra, f)
					}
				}
				if len(missing)+len(extra) > 0 {
					t.Errorf("%s: %d frames flagged by tshark only (e.g. %v), %d by us only (e.g. %v)",
						c.filter, len(missing), head(missing), len(extra), head(extra))
				}
			}
		})
	}
}

// TestLabZeroWindowAndResets makes a receiver that stops reading (tiny
// SO_RCVBUF, never reads), so the sender hits a zero window and probes it;
// then RSTs from both sides. Counts must agree with tshark on the file.
func TestLabZeroWindowAndResets(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test")
	}
	requireLabTools(t)
	p := newLabPair(t, 90)
	var ln net.Listener
	err := p.Srv.Do(func() error {
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
			if err != nil {
				return err
			}
			return serr
		}}
		var err error
		ln, err = lc.Listen(context.Background(), "tcp4", p.SrvIP+":7000")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c // never read
		}
	}()
	dump := p.Cli.StartTcpdump(t, p.CliIf, testlab.TcpdumpOptions{Snaplen: 128, Filter: "tcp"})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := p.Cli.Dial(ctx, "tcp4", p.SrvIP+":7000")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	_ = c.SetWriteDeadline(time.Now().Add(1500 * time.Millisecond))
	for {
		if _, err := c.Write(buf); err != nil {
			break // the window closed and the send buffer filled up
		}
	}
	// RST from the client: close with SO_LINGER 0.
	_ = c.(*net.TCPConn).SetLinger(0)
	_ = c.Close()
	// RST from the server: connect to a closed port, three times.
	for i := 0; i < 3; i++ {
		if c2, err := p.Cli.Dial(ctx, "tcp4", p.SrvIP+":7001"); err == nil {
			_ = c2.Close()
		}
	}
	time.Sleep(200 * time.Millisecond)
	file := dump.Stop()

	a := analyzeFile(t, file)
	tv := tsharkAnalyze(t, file)
	tsZW := tv.count("tcp.analysis.zero_window")
	tsZWP := tv.count("tcp.analysis.zero_window_probe")
	tsRST := tv.count("tcp.flags.reset")
	tsDup := tv.count("tcp.analysis.duplicate_ack")
	tsKA := tv.count("tcp.analysis.keep_alive")
	tsWF := tv.count("tcp.analysis.window_full")
	t.Logf("keep-alives (Linux window probes) ours=%d tshark=%d; window full ours=%d tshark=%d", a.Totals.KeepAlives, tsKA, a.Totals.WindowFull, tsWF)
	if int(a.Totals.KeepAlives) != tsKA || int(a.Totals.WindowFull) != tsWF {
		t.Errorf("keep-alives %d/%d or window full %d/%d differ from tshark", a.Totals.KeepAlives, tsKA, a.Totals.WindowFull, tsWF)
	}
	t.Logf("zero windows ours=%d tshark=%d; probes ours=%d tshark=%d; resets ours=%d tshark=%d; dup ACKs ours=%d tshark=%d",
		a.Totals.ZeroWindows, tsZW, a.Totals.ZeroWindowProbes, tsZWP, a.Totals.Resets, tsRST, a.Totals.DuplicateAcks, tsDup)
	if tsZW == 0 {
		t.Fatalf("no zero window in the capture: the receiver did not stall")
	}
	if int(a.Totals.ZeroWindows) != tsZW {
		t.Errorf("zero windows: ours %d, tshark %d", a.Totals.ZeroWindows, tsZW)
	}
	if int(a.Totals.ZeroWindowProbes) != tsZWP {
		t.Errorf("zero-window probes: ours %d, tshark %d", a.Totals.ZeroWindowProbes, tsZWP)
	}
	if int(a.Totals.Resets) != tsRST || tsRST < 4 {
		t.Errorf("resets: ours %d, tshark %d (want >= 4)", a.Totals.Resets, tsRST)
	}
	if int(a.Totals.DuplicateAcks) != tsDup {
		t.Errorf("dup ACKs: ours %d, tshark %d", a.Totals.DuplicateAcks, tsDup)
	}
	var byClient, byServer int
	a.Table.Each(func(f *tcpanalysis.Flow) {
		switch tcpanalysis.Report(f).ResetBy {
		case "client":
			byClient++
		case "server":
			byServer++
		}
	})
	if byClient != 1 || byServer != 3 {
		t.Errorf("flows reset by client=%d server=%d, want 1 and 3", byClient, byServer)
	}
}
