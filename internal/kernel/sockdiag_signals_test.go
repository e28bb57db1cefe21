package kernel

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netsight/netsight/internal/testlab"
)

const zeroWindowFixture = "testdata/inet_diag_info_zerowin.bin"

// TestParseTCPInfoCaptured decodes a sock_diag dump with tcp_info recorded
// on the 6.18 CI kernel (re-record with -record as root): a lab namespace
// with a listener on 10.79.0.2:7001 that accepted one connection and never
// reads it, and the client that wrote until its send buffer was full. The
// receiver's socket holds the unread bytes (idiag_rqueue) and advertises a
// zero window; the sender sees the zero window, has bytes not sent and has
// spent time limited by the peer's receive window.
func TestParseTCPInfoCaptured(t *testing.T) {
	if *record {
		recordZeroWindow(t)
	}
	b, err := os.ReadFile(zeroWindowFixture)
	if err != nil {
		t.Fatal(err)
	}
	var recv, send *Socket
	_, err = eachNetlinkMessage(b, func(off int, msg []byte) error {
		s, err := ParseMessage(msg)
		if err != nil {
			t.Fatalf("offset %d: %v", off, err)
		}
		switch {
		case s.State == 1 && s.Local.Port() == 7001:
			recv = &s
		case s.State == 1 && s.Remote.Port() == 7001:
			send = &s
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if recv == nil || send == nil {
		t.Fatalf("receiver %v sender %v", recv, send)
	}
	t.Logf("receiver: rqueue %d rcv_wnd %d; sender: snd_wnd %d notsent %d rwnd_limited %dus busy %dus sndbuf_limited %dus delivery %dB/s",
		recv.RQueue, recv.Info.RcvWnd, send.Info.SndWnd, send.Info.NotsentBytes, send.Info.RwndLimited, send.Info.BusyTime, send.Info.SndbufLimited, send.Info.DeliveryRate)
	for _, c := range []struct {
		what string
		ok   bool
	}{
		{"receiver: unread bytes in idiag_rqueue", recv.RQueue > 0},
		{"receiver: rqueue equals bytes received (nothing read)", uint64(recv.RQueue) == recv.Info.BytesReceived},
		{"receiver: advertises a zero window", recv.Info.HasRcvWnd && recv.Info.RcvWnd == 0},
		{"sender: peer window zero", send.Info.HasSndWnd && send.Info.SndWnd == 0},
		{"sender: bytes not sent", send.Info.NotsentBytes > 0},
		{"sender: time limited by the peer's receive window", send.Info.HasChrono && send.Info.RwndLimited > 0},
		{"sender: busy at least as long as rwnd-limited", send.Info.BusyTime >= send.Info.RwndLimited},
		{"sender: all acked bytes were received", send.Info.BytesAcked == recv.Info.BytesReceived+1},
		{"sender: delivery rate measured", send.Info.DeliveryRate > 0},
	} {
		if !c.ok {
			t.Errorf("%s: no", c.what)
		}
	}
}

func recordZeroWindow(t *testing.T) {
	testlab.RequireRoot(t)
	ns := testlab.NewNetNS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := ns.Run(ctx, "ip", "addr", "add", "10.79.0.2/32", "dev", "lo"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	ln, err := ns.ListenTCP("10.79.0.2:7001")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := ns.Dial(ctx, "tcp4", "10.79.0.2:7001")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Write until the send buffer is full (the write blocks), then let the
	// zero-window probes run a moment.
	_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64<<10)
	for {
		if _, err := c.Write(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				break
			}
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	var all []byte
	err = ns.Do(func() error {
		d := &SockDiag{tap: func(b []byte) { all = append(all, b...) }}
		dump, err := d.Start(ctx, SockDiagRequest{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP, States: 1 << 1, Info: true})
		if err != nil {
			return err
		}
		return dump.EachMessage(ctx, func(int, []byte) error { return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", filepath.Base(zeroWindowFixture)), all, 0o644); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkParseMessage is the cost of decoding one sock_diag answer with
// the full 6.18 tcp_info (the per-flow cost of a poll's parse).
func BenchmarkParseMessage(b *testing.B) {
	raw, err := os.ReadFile(zeroWindowFixture)
	if err != nil {
		b.Fatal(err)
	}
	var msgs [][]byte
	if _, err := eachNetlinkMessage(raw, func(_ int, m []byte) error { msgs = append(msgs, m); return nil }); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := ParseMessage(msgs[i%len(msgs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkParseTCPInfo is the cost of decoding the 6.18 tcp_info (248
// bytes) alone; the per-connection signals are part of it, so the whole
// bounds what they add per flow.
func BenchmarkParseTCPInfo(b *testing.B) {
	info := tcpInfo(248)
	for b.Loop() {
		if _, err := ParseTCPInfo(info); err != nil {
			b.Fatal(err)
		}
	}
}
