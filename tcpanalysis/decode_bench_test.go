package tcpanalysis

import (
	"encoding/binary"
	"errors"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// dlpDecoder is the alternative we benchmarked against: gopacket's
// DecodingLayerParser (preallocated layers, no per-packet allocation of
// layer structs) filling the same Packet. It lives in a test file because
// the hand-written decoder won (see BenchmarkDecode and docs/analyze.md).
type dlpDecoder struct {
	eth     layers.Ethernet
	dot1q   layers.Dot1Q
	ip4     layers.IPv4
	ip6     layers.IPv6
	tcp     layers.TCP
	udp     layers.UDP
	payload gopacket.Payload
	parser  *gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
}

func newDLPDecoder() *dlpDecoder {
	d := &dlpDecoder{}
	d.parser = gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &d.eth, &d.dot1q, &d.ip4, &d.ip6, &d.tcp, &d.udp, &d.payload)
	d.parser.IgnoreUnsupported = true
	d.decoded = make([]gopacket.LayerType, 0, 8)
	return d
}

func (d *dlpDecoder) decode(data []byte, p *Packet) error {
	ts, wl := p.TimestampNanos, p.WireLen
	*p = Packet{TimestampNanos: ts, WireLen: wl, WScale: -1}
	if err := d.parser.DecodeLayers(data, &d.decoded); err != nil {
		return err
	}
	for _, lt := range d.decoded {
		switch lt {
		case layers.LayerTypeDot1Q:
			p.HasVLAN, p.VLAN = true, d.dot1q.VLANIdentifier
		case layers.LayerTypeIPv4:
			p.IPVersion = 4
			copy(p.Src[:4], d.ip4.SrcIP.To4())
			copy(p.Dst[:4], d.ip4.DstIP.To4())
			p.IPProto = uint8(d.ip4.Protocol)
			p.DF = d.ip4.Flags&layers.IPv4DontFragment != 0
			p.IPLen = int(d.ip4.Length)
		case layers.LayerTypeIPv6:
			p.IPVersion = 6
			copy(p.Src[:], d.ip6.SrcIP)
			copy(p.Dst[:], d.ip6.DstIP)
			p.IPProto = uint8(d.ip6.NextHeader)
			p.IPLen = 40 + int(d.ip6.Length)
		case layers.LayerTypeTCP:
			p.TCPValid = true
			p.SrcPort, p.DstPort = uint16(d.tcp.SrcPort), uint16(d.tcp.DstPort)
			p.Seq, p.Ack, p.Window = d.tcp.Seq, d.tcp.Ack, d.tcp.Window
			var fl uint8
			for i, b := range []bool{d.tcp.FIN, d.tcp.SYN, d.tcp.RST, d.tcp.PSH, d.tcp.ACK, d.tcp.URG, d.tcp.ECE, d.tcp.CWR} {
				if b {
					fl |= 1 << i
				}
			}
			p.Flags = fl
			for _, o := range d.tcp.Options {
				if o.OptionType == layers.TCPOptionKindWindowScale && len(o.OptionData) == 1 {
					p.WScale = int8(o.OptionData[0])
				}
			}
			hl := 40
			if p.IPVersion == 4 {
				hl = int(d.ip4.IHL) * 4
			}
			p.PayloadLen = p.IPLen - hl - int(d.tcp.DataOffset)*4
		case layers.LayerTypeUDP:
			p.SrcPort, p.DstPort = uint16(d.udp.SrcPort), uint16(d.udp.DstPort)
		}
	}
	if p.IPVersion == 0 {
		return errors.New("not ip")
	}
	return nil
}

// benchFrame is a captured frame (cut to a snap length of 128 bytes like
// tcpdump -s 128) and its length on the wire.
type benchFrame struct {
	data []byte
	wire int
}

func snapped(f []byte) benchFrame { return benchFrame{data: f[:min(len(f), 128)], wire: len(f)} }

// benchFrames is a small mix like a bulk transfer capture: data segments,
// pure ACKs with SACK, an IPv6 flow and a SYN.
func benchFrames(t testing.TB) []benchFrame {
	eth4 := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}
	eth6 := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv6}
	ip4 := func() *layers.IPv4 {
		return &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, Flags: layers.IPv4DontFragment,
			SrcIP: net.IP{10, 77, 0, 1}, DstIP: net.IP{10, 77, 0, 2}}
	}
	ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP,
		SrcIP: net.ParseIP("fd00::1"), DstIP: net.ParseIP("fd00::2")}
	ts := layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)}
	sack := layers.TCPOption{OptionType: layers.TCPOptionKindSACK, OptionLength: 10, OptionData: make([]byte, 8)}
	nop := layers.TCPOption{OptionType: layers.TCPOptionKindNop}
	data := gopacket.Payload(make([]byte, 1448))
	return []benchFrame{
		snapped(frame(t, eth4, ip4(), &layers.TCP{SrcPort: 40000, DstPort: 5201, Seq: 1, Ack: 1, ACK: true, Window: 502, Options: []layers.TCPOption{nop, nop, ts}}, data)),
		snapped(frame(t, eth4, ip4(), &layers.TCP{SrcPort: 5201, DstPort: 40000, Seq: 1, Ack: 1449, ACK: true, Window: 8000, Options: []layers.TCPOption{nop, nop, ts, nop, nop, sack}})),
		snapped(frame(t, eth6, ip6, &layers.TCP{SrcPort: 40001, DstPort: 443, Seq: 100, Ack: 7, ACK: true, PSH: true, Window: 300}, data)),
		snapped(frame(t, eth4, ip4(), synTCP())),
	}
}

func BenchmarkDecode(b *testing.B) {
	frames := benchFrames(b)
	b.Run("handwritten", func(b *testing.B) {
		var p Packet
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			f := frames[i&3]
			p.WireLen = f.wire
			if err := Decode(LinkEthernet, f.data, &p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gopacket-DecodingLayerParser", func(b *testing.B) {
		d := newDLPDecoder()
		var p Packet
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			f := frames[i&3]
			p.WireLen = f.wire
			if err := d.decode(f.data, &p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAnalyze is the whole per-packet path: decode plus analysis of a
// bulk flow (data and ACKs alternating), one flow table lookup each.
func BenchmarkAnalyze(b *testing.B) {
	data := benchFrames(b)[0].data
	ack := benchFrames(b)[1].data
	a := NewAnalyzer(Config{})
	var p Packet
	b.ReportAllocs()
	seq := uint32(1)
	for i := 0; i < b.N; i++ {
		p.TimestampNanos = int64(i) * 1000
		p.WireLen = 1514
		if i&1 == 0 {
			binary.BigEndian.PutUint32(data[14+20+4:], seq)
			seq += 1448
			_ = Decode(LinkEthernet, data, &p)
		} else {
			binary.BigEndian.PutUint32(ack[14+20+8:], seq)
			p.WireLen = len(ack)
			_ = Decode(LinkEthernet, ack, &p)
		}
		a.Process(&p)
	}
}
