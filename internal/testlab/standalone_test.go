package testlab

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestIsICMPEchoRequest(t *testing.T) {
	eth := func(etype uint16, payload []byte) []byte {
		b := []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, byte(etype >> 8), byte(etype)}
		return append(b, payload...)
	}
	// IPv4 header of 20 bytes (protocol at 9, flags/fragment offset at
	// 6..7) followed by 8 bytes of ICMP starting with its type.
	v4 := func(proto byte, fragOff uint16, icmpType byte) []byte {
		ip := make([]byte, 28)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[6:], fragOff)
		ip[9] = proto
		ip[20] = icmpType
		return eth(0x0800, ip)
	}
	// IPv6 header of 40 bytes (next header at 6) followed by 8 bytes.
	v6 := func(next, icmpType byte) []byte {
		ip := make([]byte, 48)
		ip[0] = 0x60
		ip[6] = next
		ip[40] = icmpType
		return eth(0x86dd, ip)
	}
	tests := []struct {
		name  string
		frame []byte
		want  bool
	}{
		{"v4 echo request", v4(1, 0, 8), true},
		{"v4 echo request, DF", v4(1, 0x4000, 8), true},
		{"v4 echo reply", v4(1, 0, 0), false},
		{"v4 unreachable", v4(1, 0, 3), false},
		{"v4 later fragment", v4(1, 185, 8), false},
		{"v4 udp", v4(17, 0, 8), false},
		{"v6 echo request", v6(58, 128), true},
		{"v6 echo reply", v6(58, 129), false},
		{"v6 neighbour solicitation", v6(58, 135), false},
		{"v6 MLDv2 report", v6(58, 143), false},
		{"v6 udp", v6(17, 128), false},
		{"arp", eth(0x0806, []byte{0, 1, 8, 0, 6, 4, 0, 1}), false},
		{"short", []byte{1, 2, 3}, false},
		{"truncated v4", eth(0x0800, []byte{0x45, 0}), false},
		{"v4 header only", v4(1, 0, 8)[:14+20], false},
	}
	for _, tc := range tests {
		if got := IsICMPEchoRequest(tc.frame); got != tc.want {
			t.Errorf("%s: IsICMPEchoRequest = %v, want %v (% x)", tc.name, got, tc.want, tc.frame)
		}
	}
}

// TestStandalone builds a lab without a testing.TB (as bench programs do)
// and checks that Close removes it.
func TestStandalone(t *testing.T) {
	RequireRoot(t)
	a, err := CreateNetNS()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := CreateNetNS()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	l, err := Connect(a, b)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := b.ListenTCP(netip.AddrPortFrom(l.B.Addr4(), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// A raw socket made by ns.Socket lives in a: it reaches b's listener.
	fd, err := a.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "probe")
	defer f.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: l.B.Addr4().As4()}); err != nil {
		t.Fatalf("connect from the socket made in %s: %v", a, err)
	}
	rule, err := b.NewLossRule(Ingress, 0, OnDevice(l.B.Name), Proto("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(fd, []byte("x")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if matched, _, err := rule.Counters(); err != nil || matched == 0 {
		t.Errorf("count-only rule: matched %d, err %v", matched, err)
	}
	if err := rule.Remove(); err != nil {
		t.Error(err)
	}
	for _, ns := range []*NetNS{a, b} {
		if err := ns.Close(); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(filepath.Join(NetnsDir, ns.Name)); !os.IsNotExist(err) {
			t.Errorf("%s still exists after Close: %v", ns, err)
		}
	}
}

// TestRelayLossMatch: with LossMatch = IsICMPEchoRequest and 100% loss,
// every echo request is dropped while TCP crosses untouched, and the relay
// counts exactly the echo requests as DroppedLoss. The path is built with
// CreateRelayedPath and closed by hand.
func TestRelayLossMatch(t *testing.T) {
	RequireRoot(t)
	RequireBinary(t, "ping")
	t.Parallel()
	p, err := CreateRelayedPath(RelayConfig{
		ClientToServer: Impairment{LossPercent: 100},
		LossMatch:      IsICMPEchoRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ln, err := p.Server.ListenTCP(netip.AddrPortFrom(p.ServerEnd.Addr4(), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for i := range 5 {
		c, err := p.Client.Dial(ctx, "tcp", ln.Addr().String())
		if err != nil {
			t.Fatalf("TCP connection %d through the relay: %v", i, err)
		}
		c.Close()
	}
	before := p.Relay.Stats().ClientToServer.DroppedLoss
	r, err := p.Client.Ping(ctx, p.ServerEnd.Addr4(), PingOptions{Count: 20, Interval: 5 * time.Millisecond, Wait: 200 * time.Millisecond})
	if err != nil && r == nil {
		t.Fatal(err)
	}
	st := p.Relay.Stats()
	t.Logf("ping: %d/%d replies; relay %+v", r.Received, r.Transmitted, st)
	if r.Transmitted != 20 || r.Received != 0 {
		t.Errorf("ping: %d/%d replies, want 0/20", r.Received, r.Transmitted)
	}
	if got := st.ClientToServer.DroppedLoss - before; got != 20 {
		t.Errorf("relay dropped %d echo requests, want 20", got)
	}
	if err := p.Close(); err != nil {
		t.Error(err)
	}
	for _, ns := range []*NetNS{p.Client, p.Middle, p.Server} {
		if _, err := os.Stat(filepath.Join(NetnsDir, ns.Name)); !os.IsNotExist(err) {
			t.Errorf("%s still exists after Close: %v", ns, err)
		}
	}
}
