package testlab

import (
	"context"
	"encoding/binary"
	"net"
	"os"
	"testing"
)

// TestLabTcpdump: a capture started with StartTcpdump sees every SYN of
// connections made right after it returns, and WaitListening sees the
// server's port.
func TestLabTcpdump(t *testing.T) {
	RequireRoot(t)
	RequireBinary(t, "tcpdump")
	ns := NewNetNS(t)
	srv := ns.StartEchoServer(t, "127.0.0.1:0")
	ns.WaitListening(t, srv.Addr().Port())
	d := ns.StartTcpdump(t, "lo", TcpdumpOptions{Snaplen: 128, BufferKiB: 4096, Filter: "tcp"})
	const conns = 3
	res, err := ns.ShortConns(context.Background(), ShortConnsConfig{Target: srv.Addr(), Count: conns, Bytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	file := d.Stop()
	if d.Stop() != file || d.File() != file {
		t.Error("Stop is not idempotent")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	syns, packets := countSYNs(t, data)
	if syns != conns {
		t.Errorf("capture has %d SYNs in %d packets, want %d", syns, packets, conns)
	}
}

// countSYNs counts the SYN (not SYN-ACK) segments in a little-endian,
// Ethernet-linktype pcap of IPv4 TCP (what tcpdump writes for lo).
func countSYNs(t *testing.T, data []byte) (syns, packets int) {
	t.Helper()
	if len(data) < 24 || binary.LittleEndian.Uint32(data) != 0xa1b2c3d4 {
		t.Fatalf("not a little-endian microsecond pcap: % x", data[:min(len(data), 24)])
	}
	if lt := binary.LittleEndian.Uint32(data[20:]); lt != 1 {
		t.Fatalf("linktype %d, want 1 (Ethernet)", lt)
	}
	for off := 24; off+16 <= len(data); {
		n := int(binary.LittleEndian.Uint32(data[off+8:]))
		pkt := data[off+16 : min(len(data), off+16+n)]
		off += 16 + n
		packets++
		if len(pkt) < 14+20 || binary.BigEndian.Uint16(pkt[12:]) != 0x0800 {
			continue
		}
		ip := pkt[14:]
		ihl := int(ip[0]&0x0f) * 4
		if ip[9] != 6 || len(ip) < ihl+14 || !net.IP(ip[16:20]).IsLoopback() {
			continue
		}
		if flags := ip[ihl+13]; flags&0x12 == 0x02 {
			syns++
		}
	}
	return syns, packets
}
