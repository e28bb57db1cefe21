package sockdiag

import (
	"context"
	"math"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/internal/testlab"
)

// runIn runs a Backend watching ns into a fresh table until the test ends,
// polling every `every`.
func runIn(t *testing.T, ns *testlab.NetNS, every time.Duration) (*Backend, *flow.Table) {
	t.Helper()
	f, err := os.Open("/run/netns/" + ns.Name)
	if err != nil {
		t.Fatalf("open netns %s: %v", ns.Name, err)
	}
	t.Cleanup(func() { f.Close() })
	b := New(Options{NetNS: int(f.Fd()), ProcRoot: "/proc"})
	tab := flow.NewTable(flow.Config{Retention: 5 * time.Minute})
	sink := func(r flow.Record) { tab.Upsert(r, time.Now()) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		if err := b.Run(ctx, sink); err != nil {
			t.Errorf("destroy watch: %v", err)
		}
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tk.C:
				if err := b.Poll(ctx, now, sink); err != nil && ctx.Err() == nil {
					t.Errorf("poll: %v", err)
					return
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done; <-done })
	time.Sleep(100 * time.Millisecond) // let the destroy watch join its groups
	return b, tab
}

func waitFlow(t *testing.T, tab *flow.Table, timeout time.Duration, f flow.Filter, ok func(flow.Record) bool) flow.Record {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last []flow.Record
	for time.Now().Before(deadline) {
		last = tab.Flows(f)
		for _, r := range last {
			if ok(r) {
				return r
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no matching flow within %s; have %+v", timeout, last)
	return flow.Record{}
}

// TestLabIperf3Loss: the iperf3 loss experiment with the sock_diag back end. The
// long-lived flow's retransmissions come from tcp_info (polled while open,
// final value from the destroy notification) and must be within 2% of
// iperf3's Retr.
func TestLabIperf3Loss(t *testing.T) {
	testlab.RequireRoot(t)
	testlab.RequireBinary(t, "iperf3")
	p := testlab.NewPair(t)
	b, tab := runIn(t, p.A, time.Second)
	srv := testlab.StartIperf3Server(t, p.B, 60*time.Second)
	p.B.AddLoss(t, testlab.Ingress, 5, testlab.OnDevice(p.Link.B.Name), testlab.Proto("tcp"), testlab.DstPort(srv.Port))
	res, err := testlab.RunIperf3(context.Background(), p.A, netip.AddrPortFrom(p.Link.B.Addr4(), srv.Port),
		testlab.Iperf3Options{Duration: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Streams) != 1 || res.Retransmits < 50 {
		t.Fatalf("iperf3: %d streams, Retr %d: the loss did not bite", len(res.Streams), res.Retransmits)
	}
	st := res.Streams[0]
	r := waitFlow(t, tab, 10*time.Second, flow.Filter{Port: st.Local.Port()},
		func(r flow.Record) bool { return r.Closed && r.Local.Port() == st.Local.Port() })
	t.Logf("iperf3 Retr %d, flow retransmissions %d, rtos %d, bytes sent %d (iperf3 %d), srtt %s, stats %+v",
		res.Retransmits, r.Retransmits, r.RTOs, r.BytesSent, res.SentBytes, r.SRTT, b.Stats())
	if math.Abs(float64(r.Retransmits)-float64(res.Retransmits)) > 0.02*float64(res.Retransmits) {
		t.Errorf("flow retransmissions %d, iperf3 Retr %d: more than 2%% apart", r.Retransmits, res.Retransmits)
	}
	if r.Direction != flow.DirClient || r.Comm != "iperf3" {
		t.Errorf("flow: direction %s comm %q", r.Direction, r.Comm)
	}
}

// TestLabShortConns: with destroy notifications, short connections opened
// and closed between two polls are still counted with their bytes.
func TestLabShortConns(t *testing.T) {
	testlab.RequireRoot(t)
	p := testlab.NewPair(t)
	b, tab := runIn(t, p.A, time.Second)
	srv := p.B.StartEchoServer(t, p.Link.B.Addr4().String()+":0")
	const n, size = 1000, 1000
	results, err := p.A.ShortConns(context.Background(), testlab.ShortConnsConfig{
		Target: srv.Addr(), Count: n, Bytes: size, Concurrency: 50, Timeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ports := map[uint16]bool{}
	for _, r := range results {
		if r.Err != nil {
			t.Fatalf("connection %d: %v", r.Index, r.Err)
		}
		ports[r.Local.Port()] = true
	}
	var got int
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		got = 0
		for _, r := range tab.Flows(flow.Filter{Port: srv.Addr().Port()}) {
			if r.Closed && ports[r.Local.Port()] && r.BytesSent >= size+1 && r.BytesSent <= size+2 &&
				r.BytesReceived >= size && r.BytesReceived <= size+1 {
				got++
			}
		}
		if got == n {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	st := b.Stats()
	t.Logf("closed with bytes: %d of %d; stats %+v", got, n, st)
	if got != n && st.DestroyLost == 0 {
		t.Errorf("closed client flows with their bytes: %d, want %d", got, n)
	}
}

// TestLabRefused: a refused connect is a connect failure.
func TestLabRefused(t *testing.T) {
	testlab.RequireRoot(t)
	p := testlab.NewPair(t)
	_, tab := runIn(t, p.A, time.Second)
	target := netip.AddrPortFrom(p.Link.B.Addr4(), 9)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.A.Dial(ctx, "tcp", target.String()); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("dial %s: %v, want refused", target, err)
	}
	r := waitFlow(t, tab, 5*time.Second, flow.Filter{Port: 9}, func(r flow.Record) bool { return r.Closed })
	if !r.ConnectFailed || r.Direction != flow.DirClient || r.ConnectResult != "refused" {
		t.Errorf("refused flow: %+v", r)
	}
	if got := tab.Totals().ConnectFailures[flow.DirClient]; got != 1 {
		t.Errorf("connect failures %d, want 1", got)
	}
	// The record names the watched namespace, not the agent's.
	want := flow.NetNSInode("/run/netns/" + p.A.Name)
	if want == 0 || r.NetNS != want || want == flow.NetNSInode("/proc/self/ns/net") {
		t.Errorf("refused flow netns %d, want %d (the lab namespace %s)", r.NetNS, want, p.A.Name)
	}
}
