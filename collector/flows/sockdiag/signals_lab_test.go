package sockdiag

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/internal/testlab"
)

// TestLabZeroWindow: a server that accepts and never reads, a client that
// writes until its send buffer is full. The receiver's record holds the
// unread bytes (equal to ss's Recv-Q) and counts zero-window samples with
// RcvWnd 0; the sender's sees the peer's zero window and time limited by
// it.
func TestLabZeroWindow(t *testing.T) {
	testlab.RequireRoot(t)
	testlab.RequireBinary(t, "ss")
	p := testlab.NewPair(t)
	_, sendTab := runIn(t, p.A, 200*time.Millisecond)
	_, recvTab := runIn(t, p.B, 200*time.Millisecond)
	ln, err := p.B.ListenTCP(net.JoinHostPort(p.Link.B.Addr4().String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := p.A.Dial(ctx, "tcp", netip.AddrPortFrom(p.Link.B.Addr4(), port).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer srv.Close()
	_ = c.SetWriteDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64<<10)
	var sent int
	for {
		n, err := c.Write(buf)
		sent += n
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			t.Fatal(err)
		}
	}
	// A few polls with both windows closed.
	recv := waitFlow(t, recvTab, 5*time.Second, flow.Filter{Port: port}, func(r flow.Record) bool {
		return r.Direction == flow.DirServer && r.ZeroWindowSent >= 3
	})
	snd := waitFlow(t, sendTab, 5*time.Second, flow.Filter{Port: port}, func(r flow.Record) bool {
		return r.Direction == flow.DirClient && r.ZeroWindowReceived >= 3
	})
	out, err := p.B.Run(ctx, "ss", "-tnH", "state", "established", "sport", "=", ":"+strconv.Itoa(int(port)))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(out)
	if len(f) < 1 {
		t.Fatalf("ss: %q", out)
	}
	ssRecvQ, _ := strconv.ParseUint(f[0], 10, 32)
	// The queue does not move any more (nothing reads, the window is shut),
	// but re-read the record after ss to compare the same moment.
	recv = waitFlow(t, recvTab, time.Second, flow.Filter{Port: port}, func(r flow.Record) bool { return r.Direction == flow.DirServer })
	t.Logf("sent %d; receiver: recv_queue %d (ss Recv-Q %d) rcv_wnd %d zero_window_sent %d; sender: snd_wnd %d rwnd_limited %s busy %s zero_window_received %d delivery %d B/s",
		sent, recv.RecvQueue, ssRecvQ, recv.RcvWnd, recv.ZeroWindowSent, snd.SndWnd, snd.RwndLimited, snd.BusyTime, snd.ZeroWindowReceived, snd.DeliveryRate)
	if recv.RecvQueue == 0 || uint64(recv.RecvQueue) != ssRecvQ {
		t.Errorf("receiver recv_queue %d, ss Recv-Q %d", recv.RecvQueue, ssRecvQ)
	}
	if uint64(recv.RecvQueue) != recv.BytesReceived {
		t.Errorf("receiver recv_queue %d, bytes received %d: nothing was read", recv.RecvQueue, recv.BytesReceived)
	}
	if recv.RcvWnd != 0 {
		t.Errorf("receiver rcv_wnd %d, want 0", recv.RcvWnd)
	}
	if snd.SndWnd != 0 || snd.RwndLimited <= 0 || snd.BusyTime < snd.RwndLimited || snd.SndbufLimited > snd.RwndLimited {
		t.Errorf("sender snd_wnd %d rwnd_limited %s busy %s sndbuf_limited %s", snd.SndWnd, snd.RwndLimited, snd.BusyTime, snd.SndbufLimited)
	}
	if snd.BytesSent != recv.BytesReceived+1 && snd.BytesSent != recv.BytesReceived {
		t.Errorf("sender bytes acked %d, receiver bytes received %d", snd.BytesSent, recv.BytesReceived)
	}
}

// TestLabConnectTimeout: SYNs dropped on the way (nftables at the server's
// ingress), the client gives up after 1.5s (one SYN retransmission): the
// closed record is a failed connect with result timeout.
func TestLabConnectTimeout(t *testing.T) {
	testlab.RequireRoot(t)
	p := testlab.NewPair(t)
	_, tab := runIn(t, p.A, time.Second)
	const port = 7777
	p.Link.B.AddLoss(t, testlab.Ingress, 100, testlab.TCPDstPort(port))
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if c, err := p.A.Dial(ctx, "tcp", netip.AddrPortFrom(p.Link.B.Addr4(), port).String()); err == nil {
		c.Close()
		t.Fatal("connect through a SYN drop succeeded")
	}
	r := waitFlow(t, tab, 5*time.Second, flow.Filter{Port: port}, func(r flow.Record) bool { return r.Closed })
	if !r.ConnectFailed || r.ConnectResult != "timeout" || r.SynRetransmits < 1 {
		t.Errorf("timed-out connect: failed %v result %q syn retransmits %d", r.ConnectFailed, r.ConnectResult, r.SynRetransmits)
	}
}
