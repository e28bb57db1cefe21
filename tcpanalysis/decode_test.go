package tcpanalysis

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// frame serialises layers with gopacket (an independent encoder) and
// returns the bytes.
func frame(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	for _, l := range ls {
		type checksummer interface {
			SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
		}
		if c, ok := l.(checksummer); ok {
			for _, n := range ls {
				if nl, ok := n.(gopacket.NetworkLayer); ok {
					_ = c.SetNetworkLayerForChecksum(nl)
				}
			}
		}
	}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
)

func synTCP() *layers.TCP {
	return &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 0xfffffff0, Ack: 0, SYN: true, Window: 64240,
		Options: []layers.TCPOption{
			{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
			{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
			{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{9}},
		}}
}

func TestDecode(t *testing.T) {
	ip4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, Flags: layers.IPv4DontFragment,
		SrcIP: net.IP{10, 1, 2, 3}, DstIP: net.IP{10, 4, 5, 6}}
	ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP,
		SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")}
	payload := gopacket.Payload(make([]byte, 1000))

	type want struct {
		ver      uint8
		proto    uint8
		vlan     uint16
		sport    uint16
		seq      uint32
		payload  int
		wscale   int8
		mss      uint16
		df       bool
		tcpValid bool
	}
	cases := []struct {
		name    string
		lt      LinkType
		data    []byte
		snaplen int
		want    want
		err     error
	}{
		{"ethernet ipv4 syn options", LinkEthernet,
			frame(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}, ip4, synTCP()), 0,
			want{ver: 4, proto: 6, sport: 40000, seq: 0xfffffff0, wscale: 9, mss: 1460, df: true, tcpValid: true}, nil},
		{"ethernet ipv4 data truncated by snaplen 128", LinkEthernet,
			frame(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}, ip4,
				&layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 7, ACK: true, Window: 500}, payload), 128,
			want{ver: 4, proto: 6, sport: 40000, seq: 7, payload: 1000, wscale: -1, df: true, tcpValid: true}, nil},
		{"802.1Q ipv6", LinkEthernet,
			frame(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeDot1Q},
				&layers.Dot1Q{VLANIdentifier: 42, Type: layers.EthernetTypeIPv6}, ip6,
				&layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 9, ACK: true, Window: 500}, payload), 0,
			want{ver: 6, proto: 6, vlan: 42, sport: 40000, seq: 9, payload: 1000, wscale: -1, tcpValid: true}, nil},
		{"ipv6 hop-by-hop then tcp", LinkEthernet,
			frame(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv6},
				&layers.IPv6{Version: 6, HopLimit: 1, NextHeader: layers.IPProtocolIPv6HopByHop,
					SrcIP: net.ParseIP("fe80::1"), DstIP: net.ParseIP("ff02::16"),
					HopByHop: hopByHop()},
				&layers.TCP{SrcPort: 1, DstPort: 2, Seq: 3, ACK: true, Window: 1}, gopacket.Payload([]byte("abc"))), 0,
			want{ver: 6, proto: 6, sport: 1, seq: 3, payload: 3, wscale: -1, tcpValid: true}, nil},
		{"raw ipv4 udp", LinkRaw,
			frame(t, &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{1, 1, 1, 1}, DstIP: net.IP{2, 2, 2, 2}},
				&layers.UDP{SrcPort: 53, DstPort: 5353}, gopacket.Payload([]byte("hello"))), 0,
			want{ver: 4, proto: 17, sport: 53, payload: 5, wscale: -1}, nil},
		{"linux cooked v2 ipv4 tcp", LinkSLL2,
			append(sll2Header(0x0800), frame(t, ip4, &layers.TCP{SrcPort: 5, DstPort: 6, Seq: 1, ACK: true})...), 0,
			want{ver: 4, proto: 6, sport: 5, seq: 1, wscale: -1, df: true, tcpValid: true}, nil},
		{"arp is unsupported", LinkEthernet,
			frame(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeARP},
				&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
					SourceHwAddress: macA, SourceProtAddress: []byte{1, 2, 3, 4}, DstHwAddress: macB, DstProtAddress: []byte{1, 2, 3, 5}}), 0,
			want{}, ErrUnsupported},
		{"short ethernet", LinkEthernet, []byte{1, 2, 3}, 0, want{}, ErrTruncated},
		{"ipv4 header cut", LinkEthernet,
			frame(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}, ip4, synTCP())[:14+19], 0,
			want{}, ErrTruncated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.data
			p := Packet{WireLen: len(data)}
			if tc.snaplen > 0 && len(data) > tc.snaplen {
				data = data[:tc.snaplen]
			}
			err := Decode(tc.lt, data, &p)
			if err != tc.err {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			got := want{ver: p.IPVersion, proto: p.IPProto, vlan: p.VLAN, sport: p.SrcPort, seq: p.Seq, payload: p.PayloadLen,
				wscale: p.WScale, mss: p.MSS, df: p.DF, tcpValid: p.TCPValid}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func sll2Header(etherType uint16) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:2], etherType)
	binary.BigEndian.PutUint32(h[4:8], 2) // ifindex
	binary.BigEndian.PutUint16(h[8:10], 1)
	h[10] = 4 // outgoing
	h[11] = 6
	return h
}

// TestDecodeMatchesGopacket decodes the same frames with our decoder and
// with gopacket's DecodingLayerParser and compares every field both produce.
func TestDecodeMatchesGopacket(t *testing.T) {
	d := newDLPDecoder()
	for i, f := range benchFrames(t) {
		var a, b Packet
		a.WireLen, b.WireLen = f.wire, f.wire
		ea := Decode(LinkEthernet, f.data, &a)
		eb := d.decode(f.data, &b)
		if (ea == nil) != (eb == nil) {
			t.Fatalf("frame %d: ours err=%v, gopacket err=%v", i, ea, eb)
		}
		a.Flags &^= 0 // same struct; compare the subset gopacket fills
		if a.SrcPort != b.SrcPort || a.DstPort != b.DstPort || a.Seq != b.Seq || a.Ack != b.Ack || a.Flags != b.Flags ||
			a.Window != b.Window || a.PayloadLen != b.PayloadLen || a.Src != b.Src || a.Dst != b.Dst || a.WScale != b.WScale ||
			a.IPVersion != b.IPVersion || a.DF != b.DF {
			t.Fatalf("frame %d differs:\nours     %+v\ngopacket %+v", i, a, b)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, fr := range benchFrames(f) {
		f.Add(uint8(1), fr.data)
	}
	f.Add(uint8(113), make([]byte, 16))
	f.Add(uint8(101), []byte{0x45, 0, 0, 20})
	f.Add(uint8(101), []byte{0x60, 0, 0, 0, 0, 8, 44, 64})
	f.Fuzz(func(t *testing.T, lt uint8, data []byte) {
		links := []LinkType{LinkEthernet, LinkRaw, LinkSLL, LinkSLL2, LinkNull, LinkIPv4, LinkIPv6, LinkNFLOG, LinkPPP, LinkPPPoE, LinkCHDLC, LinkIPoIB}
		p := Packet{WireLen: len(data)}
		err := Decode(links[int(lt)%len(links)], data, &p)
		if err != nil {
			return
		}
		if p.PayloadLen < 0 || p.IPLen < 0 {
			t.Fatalf("negative length: %+v", p)
		}
		if p.IPVersion != 4 && p.IPVersion != 6 {
			t.Fatalf("decoded without IP version: %+v", p)
		}
		// Whatever decodes must be analysable without panics.
		a := NewAnalyzer(Config{MaxFlows: 4})
		a.Process(&p)
		a.Process(&p)
	})
}

func hopByHop() *layers.IPv6HopByHop {
	h := &layers.IPv6HopByHop{Options: []*layers.IPv6HopByHopOption{{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}}
	h.NextHeader = layers.IPProtocolTCP
	return h
}

// TestDecodeWireLengthCap: the IP header's length is capped at what the
// frame's wire length leaves (tshark does the same); a snap length alone
// never shortens it.
func TestDecodeWireLengthCap(t *testing.T) {
	ip4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP{10, 1, 2, 3}, DstIP: net.IP{10, 4, 5, 6}}
	f := frame(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}, ip4,
		&layers.TCP{SrcPort: 1, DstPort: 2, Seq: 3, ACK: true, Window: 1}, gopacket.Payload(make([]byte, 1000)))
	for _, tc := range []struct {
		name          string
		captured      int
		wire          int
		ipLen, payLen int
	}{
		{"whole", len(f), len(f), 1040, 1000},
		{"snapped to 96, whole on the wire", 96, len(f), 1040, 1000},
		{"short copy: 74 bytes on the wire", 74, 74, 60, 20},
		{"short copy, snapped further", 60, 74, 60, 20},
		{"headers only on the wire", 54, 54, 40, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Packet{WireLen: tc.wire}
			if err := Decode(LinkEthernet, f[:tc.captured], &p); err != nil {
				t.Fatal(err)
			}
			if p.IPLen != tc.ipLen || p.PayloadLen != tc.payLen {
				t.Errorf("IP length %d, payload %d; want %d, %d", p.IPLen, p.PayloadLen, tc.ipLen, tc.payLen)
			}
		})
	}
}

func TestSkipNames(t *testing.T) {
	arp := frame(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			SourceHwAddress: macA, SourceProtAddress: []byte{1, 2, 3, 4}, DstHwAddress: macB, DstProtAddress: []byte{1, 2, 3, 5}})
	// ARP inside VXLAN: the frame stays the outer UDP packet, the skip
	// names the payload and the tunnel.
	vx := frame(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{1, 1, 1, 1}, DstIP: net.IP{2, 2, 2, 2}},
		&layers.UDP{SrcPort: 50000, DstPort: 4789}, gopacket.Payload(append([]byte{8, 0, 0, 0, 0, 0, 1, 0}, arp...)))
	for _, tc := range []struct {
		name string
		lt   LinkType
		data []byte
		err  error
		want string
	}{
		{"link type", 127, make([]byte, 30), ErrUnsupported, "link type IEEE802_11_RADIOTAP (127)"},
		{"unknown link type", 4242, make([]byte, 30), ErrUnsupported, "link type 4242"},
		{"ethertype", LinkEthernet, arp, ErrUnsupported, "ethertype 0x0806"},
		{"in a tunnel", LinkEthernet, vx, nil, "ethertype 0x0806 in vxlan"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Packet{WireLen: len(tc.data)}
			err := Decode(tc.lt, tc.data, &p)
			if err != tc.err || p.Skipped.String() != tc.want {
				t.Errorf("err %v, skipped %q; want %v, %q", err, p.Skipped, tc.err, tc.want)
			}
			if tc.err == nil && (p.IPProto != 17 || p.DstPort != 4789 || p.Encap != 0) {
				t.Errorf("not left as the outer packet: %+v", p)
			}
		})
	}
}
