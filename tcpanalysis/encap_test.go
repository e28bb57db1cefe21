package tcpanalysis_test

// Encapsulation tests against tshark: the frames of a real capture
// (testdata/iperf3-loss3.pcap: iperf3 through 3% loss between two lab
// namespaces, tcpdump -s 96, 1500 frames) are wrapped, byte by byte with
// hand-built headers, in every tunnel and link type the decoder supports,
// written as pcap files, and analysed by us and by tshark. The counts must
// equal tshark's, and each frame's events must equal those of the plain
// capture.

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/netsight/netsight/internal/testlab"
	"github.com/netsight/netsight/tcpanalysis"
	"github.com/netsight/netsight/tcpanalysis/pcapfile"
)

const baseCapture = "testdata/iperf3-loss3.pcap"

// rec is one frame: captured bytes and wire length.
type rec struct {
	ts   int64
	data []byte
	wire int
}

func readRecs(t *testing.T, file string) ([]rec, tcpanalysis.LinkType) {
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
	var out []rec
	var lt tcpanalysis.LinkType
	for {
		data, ci, err := rd.Next()
		if err != nil {
			break
		}
		lt = ci.LinkType
		out = append(out, rec{ts: ci.TimestampNanos, data: append([]byte(nil), data...), wire: ci.WireLen})
	}
	return out, lt
}

func writeRecs(t *testing.T, file string, lt layers.LinkType, recs []rec) {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriterNanos(&buf)
	if err := w.WriteFileHeader(65535, lt); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, r.ts), CaptureLength: len(r.data), Length: r.wire}
		if err := w.WritePacket(ci, r.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Hand-built headers. Lengths are wire lengths: what follows on the wire
// is n bytes (the capture may hold fewer).

func be16(v int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(v)) }

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

func ethHdr(etherType int) []byte {
	return cat([]byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1}, be16(etherType))
}

func vlanTag(id, next int) []byte { return cat(be16(id), be16(next)) }

func ipv4Hdr(proto byte, n int) []byte {
	h := make([]byte, 20)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+n))
	h[8], h[9] = 64, proto
	copy(h[12:], []byte{192, 0, 2, 1})
	copy(h[16:], []byte{192, 0, 2, 2})
	return h
}

func ipv6Hdr(next byte, n int) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(n))
	h[6], h[7] = next, 64
	copy(h[8:], []byte{0x20, 0x01, 0x0d, 0xb8, 15: 1})
	copy(h[24:], []byte{0x20, 0x01, 0x0d, 0xb8, 15: 2})
	return h
}

func udpHdr(dport, n int) []byte { return cat(be16(49152), be16(dport), be16(8+n), be16(0)) }

func mplsLabel(label int, bottom bool) []byte {
	v := uint32(label)<<12 | 64
	if bottom {
		v |= 1 << 8
	}
	return binary.BigEndian.AppendUint32(nil, v)
}

func pppoeHdr(n int) []byte { return cat([]byte{0x11, 0, 0x12, 0x34}, be16(n+2), be16(0x0021)) }

// v4toV6 turns an IPv4 packet (captured bytes b, wire length wire) into an
// IPv6 one carrying the same transport bytes.
func v4toV6(b []byte, wire int) ([]byte, int) {
	ihl := int(b[0]&0xf) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	h := ipv6Hdr(b[9], total-ihl)
	copy(h[8+12:24], b[12:16])
	copy(h[24+12:40], b[16:20])
	return cat(h, b[ihl:]), wire - ihl + 40
}

// encapsulation builds a frame around the inner IPv4 packet ip (captured
// bytes, wire length n).
type encapsulation struct {
	name   string
	link   layers.LinkType
	tshark []string // extra tshark arguments (decode-as)
	wrap   func(ip []byte, n int) ([]byte, int)
	encap  tcpanalysis.Encap
}

func prefix(hdr []byte, ip []byte, n int) ([]byte, int) { return cat(hdr, ip), len(hdr) + n }

var encapsulations = []encapsulation{
	{name: "vxlan", link: layers.LinkTypeEthernet, encap: tcpanalysis.EncapVXLAN,
		wrap: func(ip []byte, n int) ([]byte, int) {
			inner := 14 + n
			return prefix(cat(ethHdr(0x0800), ipv4Hdr(17, 8+8+inner), udpHdr(4789, 8+inner),
				[]byte{8, 0, 0, 0, 0, 0x12, 0x34, 0}, ethHdr(0x0800)), ip, n)
		}},
	{name: "vxlan-8472", link: layers.LinkTypeEthernet, encap: tcpanalysis.EncapVXLAN, tshark: []string{"-d", "udp.port==8472,vxlan"},
		wrap: func(ip []byte, n int) ([]byte, int) {
			inner := 14 + n
			return prefix(cat(ethHdr(0x0800), ipv4Hdr(17, 8+8+inner), udpHdr(8472, 8+inner),
				[]byte{8, 0, 0, 0, 0, 0, 1, 0}, ethHdr(0x0800)), ip, n)
		}},
	{name: "geneve-options", link: layers.LinkTypeEthernet, encap: tcpanalysis.EncapGeneve,
		wrap: func(ip []byte, n int) ([]byte, int) {
			// two 4-byte words of options: class 0x0103 type 0x80, 4 bytes of data
			opt := []byte{0x01, 0x03, 0x80, 1, 0xde, 0xad, 0xbe, 0xef}
			gen := cat([]byte{2, 0}, be16(0x6558), []byte{0, 0, 7, 0}, opt)
			inner := 14 + n
			return prefix(cat(ethHdr(0x0800), ipv4Hdr(17, 8+len(gen)+inner), udpHdr(6081, len(gen)+inner),
				gen, ethHdr(0x0800)), ip, n)
		}},
	{name: "gre-key", link: layers.LinkTypeEthernet, encap: tcpanalysis.EncapGRE,
		wrap: func(ip []byte, n int) ([]byte, int) {
			gre := cat(be16(0x2000), be16(0x0800), []byte{0, 0, 0, 42})
			return prefix(cat(ethHdr(0x0800), ipv4Hdr(47, len(gre)+n), gre), ip, n)
		}},
	{name: "gretap-ipv6", link: layers.LinkTypeEthernet, encap: tcpanalysis.EncapGRE,
		wrap: func(ip []byte, n int) ([]byte, int) {
			gre := cat(be16(0), be16(0x6558))
			return prefix(cat(ethHdr(0x86dd), ipv6Hdr(47, len(gre)+14+n), gre, ethHdr(0x0800)), ip, n)
		}},
	{name: "gre-in-udp", link: layers.LinkTypeEthernet, encap: tcpanalysis.EncapGREinUDP,
		wrap: func(ip []byte, n int) ([]byte, int) {
			gre := cat(be16(0), be16(0x0800))
			return prefix(cat(ethHdr(0x0800), ipv4Hdr(17, 8+len(gre)+n), udpHdr(4754, len(gre)+n), gre), ip, n)
		}},
	{name: "mpls", link: layers.LinkTypeEthernet, encap: tcpanalysis.EncapMPLS,
		wrap: func(ip []byte, n int) ([]byte, int) {
			return prefix(cat(ethHdr(0x8847), mplsLabel(100, false), mplsLabel(200, true)), ip, n)
		}},
	{name: "vlan-mpls", link: layers.LinkTypeEthernet, encap: tcpanalysis.EncapVLAN | tcpanalysis.EncapMPLS,
		wrap: func(ip []byte, n int) ([]byte, int) {
			return prefix(cat(ethHdr(0x8100), vlanTag(10, 0x8847), mplsLabel(100, true)), ip, n)
		}},
	{name: "pppoe", link: layers.LinkTypeEthernet, encap: tcpanalysis.EncapPPPoE,
		wrap: func(ip []byte, n int) ([]byte, int) {
			return prefix(cat(ethHdr(0x8864), pppoeHdr(n)), ip, n)
		}},
	{name: "pppoe-qinq", link: layers.LinkTypeEthernet, encap: tcpanalysis.EncapVLAN | tcpanalysis.EncapPPPoE,
		wrap: func(ip []byte, n int) ([]byte, int) {
			return prefix(cat(ethHdr(0x88a8), vlanTag(100, 0x8100), vlanTag(200, 0x8864), pppoeHdr(n)), ip, n)
		}},
	{name: "vlan-x3", link: layers.LinkTypeEthernet, encap: tcpanalysis.EncapVLAN,
		wrap: func(ip []byte, n int) ([]byte, int) {
			return prefix(cat(ethHdr(0x88a8), vlanTag(1, 0x8100), vlanTag(2, 0x8100), vlanTag(3, 0x0800)), ip, n)
		}},
	{name: "sll2", link: layers.LinkType(276),
		wrap: func(ip []byte, n int) ([]byte, int) {
			h := make([]byte, 20)
			binary.BigEndian.PutUint16(h[0:], 0x0800)
			binary.BigEndian.PutUint32(h[4:], 3)   // ifindex
			binary.BigEndian.PutUint16(h[8:], 1)   // ARPHRD_ETHER
			h[10], h[11] = 4, 6                    // outgoing, address length
			copy(h[12:], []byte{2, 0, 0, 0, 0, 1}) // address
			return prefix(h, ip, n)
		}},
	{name: "nflog", link: layers.LinkType(239),
		wrap: func(ip []byte, n int) ([]byte, int) {
			// header: AF_INET, version 0, resource id 5; TLVs in little-endian
			// host order: NFULA_PACKET_HDR (hw protocol, hook), NFULA_PREFIX,
			// NFULA_PAYLOAD with the whole packet (the bytes the base
			// capture's snap length cut off are zeros).
			ip = cat(ip, make([]byte, n-len(ip)))
			le16 := func(v int) []byte { return binary.LittleEndian.AppendUint16(nil, uint16(v)) }
			hdr := cat([]byte{2, 0, 0, 5},
				le16(8), le16(1), be16(0x0800), []byte{1, 0},
				le16(4+4), le16(10), []byte("lab\x00"),
				le16(4+n), le16(9))
			frame := cat(hdr, ip, make([]byte, (4-n%4)%4))
			return frame, len(frame)
		}},
	{name: "4in4", link: layers.LinkTypeEthernet, encap: tcpanalysis.EncapIPinIP,
		wrap: func(ip []byte, n int) ([]byte, int) {
			return prefix(cat(ethHdr(0x0800), ipv4Hdr(4, n)), ip, n)
		}},
	{name: "6in4", link: layers.LinkTypeEthernet, encap: tcpanalysis.EncapIPinIP,
		wrap: func(ip []byte, n int) ([]byte, int) {
			ip6, n6 := v4toV6(ip, n)
			return prefix(cat(ethHdr(0x0800), ipv4Hdr(41, n6)), ip6, n6)
		}},
	{name: "4in6", link: layers.LinkTypeEthernet, encap: tcpanalysis.EncapIPinIP,
		wrap: func(ip []byte, n int) ([]byte, int) {
			return prefix(cat(ethHdr(0x86dd), ipv6Hdr(4, n)), ip, n)
		}},
}

// tsharkCounts counts the frames carrying each tcp.analysis field (and TCP
// frames) in file.
func tsharkCounts(t *testing.T, file string, extra ...string) map[string]int {
	t.Helper()
	fields := []string{"tcp.srcport", "tcp.analysis.retransmission", "tcp.analysis.fast_retransmission",
		"tcp.analysis.out_of_order", "tcp.analysis.duplicate_ack", "tcp.analysis.zero_window",
		"tcp.analysis.window_full", "tcp.analysis.keep_alive", "tcp.analysis.lost_segment",
		"tcp.analysis.ack_lost_segment", "tcp.analysis.window_update", "tcp.flags.reset", "tcp.stream"}
	args := append([]string{"-n", "-r", file}, extra...)
	args = append(args, "-Y", "tcp", "-T", "fields", "-E", "separator=;", "-E", "occurrence=f")
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	c := map[string]int{}
	streams := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		col := strings.Split(line, ";")
		if len(col) != len(fields) {
			continue
		}
		for i, f := range fields[:len(fields)-1] {
			if v := col[i]; v != "" && v != "0" && v != "False" {
				c[f]++
			}
		}
		streams[col[len(fields)-1]] = true
	}
	c["streams"] = len(streams)
	return c
}

func ourCounts(a *tcpanalysis.Analyzer) map[string]int {
	t := a.Totals
	return map[string]int{
		"tcp.srcport": int(t.TCP), "tcp.analysis.retransmission": int(t.Retransmissions),
		"tcp.analysis.fast_retransmission": int(t.FastRetransmissions), "tcp.analysis.out_of_order": int(t.OutOfOrder),
		"tcp.analysis.duplicate_ack": int(t.DuplicateAcks), "tcp.analysis.zero_window": int(t.ZeroWindows),
		"tcp.analysis.window_full": int(t.WindowFull), "tcp.analysis.keep_alive": int(t.KeepAlives),
		"tcp.analysis.lost_segment": int(t.LostSegments), "tcp.analysis.ack_lost_segment": int(t.AckedUnseen),
		"tcp.analysis.window_update": int(t.WindowUpdates), "tcp.flags.reset": int(t.Resets), "streams": int(t.Flows),
	}
}

// requireTshark skips the tshark comparisons in -short runs (tshark takes
// about a second to start; the full pass runs them) and, outside CI, where
// tshark is missing.
func requireTshark(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("tshark comparison: not in -short")
	}
	testlab.RequireBinary(t, "tshark")
}

func TestEncapsulationsMatchTshark(t *testing.T) {
	requireTshark(t)
	base, lt := readRecs(t, baseCapture)
	if lt != tcpanalysis.LinkEthernet || len(base) < 1000 {
		t.Fatalf("%s: link type %d, %d frames", baseCapture, lt, len(base))
	}
	plain := frameEvents(t, baseCapture)
	plainA := analyzeFile(t, baseCapture)
	if plainA.Totals.Retransmissions == 0 || plainA.Totals.DuplicateAcks == 0 {
		t.Fatalf("base capture has no retransmissions or duplicate ACKs: %+v", plainA.Totals)
	}
	dir := t.TempDir()
	for _, e := range encapsulations {
		t.Run(e.name, func(t *testing.T) {
			recs := make([]rec, len(base))
			for i, r := range base {
				data, wire := e.wrap(r.data[14:], r.wire-14)
				recs[i] = rec{ts: r.ts, data: data, wire: wire}
			}
			file := filepath.Join(dir, e.name+".pcap")
			writeRecs(t, file, e.link, recs)
			a := analyzeFile(t, file)
			ours, theirs := ourCounts(a), tsharkCounts(t, file, e.tshark...)
			t.Logf("%s: ours %v", e.name, ours)
			for k, v := range theirs {
				if ours[k] != v {
					t.Errorf("%s: ours %d, tshark %d", k, ours[k], v)
				}
			}
			if ours["tcp.srcport"] != len(base) {
				t.Errorf("TCP packets %d, want %d", ours["tcp.srcport"], len(base))
			}
			if e.encap != 0 && (a.Totals.Encapsulated == 0 && e.encap != tcpanalysis.EncapVLAN) {
				t.Errorf("no packet counted as encapsulated")
			}
			// Each frame's events equal those of the plain capture.
			got := frameEvents(t, file)
			for n, ev := range plain {
				if got[n] != ev {
					t.Fatalf("frame %d: events %b, plain capture %b", n, got[n], ev)
				}
			}
			// The flow says its encapsulation.
			var enc tcpanalysis.Encap
			a.Table.Each(func(f *tcpanalysis.Flow) { enc |= f.Encap })
			if enc != e.encap {
				t.Errorf("flow encapsulation %q, want %q", enc, e.encap)
			}
		})
	}
}
