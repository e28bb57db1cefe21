package health

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

type fakeDrops map[uint32]map[string]uint64

func (f fakeDrops) DropsByNetNS() map[uint32]map[string]uint64 { return f }

type fakeNIC map[string]map[string]uint64

func (f fakeNIC) AllowanceExceeded() map[string]map[string]uint64 { return f }

// TestHostReader reads this process's own namespace: netstat from procfs,
// drops and allowances from read interfaces, and a real listener whose
// accept queue is full (backlog 1, never accepting) from sock_diag.
func TestHostReader(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	port := sa.(*unix.SockaddrInet4).Port
	lAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 2 { // backlog 1 holds two established connections (queue > backlog is full)
		c, err := net.DialTimeout("tcp", lAddr.String(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}

	ns, err := ownNetNS()
	if err != nil {
		t.Fatal(err)
	}
	r := &HostReader{Sources: func(name string) any {
		switch name {
		case "drops":
			return fakeDrops{ns: {"NETFILTER_DROP": 7}, ns + 1: {"NETFILTER_DROP": 99}}
		case "nic":
			return fakeNIC{"ens5": {"bw_out_allowance_exceeded": 97}}
		}
		return nil
	}, Warn: func(part string, err error) { t.Logf("%s: %v", part, err) }}
	var h Host
	deadline := time.Now().Add(3 * time.Second)
	for {
		h = r.Read(context.Background(), time.Now())
		if len(h.Listeners) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, ok := h.Netstat["ListenOverflows"]; !ok {
		t.Errorf("netstat without ListenOverflows (TcpExt prefix not stripped?): %d keys", len(h.Netstat))
	}
	if h.Drops["NETFILTER_DROP"] != 7 {
		t.Errorf("drops of own namespace: %v", h.Drops)
	}
	if len(h.NICs) != 1 || h.NICs[0].Name != "ens5" || h.NICs[0].Exceeded["bw_out_allowance_exceeded"] != 97 {
		t.Errorf("NICs %v", h.NICs)
	}
	if h.Conntrack != nil {
		t.Errorf("conntrack read without the conntrack collector: %+v", h.Conntrack)
	}
	var found bool
	for _, l := range h.Listeners {
		if l.Addr == lAddr {
			found = true
			if l.Backlog != 1 || l.Queue < 1 {
				t.Errorf("listener %+v: want backlog 1 and a queue", l)
			}
		}
	}
	if !found {
		t.Errorf("full listener %s not found in %+v", lAddr, h.Listeners)
	}
}

func TestDecodeListenerShort(t *testing.T) {
	if _, ok := decodeListener(make([]byte, 71)); ok {
		t.Error("decoded a short message")
	}
	msg := make([]byte, 72)
	msg[0] = 99
	if _, ok := decodeListener(msg); ok {
		t.Error("decoded an unknown family")
	}
}
