package flows

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/internal/testlab"
)

// ssInfo runs `ss -tni` in ns for the socket with local port lport and
// returns its Recv-Q and the rwnd_limited time (0 when absent).
func ssInfo(t *testing.T, ns *testlab.NetNS, lport uint16) (recvQ uint64, rwndLimited time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := ns.Run(ctx, "ss", "-Htni", "sport = :"+strconv.Itoa(int(lport)))
	if err != nil {
		t.Fatalf("ss: %v: %s", err, out)
	}
	f := strings.Fields(out)
	if len(f) < 3 {
		t.Fatalf("ss output %q", out)
	}
	recvQ, err = strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		t.Fatalf("ss Recv-Q %q: %v", f[1], err)
	}
	if m := regexp.MustCompile(`rwnd_limited:(\d+)ms`).FindStringSubmatch(out); m != nil {
		ms, _ := strconv.ParseUint(m[1], 10, 64)
		rwndLimited = time.Duration(ms) * time.Millisecond
	}
	return recvQ, rwndLimited
}

// TestLabReceiverStallEBPF: a receiver that never reads. Its side of the
// connection shows the receive queue (equal to ss's Recv-Q) and zero-window
// samples; the sender's side shows time limited by the peer's receive
// window (at most ss's rwnd_limited read just after, and within a second of
// it), zero-window samples received and a zero send window.
func TestLabReceiverStallEBPF(t *testing.T) {
	testlab.RequireRoot(t)
	testlab.RequireBinary(t, "ss")
	c := startCollector(t, BackendEBPF)
	p := testlab.NewPair(t)
	ln, err := p.B.ListenTCP(netip.AddrPortFrom(p.Link.B.Addr4(), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		s, err := ln.Accept()
		if err == nil {
			accepted <- s // never read
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := p.A.Dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var srv net.Conn
	select {
	case srv = <-accepted:
	case <-ctx.Done():
		t.Fatal("no accept")
	}
	defer srv.Close()
	local := conn.LocalAddr().(*net.TCPAddr).AddrPort()
	srvPort := srv.LocalAddr().(*net.TCPAddr).AddrPort().Port()

	// Write until both buffers are full: the write blocks and times out.
	buf := make([]byte, 64<<10)
	_ = conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	sent := 0
	for {
		n, err := conn.Write(buf)
		sent += n
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal(err)
			}
			break
		}
	}
	// Let the window stay closed a while, sampling as the agent would.
	for range 3 {
		time.Sleep(300 * time.Millisecond)
		if err := c.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ssQ, _ := ssInfo(t, p.B, srvPort)
	_, ssRwnd := ssInfo(t, p.A, local.Port())
	var cli, sv flow.Record
	for _, r := range c.Table().Flows(flow.Filter{Port: srvPort}) {
		switch {
		case r.Direction == flow.DirClient && r.Local == local:
			cli = r
		case r.Direction == flow.DirServer && r.Local.Port() == srvPort && r.Remote == local:
			sv = r
		}
	}
	t.Logf("wrote %d bytes; server: recv_queue %d rcv_wnd %d zero_window_sent %d (ss Recv-Q %d); client: rwnd_limited %s (ss %s) busy %s snd_wnd %d zero_window_received %d delivery_rate %d B/s",
		sent, sv.RecvQueue, sv.RcvWnd, sv.ZeroWindowSent, ssQ, cli.RwndLimited, ssRwnd, cli.BusyTime, cli.SndWnd, cli.ZeroWindowReceived, cli.DeliveryRate)
	if sv.ID == 0 || cli.ID == 0 {
		t.Fatalf("missing records: client %+v server %+v", cli, sv)
	}
	if sv.RecvQueue == 0 || uint64(sv.RecvQueue) != ssQ {
		t.Errorf("server recv_queue %d, ss Recv-Q %d", sv.RecvQueue, ssQ)
	}
	if sv.ZeroWindowSent == 0 || sv.RcvWnd != 0 {
		t.Errorf("server zero_window_sent %d rcv_wnd %d, want > 0 and 0", sv.ZeroWindowSent, sv.RcvWnd)
	}
	if cli.RwndLimited <= 0 || cli.RwndLimited > ssRwnd || ssRwnd-cli.RwndLimited > time.Second {
		t.Errorf("client rwnd_limited %s, ss %s read just after", cli.RwndLimited, ssRwnd)
	}
	if cli.BusyTime < cli.RwndLimited || cli.ZeroWindowReceived == 0 || cli.SndWnd != 0 || cli.DeliveryRate == 0 {
		t.Errorf("client busy %s zero_window_received %d snd_wnd %d delivery_rate %d", cli.BusyTime, cli.ZeroWindowReceived, cli.SndWnd, cli.DeliveryRate)
	}

	// At close the same signals arrive with the final record.
	srv.Close()
	r := waitFlow(t, c, 5*time.Second, flow.Filter{Port: srvPort, Direction: flow.DirServer},
		func(r flow.Record) bool { return r.Remote == local && r.Closed })
	if r.ZeroWindowSent < sv.ZeroWindowSent || r.RecvQueue == 0 {
		t.Errorf("server record at close: zero_window_sent %d recv_queue %d", r.ZeroWindowSent, r.RecvQueue)
	}
}

// TestLabConnectResultEBPF: a refused connect and one that times out (SYNs
// dropped, the dialer gives up) carry the right ConnectResult; a connect
// that succeeds carries none.
func TestLabConnectResultEBPF(t *testing.T) {
	testlab.RequireRoot(t)
	testlab.RequireBinary(t, "nft")
	c := startCollector(t, BackendEBPF)
	p := testlab.NewPair(t)
	const dropPort = 9999
	p.Link.B.AddLoss(t, testlab.Ingress, 100, testlab.TCPDstPort(dropPort))
	srv := p.B.StartSinkServer(t, p.Link.B.Addr4().String()+":0")
	for _, tc := range []struct {
		port   uint16
		result string
		failed bool
	}{
		{9, "refused", true},
		{dropPort, "timeout", true},
		{srv.Addr().Port(), "", false},
	} {
		target := netip.AddrPortFrom(p.Link.B.Addr4(), tc.port)
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		conn, err := p.A.Dial(ctx, "tcp", target.String())
		cancel()
		if (err != nil) != tc.failed {
			t.Fatalf("dial %s: %v", target, err)
		}
		if conn != nil {
			conn.Close()
		}
		r := waitFlow(t, c, 5*time.Second, flow.Filter{Remote: netip.PrefixFrom(target.Addr(), 32), Port: tc.port, Direction: flow.DirClient},
			func(r flow.Record) bool { return r.Closed })
		if r.ConnectFailed != tc.failed || r.ConnectResult != tc.result {
			t.Errorf("port %d: connect_failed %v connect_result %q, want %v %q", tc.port, r.ConnectFailed, r.ConnectResult, tc.failed, tc.result)
		}
	}
}
