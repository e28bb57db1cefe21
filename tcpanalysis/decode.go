package tcpanalysis

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
)

// LinkType is a pcap LINKTYPE_* value: how a captured frame starts.
type LinkType uint32

// Link types the decoder understands.
const (
	LinkNull     LinkType = 0   // BSD loopback: 4-byte host-order address family
	LinkEthernet LinkType = 1   // Ethernet II, optionally 802.1Q/802.1ad tagged
	LinkRaw      LinkType = 101 // raw IPv4 or IPv6, no link header
	LinkRawAlt   LinkType = 12  // DLT_RAW on some BSDs, same as LinkRaw
	LinkLoop     LinkType = 108 // OpenBSD loopback: 4-byte network-order family
	LinkSLL      LinkType = 113 // Linux "cooked" capture v1 (tcpdump -i any, old)
	LinkIPv4     LinkType = 228 // raw IPv4
	LinkIPv6     LinkType = 229 // raw IPv6
	LinkSLL2     LinkType = 276 // Linux "cooked" capture v2 (tcpdump -i any)
	LinkNFLOG    LinkType = 239 // Linux netfilter log (tcpdump -i nflog:N)
	LinkPPP      LinkType = 9   // PPP, optionally with HDLC address/control bytes
	LinkPPPHDLC  LinkType = 50  // PPP in HDLC-like framing
	LinkPPPoE    LinkType = 51  // PPPoE session header, no Ethernet (LINKTYPE_PPP_ETHER)
	LinkCHDLC    LinkType = 104 // Cisco HDLC: address, control, EtherType
	LinkIPoIB    LinkType = 242 // IP over InfiniBand: two 20-byte addresses, EtherType, 2 reserved bytes
)

// linkTypeNames are the names (LINKTYPE_* without the prefix) of the link
// types seen in public captures, for messages about unsupported ones.
var linkTypeNames = map[LinkType]string{
	0: "NULL", 1: "ETHERNET", 3: "AX25", 6: "IEEE802_5", 7: "ARCNET_BSD", 8: "SLIP", 9: "PPP", 10: "FDDI",
	12: "RAW", 50: "PPP_HDLC", 51: "PPP_ETHER", 100: "ATM_RFC1483", 101: "RAW", 104: "C_HDLC", 105: "IEEE802_11",
	107: "FRELAY", 108: "LOOP", 113: "LINUX_SLL", 114: "LTALK", 117: "PFLOG", 119: "IEEE802_11_PRISM",
	122: "IP_OVER_FC", 123: "SUNATM", 127: "IEEE802_11_RADIOTAP", 129: "ARCNET_LINUX", 138: "APPLE_IP_OVER_IEEE1394",
	139: "MTP2_WITH_PHDR", 140: "MTP2", 141: "MTP3", 142: "SCCP", 143: "DOCSIS", 144: "LINUX_IRDA",
	147: "USER0", 148: "USER1", 149: "USER2", 150: "USER3", 151: "USER4", 152: "USER5", 153: "USER6",
	154: "USER7", 155: "USER8", 156: "USER9", 157: "USER10", 158: "USER11", 159: "USER12", 160: "USER13",
	161: "USER14", 162: "USER15", 163: "IEEE802_11_AVS", 165: "BACNET_MS_TP", 166: "PPP_PPPD", 169: "GPRS_LLC",
	177: "LINUX_LAPD", 187: "BLUETOOTH_HCI_H4", 189: "USB_LINUX", 192: "PPI", 195: "IEEE802_15_4_WITHFCS",
	201: "BLUETOOTH_HCI_H4_WITH_PHDR", 204: "PPP_WITH_DIR", 215: "IEEE802_15_4_NONASK_PHY", 220: "USB_LINUX_MMAPPED",
	227: "CAN_SOCKETCAN", 242: "IPOIB", 228: "IPV4", 229: "IPV6", 230: "IEEE802_15_4_NOFCS", 235: "DVB_CI", 239: "NFLOG",
	240: "NETANALYZER", 249: "NETLINK", 251: "BLUETOOTH_LE_LL", 253: "NETLINK", 254: "BLUETOOTH_LINUX_MONITOR",
	256: "BLUETOOTH_LE_LL_WITH_PHDR", 263: "DOCSIS31_XRA31", 266: "DISPLAYPORT_AUX", 276: "LINUX_SLL2",
	279: "EBHSCR", 281: "VPP_DISPATCH", 283: "IEEE802_15_4_TAP", 294: "ZBOSS_NCP", 297: "AUERSWALD_LOG",
}

// String is the LINKTYPE_ name and number, e.g. "IEEE802_11_RADIOTAP (127)".
func (lt LinkType) String() string {
	if n, ok := linkTypeNames[lt]; ok {
		return n + " (" + strconv.Itoa(int(lt)) + ")"
	}
	return strconv.Itoa(int(lt))
}

// Encap is the set of encapsulations a packet was found in, a bit set.
type Encap uint16

// Encapsulations Decode passes through to reach the innermost IP packet.
const (
	EncapVLAN     Encap = 1 << iota // one or more 802.1Q / 802.1ad tags
	EncapMPLS                       // an MPLS label stack
	EncapPPPoE                      // a PPPoE session
	EncapGRE                        // GRE (IP protocol 47), ERSPAN included
	EncapGREinUDP                   // GRE in UDP (port 4754, RFC 8086)
	EncapVXLAN                      // VXLAN (UDP 4789 or 8472)
	EncapGeneve                     // Geneve (UDP 6081)
	EncapIPinIP                     // IPv4 or IPv6 directly in IPv4 or IPv6 (4in4, 6in4, 4in6, 6in6)
	numEncaps     = iota
)

var encapNames = [numEncaps]string{"vlan", "mpls", "pppoe", "gre", "gre-in-udp", "vxlan", "geneve", "ip-in-ip"}

// EncapNames lists the names of the encapsulation bits, lowest bit first.
func EncapNames() []string { return encapNames[:] }

// String names the encapsulations joined by "+", outermost kinds first
// (e.g. "vlan+pppoe", "vxlan"), "" for none.
func (e Encap) String() string {
	if e == 0 {
		return ""
	}
	s := ""
	for i, n := range encapNames {
		if e&(1<<i) != 0 {
			if s != "" {
				s += "+"
			}
			s += n
		}
	}
	return s
}

// SkipKind says at which layer Decode met something it does not decode.
type SkipKind uint8

// Skip kinds; Skip.Value is the number found there.
const (
	SkipNone        SkipKind = iota
	SkipLinkType             // the capture's link type
	SkipEtherType            // an EtherType (after Ethernet, cooked or tunnel headers)
	SkipPPP                  // a PPP protocol number
	SkipPPPoE                // a PPPoE code other than session data
	SkipGRE                  // GRE flags/version (PPTP's enhanced GRE, source routing)
	SkipMPLSPayload          // the first nibble after the MPLS label stack
	SkipNFLOG                // an NFLOG record without payload (address family)
	SkipIPVersion            // the IP version nibble of a raw-IP frame
	SkipTunnel               // a tunnel header Decode does not understand (Encap bit)
)

// Skip records what Decode did not decode in a frame.
type Skip struct {
	Kind SkipKind
	// In is the tunnel whose payload it was, 0 at the outermost layers.
	In    Encap
	Value uint32
}

// String describes the skip, e.g. "ethertype 0x88cc" or "link type
// IEEE802_11_RADIOTAP (127)".
func (s Skip) String() string {
	if s.In != 0 {
		in := s.In
		s.In = 0
		return s.String() + " in " + in.String()
	}
	switch s.Kind {
	case SkipLinkType:
		return "link type " + LinkType(s.Value).String()
	case SkipEtherType:
		return "ethertype 0x" + hex4(s.Value)
	case SkipPPP:
		return "PPP protocol 0x" + hex4(s.Value)
	case SkipPPPoE:
		return "PPPoE code 0x" + strconv.FormatUint(uint64(s.Value), 16)
	case SkipGRE:
		return "GRE flags/version 0x" + hex4(s.Value)
	case SkipMPLSPayload:
		return "MPLS payload starting with nibble " + strconv.Itoa(int(s.Value))
	case SkipNFLOG:
		return "NFLOG record without payload (family " + strconv.Itoa(int(s.Value)) + ")"
	case SkipIPVersion:
		return "IP version " + strconv.Itoa(int(s.Value))
	case SkipTunnel:
		return "unknown " + Encap(s.Value).String() + " header"
	}
	return "nothing"
}

func hex4(v uint32) string {
	s := strconv.FormatUint(uint64(v), 16)
	for len(s) < 4 {
		s = "0" + s
	}
	return s
}

// TCP flag bits as they appear in byte 13 of the TCP header.
const (
	FlagFIN uint8 = 0x01
	FlagSYN uint8 = 0x02
	FlagRST uint8 = 0x04
	FlagPSH uint8 = 0x08
	FlagACK uint8 = 0x10
	FlagURG uint8 = 0x20
	FlagECE uint8 = 0x40
	FlagCWR uint8 = 0x80
)

// Packet is one decoded frame. Decode fills it in place so that a caller can
// reuse a single Packet for every frame (no allocation per packet). Addresses
// are 16 bytes; IPv4 addresses occupy the first 4 bytes and the rest is zero.
type Packet struct {
	// TimestampNanos is the capture time in Unix nanoseconds.
	TimestampNanos int64
	// WireLen is the length of the frame on the wire (may exceed the
	// captured bytes when the capture used a snap length).
	WireLen int

	HasVLAN bool
	VLAN    uint16 // the outermost tag's VLAN ID
	// Encap names the encapsulations passed through to reach the IP packet
	// described here (the innermost one); 0 for plain IP.
	Encap Encap
	// Skipped says what was not decoded: the protocol of a frame Decode
	// returned ErrUnsupported for, or the payload of a tunnel that was
	// not IP (the packet then describes the tunnel's outer packet).
	Skipped Skip

	// IPVersion is 4 or 6; 0 when the frame is not IP.
	IPVersion uint8
	Src, Dst  [16]byte
	// IPProto is the transport protocol (6 TCP, 17 UDP, ...) after IPv6
	// extension headers.
	IPProto uint8
	// DF is the IPv4 don't-fragment bit. Always false for IPv6.
	DF bool
	// Fragment is true for an IPv4/IPv6 fragment other than the first, or a
	// first fragment whose transport header is therefore incomplete. Such
	// packets carry no port information.
	Fragment bool
	// IPLen is the IP packet length from the IP header (header + payload).
	IPLen int

	SrcPort, DstPort uint16

	// TCP fields; valid when IPProto == 6 and TCPValid.
	TCPValid bool
	Seq, Ack uint32
	Flags    uint8
	Window   uint16
	// WScale is the window-scale shift from the options (SYN only), -1 if
	// absent.
	WScale int8
	// MSS from the options (SYN only), 0 if absent.
	MSS uint16
	// SACKPermitted is set when a SYN carries the SACK-permitted option.
	SACKPermitted bool
	// SACKBlocks counts SACK blocks in the options.
	SACKBlocks uint8
	// PayloadLen is the TCP/UDP payload length computed from the IP header,
	// not from the captured bytes, so it is right under a snap length.
	PayloadLen int
}

// Errors returned by Decode. They are sentinel values (no allocation on the
// hot path); wrap them with context where they are reported.
var (
	ErrTruncated   = errors.New("truncated header")
	ErrUnsupported = errors.New("unsupported link or network protocol")
	ErrMalformed   = errors.New("malformed header")
)

const (
	etherTypeIPv4     = 0x0800
	etherTypeIPv6     = 0x86DD
	etherTypeVLAN     = 0x8100
	etherTypeQinQ     = 0x88A8
	etherType9100     = 0x9100
	etherTypeMPLS     = 0x8847
	etherTypeMPLSMc   = 0x8848
	etherTypePPPoE    = 0x8864
	etherTypeTEB      = 0x6558 // transparent Ethernet bridging (GRE, Geneve)
	etherTypeERSPAN2  = 0x88BE
	etherTypeERSPAN3  = 0x22EB
	maxVLANHeaders    = 8
	maxMPLSLabels     = 16
	maxEncapsulations = 6 // tunnels inside tunnels

	portVXLAN      = 4789
	portVXLANLinux = 8472 // the Linux kernel's old default, Flannel's
	portGeneve     = 6081
	portGREinUDP   = 4754
)

// Decode parses frame (starting with a link header of type lt) into p. It
// never allocates and never panics on any input; a frame that is not IPv4 or
// IPv6 returns ErrUnsupported (p.Skipped says what it was), a short or
// inconsistent header ErrTruncated or ErrMalformed. p is fully overwritten
// except TimestampNanos and WireLen, which the caller sets.
//
// Tunnels are decoded down to the innermost IP packet, which is the one p
// describes (p.Encap names the encapsulations passed through): VLAN tags
// (any number up to 8), MPLS, PPPoE, GRE (ERSPAN, transparent Ethernet
// bridging), VXLAN (UDP 4789 and 8472), Geneve (UDP 6081), GRE-in-UDP
// (4754) and IP in IP. A tunnel whose payload is not IP leaves p describing
// the outer packet, with p.Skipped saying what the payload was.
//
// Lengths follow the IP header, capped at what the frame's wire length
// leaves for it (as tshark does): a snap length does not shorten the
// payload, a frame shorter on the wire than its IP header claims does.
func Decode(lt LinkType, frame []byte, p *Packet) error {
	ts, wl := p.TimestampNanos, p.WireLen
	*p = Packet{TimestampNanos: ts, WireLen: wl, WScale: -1}
	// wire is the on-the-wire length of the bytes of b (b plus what the
	// snap length cut off).
	wire := wl
	if wire < len(frame) {
		wire = len(frame)
	}
	b := frame
	switch lt {
	case LinkEthernet:
		if len(b) < 14 {
			return ErrTruncated
		}
		switch et := binary.BigEndian.Uint16(b[12:14]); et {
		case etherTypeIPv4: // the common case, without a call
			return decodeIPv4(b[14:], p, wire-14, 0)
		default:
			return decodeEther(et, b[14:], p, wire-14, 0)
		}
	case LinkRaw, LinkRawAlt, LinkIPv4, LinkIPv6:
		return decodeIP(b, p, wire, 0, SkipIPVersion)
	case LinkNull, LinkLoop:
		if len(b) < 4 {
			return ErrTruncated
		}
		return decodeIP(b[4:], p, wire-4, 0, SkipIPVersion)
	case LinkSLL:
		if len(b) < 16 {
			return ErrTruncated
		}
		return decodeEther(binary.BigEndian.Uint16(b[14:16]), b[16:], p, wire-16, 0)
	case LinkSLL2:
		if len(b) < 20 {
			return ErrTruncated
		}
		return decodeEther(binary.BigEndian.Uint16(b[0:2]), b[20:], p, wire-20, 0)
	case LinkNFLOG:
		return decodeNFLOG(b, p)
	case LinkPPP, LinkPPPHDLC:
		return decodePPP(b, p, wire, 0)
	case LinkPPPoE:
		return decodePPPoE(b, p, wire, 0)
	case LinkIPoIB:
		if len(b) < 44 {
			return ErrTruncated
		}
		return decodeEther(binary.BigEndian.Uint16(b[40:42]), b[44:], p, wire-44, 0)
	case LinkCHDLC:
		if len(b) < 4 {
			return ErrTruncated
		}
		return decodeEther(binary.BigEndian.Uint16(b[2:4]), b[4:], p, wire-4, 0)
	}
	p.Skipped = Skip{Kind: SkipLinkType, Value: uint32(lt)}
	return ErrUnsupported
}

// decodeEther decodes the payload b of a frame with the given EtherType
// (after an Ethernet, Linux cooked or tunnel header).
func decodeEther(etherType uint16, b []byte, p *Packet, wire int, depth int) error {
	for i := 0; etherType == etherTypeVLAN || etherType == etherTypeQinQ || etherType == etherType9100; i++ {
		if i == maxVLANHeaders || len(b) < 4 {
			return ErrTruncated
		}
		if !p.HasVLAN {
			p.HasVLAN = true
			p.VLAN = binary.BigEndian.Uint16(b[0:2]) & 0x0fff
		}
		p.Encap |= EncapVLAN
		etherType = binary.BigEndian.Uint16(b[2:4])
		b, wire = b[4:], wire-4
	}
	switch etherType {
	case etherTypeIPv4:
		return decodeIPv4(b, p, wire, depth)
	case etherTypeIPv6:
		return decodeIPv6(b, p, wire, depth)
	case etherTypeMPLS, etherTypeMPLSMc:
		return decodeMPLS(b, p, wire, depth)
	case etherTypePPPoE:
		return decodePPPoE(b, p, wire, depth)
	}
	p.Skipped = Skip{Kind: SkipEtherType, Value: uint32(etherType)}
	return ErrUnsupported
}

// decodeEthernet decodes a whole Ethernet frame carried in a tunnel.
func decodeEthernet(b []byte, p *Packet, wire int, depth int) error {
	if len(b) < 14 {
		return ErrTruncated
	}
	return decodeEther(binary.BigEndian.Uint16(b[12:14]), b[14:], p, wire-14, depth)
}

// decodeMPLS skips the label stack; the payload is IPv4 or IPv6 by its
// first nibble (an Ethernet pseudowire is not decoded).
func decodeMPLS(b []byte, p *Packet, wire int, depth int) error {
	p.Encap |= EncapMPLS
	for i := 0; ; i++ {
		if i == maxMPLSLabels {
			return ErrMalformed
		}
		if len(b) < 4 {
			return ErrTruncated
		}
		bottom := b[2]&1 != 0
		b, wire = b[4:], wire-4
		if bottom {
			break
		}
	}
	return decodeIP(b, p, wire, depth, SkipMPLSPayload)
}

// decodePPPoE decodes a PPPoE session frame (RFC 2516) and its PPP payload.
func decodePPPoE(b []byte, p *Packet, wire int, depth int) error {
	p.Encap |= EncapPPPoE
	if len(b) < 8 {
		return ErrTruncated
	}
	if b[0] != 0x11 || b[1] != 0 { // version 1, type 1, session data
		p.Skipped = Skip{Kind: SkipPPPoE, Value: uint32(b[1])}
		return ErrUnsupported
	}
	if l := int(binary.BigEndian.Uint16(b[4:6])); l+6 < wire {
		wire = l + 6 // the PPPoE length excludes Ethernet padding
	}
	return decodePPPProto(b[6:], p, wire-6, depth)
}

// decodePPP decodes a PPP frame with optional HDLC address and control
// bytes (0xff 0x03).
func decodePPP(b []byte, p *Packet, wire int, depth int) error {
	if len(b) >= 2 && b[0] == 0xff && b[1] == 0x03 {
		b, wire = b[2:], wire-2
	}
	return decodePPPProto(b, p, wire, depth)
}

// decodePPPProto decodes the PPP protocol field (1 or 2 bytes) and an IP
// payload.
func decodePPPProto(b []byte, p *Packet, wire int, depth int) error {
	if len(b) < 1 {
		return ErrTruncated
	}
	proto := uint16(b[0])
	if proto&1 == 0 { // two-byte protocol field (unless compressed)
		if len(b) < 2 {
			return ErrTruncated
		}
		proto = binary.BigEndian.Uint16(b[0:2])
		b, wire = b[2:], wire-2
	} else {
		b, wire = b[1:], wire-1
	}
	switch proto {
	case 0x0021:
		return decodeIPv4(b, p, wire, depth)
	case 0x0057:
		return decodeIPv6(b, p, wire, depth)
	}
	p.Skipped = Skip{Kind: SkipPPP, Value: uint32(proto)}
	return ErrUnsupported
}

// NFLOG TLV types.
const nflogPayload = 9

// decodeNFLOG decodes a LINKTYPE_NFLOG frame: a 4-byte header then TLVs in
// host byte order, one of which (NFULA_PAYLOAD) is the IP packet.
func decodeNFLOG(b []byte, p *Packet) error {
	if len(b) < 4 {
		return ErrTruncated
	}
	family := b[0]
	b = b[4:]
	for len(b) >= 4 {
		var l, typ int
		if b[3] == 0 && b[2] != 0 { // little-endian host (type is small)
			l, typ = int(binary.LittleEndian.Uint16(b[0:2])), int(binary.LittleEndian.Uint16(b[2:4]))
		} else {
			l, typ = int(binary.BigEndian.Uint16(b[0:2])), int(binary.BigEndian.Uint16(b[2:4]))
		}
		if l < 4 {
			return ErrMalformed
		}
		if l > len(b) {
			// A payload cut by the snap length is still worth decoding.
			if typ&0x7fff != nflogPayload {
				return ErrTruncated
			}
		}
		if typ&0x7fff == nflogPayload {
			data := b[4:min(l, len(b))]
			switch family {
			case 2: // AF_INET
				return decodeIPv4(data, p, l-4, 0)
			case 10: // AF_INET6
				return decodeIPv6(data, p, l-4, 0)
			}
			return decodeIP(data, p, l-4, 0, SkipIPVersion)
		}
		l = (l + 3) &^ 3
		if l > len(b) {
			break
		}
		b = b[l:]
	}
	p.Skipped = Skip{Kind: SkipNFLOG, Value: uint32(family)}
	return ErrUnsupported
}

// decodeIP decodes an IPv4 or IPv6 packet by its version nibble; any other
// version is skipped as kind (what carried it: a raw-IP link, MPLS).
func decodeIP(b []byte, p *Packet, wire int, depth int, kind SkipKind) error {
	if len(b) < 1 {
		return ErrTruncated
	}
	switch b[0] >> 4 {
	case 4:
		return decodeIPv4(b, p, wire, depth)
	case 6:
		return decodeIPv6(b, p, wire, depth)
	}
	p.Skipped = Skip{Kind: kind, Value: uint32(b[0] >> 4)}
	return ErrUnsupported
}

func decodeIPv4(b []byte, p *Packet, wire int, depth int) error {
	if len(b) < 20 {
		return ErrTruncated
	}
	if b[0]>>4 != 4 {
		return ErrMalformed
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 {
		return ErrMalformed
	}
	if len(b) < ihl {
		return ErrTruncated
	}
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if total == 0 || total > wire {
		// BIG TCP super-packets seen by a capture on the sending host carry
		// 0; the frame length is then the truth. A frame shorter on the wire
		// than the header claims (sliced, or a short copy) has only what it
		// has, as for tshark.
		total = wire
	}
	if total < ihl {
		return ErrMalformed
	}
	p.IPVersion = 4
	p.IPLen = total
	frag := binary.BigEndian.Uint16(b[6:8])
	p.DF = frag&0x4000 != 0
	p.IPProto = b[9]
	copy(p.Src[:4], b[12:16])
	copy(p.Dst[:4], b[16:20])
	if frag&0x1fff != 0 {
		p.Fragment = true
		return nil
	}
	more := frag&0x2000 != 0
	return decodeTransport(b[ihl:], total-ihl, more, p, depth)
}

const (
	ipv6HopByHop = 0
	ipv6Routing  = 43
	ipv6Fragment = 44
	ipv6DestOpts = 60
	ipv6AH       = 51
	ipv6NoNext   = 59
)

func decodeIPv6(b []byte, p *Packet, wire int, depth int) error {
	if len(b) < 40 {
		return ErrTruncated
	}
	if b[0]>>4 != 6 {
		return ErrMalformed
	}
	p.IPVersion = 6
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	next := b[6]
	copy(p.Src[:], b[8:24])
	copy(p.Dst[:], b[24:40])
	b = b[40:]
	if plen == 0 || plen > wire-40 {
		// Jumbogram or BIG TCP super-packet: trust the frame length; and
		// never more than the frame had on the wire (as tshark).
		plen = wire - 40
		if plen < 0 {
			plen = 0
		}
	}
	p.IPLen = 40 + plen
	remaining := plen
	more := false
	for i := 0; i < 8; i++ {
		switch next {
		case ipv6HopByHop, ipv6Routing, ipv6DestOpts:
			if len(b) < 8 {
				return ErrTruncated
			}
			l := (int(b[1]) + 1) * 8
			if len(b) < l || remaining < l {
				return ErrTruncated
			}
			next = b[0]
			b, remaining = b[l:], remaining-l
			continue
		case ipv6AH:
			if len(b) < 8 {
				return ErrTruncated
			}
			l := (int(b[1]) + 2) * 4
			if len(b) < l || remaining < l {
				return ErrTruncated
			}
			next = b[0]
			b, remaining = b[l:], remaining-l
			continue
		case ipv6Fragment:
			if len(b) < 8 {
				return ErrTruncated
			}
			off := binary.BigEndian.Uint16(b[2:4])
			next = b[0]
			more = off&1 != 0
			b, remaining = b[8:], remaining-8
			if off&0xfff8 != 0 {
				p.IPProto = next
				p.Fragment = true
				return nil
			}
			continue
		case ipv6NoNext:
			p.IPProto = next
			return nil
		}
		p.IPProto = next
		return decodeTransport(b, remaining, more, p, depth)
	}
	return ErrMalformed
}

// decodeTransport decodes a TCP or UDP header, or the IP packet of an IP
// tunnel. l4len is the transport length according to the IP header (capped
// by the wire length); b holds the captured bytes of it.
func decodeTransport(b []byte, l4len int, moreFragments bool, p *Packet, depth int) error {
	switch p.IPProto {
	case 6:
		if len(b) < 20 {
			if moreFragments {
				p.Fragment = true
				return nil
			}
			return ErrTruncated
		}
		off := int(b[12]>>4) * 4
		if off < 20 || off > l4len {
			return ErrMalformed
		}
		if len(b) < off {
			return ErrTruncated
		}
		p.SrcPort = binary.BigEndian.Uint16(b[0:2])
		p.DstPort = binary.BigEndian.Uint16(b[2:4])
		p.Seq = binary.BigEndian.Uint32(b[4:8])
		p.Ack = binary.BigEndian.Uint32(b[8:12])
		p.Flags = b[13]
		p.Window = binary.BigEndian.Uint16(b[14:16])
		p.PayloadLen = l4len - off
		p.TCPValid = true
		if moreFragments {
			p.Fragment = true
		}
		parseTCPOptions(b[20:off], p)
		return nil
	case 17:
		if len(b) < 8 {
			if moreFragments {
				p.Fragment = true
				return nil
			}
			return ErrTruncated
		}
		if l4len < 8 {
			return ErrMalformed
		}
		p.SrcPort = binary.BigEndian.Uint16(b[0:2])
		p.DstPort = binary.BigEndian.Uint16(b[2:4])
		p.PayloadLen = l4len - 8
		if isTunnelPort(p.DstPort, p.SrcPort) {
			if moreFragments {
				// The first fragment of a tunnel packet holds the inner
				// headers; the UDP length is the whole datagram's.
				l4len = int(binary.BigEndian.Uint16(b[4:6]))
				if l4len < 8 {
					return ErrMalformed
				}
			}
			return decodeUDPTunnel(b[8:], l4len-8, p, depth)
		}
		return nil
	case 4, 41, 47: // IPv4 in IP, IPv6 in IP, GRE
		p.PayloadLen = l4len
		if moreFragments {
			// The first fragment holds the inner headers; the inner IP
			// length is then the truth (tshark reassembles the fragments).
			l4len = 1 << 20
		}
		return decodeIPTunnel(b, l4len, p, depth)
	}
	p.PayloadLen = l4len
	return nil
}

func isTunnelPort(dst, src uint16) bool {
	for _, port := range [2]uint16{dst, src} {
		switch port {
		case portVXLAN, portVXLANLinux, portGeneve, portGREinUDP:
			return true
		}
	}
	return false
}

// decodeUDPTunnel decodes the payload of a UDP datagram to a tunnel port.
// p describes the outer packet; on success it describes the inner one, on
// a payload that is not IP it is left as it was (a UDP packet) with
// p.Skipped saying why.
func decodeUDPTunnel(b []byte, wire int, p *Packet, depth int) error {
	if depth >= maxEncapsulations {
		return nil
	}
	outer := *p
	p.Src, p.Dst = [16]byte{}, [16]byte{} // an inner IPv4 sets 4 bytes only
	port := p.DstPort
	if !isTunnelPort(port, 0) {
		port = p.SrcPort
	}
	var err error
	switch port {
	case portVXLAN, portVXLANLinux:
		// flags (I bit), 3 reserved, 24-bit VNI, 1 reserved; then Ethernet.
		if len(b) < 8 {
			err = ErrTruncated
			break
		}
		if b[0]&0x08 == 0 {
			err = ErrUnsupported
			p.Skipped = Skip{Kind: SkipTunnel, Value: uint32(EncapVXLAN)}
			break
		}
		p.Encap |= EncapVXLAN
		err = decodeEthernet(b[8:], p, wire-8, depth+1)
	case portGeneve:
		// version and option length (4-byte words), flags, protocol type,
		// VNI, reserved; options; then the payload of that protocol type.
		if len(b) < 8 {
			err = ErrTruncated
			break
		}
		if b[0]>>6 != 0 {
			err = ErrUnsupported
			p.Skipped = Skip{Kind: SkipTunnel, Value: uint32(EncapGeneve)}
			break
		}
		hl := 8 + int(b[0]&0x3f)*4
		if len(b) < hl {
			err = ErrTruncated
			break
		}
		p.Encap |= EncapGeneve
		err = decodeEtherTypeTunnel(binary.BigEndian.Uint16(b[2:4]), b[hl:], p, wire-hl, depth+1)
	case portGREinUDP:
		p.Encap |= EncapGREinUDP
		err = decodeGRE(b, p, wire, depth+1)
	}
	if err != nil {
		restoreOuter(p, &outer, err)
	}
	return nil
}

// restoreOuter puts back the outer packet of a tunnel whose payload did
// not decode, remembering in Skipped what the payload was.
func restoreOuter(p, outer *Packet, err error) {
	skip, encap := p.Skipped, p.Encap
	*p = *outer
	if err == ErrUnsupported {
		skip.In = encap &^ outer.Encap
		p.Skipped = skip
	}
}

// decodeIPTunnel decodes the payload of an IP packet of protocol 4 (IPv4),
// 41 (IPv6) or 47 (GRE), like decodeUDPTunnel.
func decodeIPTunnel(b []byte, wire int, p *Packet, depth int) error {
	if depth >= maxEncapsulations {
		return nil
	}
	outer := *p
	p.Src, p.Dst = [16]byte{}, [16]byte{} // an inner IPv4 sets 4 bytes only
	if len(b) > wire {
		b = b[:wire] // Ethernet padding is not part of the inner packet
	}
	var err error
	switch p.IPProto {
	case 4:
		p.Encap |= EncapIPinIP
		err = decodeIPv4(b, p, wire, depth+1)
	case 41:
		p.Encap |= EncapIPinIP
		err = decodeIPv6(b, p, wire, depth+1)
	case 47:
		p.Encap |= EncapGRE
		err = decodeGRE(b, p, wire, depth+1)
	}
	if err != nil {
		restoreOuter(p, &outer, err)
	}
	return nil
}

// decodeGRE decodes a GRE header (RFC 2784/2890; version 0) and its
// payload: IP, Ethernet (transparent bridging), MPLS or ERSPAN.
func decodeGRE(b []byte, p *Packet, wire int, depth int) error {
	if len(b) < 4 {
		return ErrTruncated
	}
	flags := binary.BigEndian.Uint16(b[0:2])
	proto := binary.BigEndian.Uint16(b[2:4])
	if flags&0x0007 != 0 || flags&0x4000 != 0 { // version 1 (PPTP) or source routing
		p.Skipped = Skip{Kind: SkipGRE, Value: uint32(flags)}
		return ErrUnsupported
	}
	hl := 4
	if flags&0x8000 != 0 { // checksum
		hl += 4
	}
	if flags&0x2000 != 0 { // key
		hl += 4
	}
	if flags&0x1000 != 0 { // sequence number
		hl += 4
	}
	if len(b) < hl {
		return ErrTruncated
	}
	b, wire = b[hl:], wire-hl
	switch proto {
	case etherTypeERSPAN2: // ERSPAN type II: 8-byte header (type I has none; sequence bit tells)
		if flags&0x1000 != 0 {
			if len(b) < 8 {
				return ErrTruncated
			}
			b, wire = b[8:], wire-8
		}
		return decodeEthernet(b, p, wire, depth)
	case etherTypeERSPAN3: // ERSPAN type III: 12 bytes, 8 more with the O bit
		if len(b) < 12 {
			return ErrTruncated
		}
		n := 12
		if b[11]&1 != 0 {
			n += 8
		}
		if len(b) < n {
			return ErrTruncated
		}
		return decodeEthernet(b[n:], p, wire-n, depth)
	}
	return decodeEtherTypeTunnel(proto, b, p, wire, depth)
}

// decodeEtherTypeTunnel decodes a tunnel payload identified by an
// EtherType: Ethernet for transparent bridging, else as after Ethernet.
func decodeEtherTypeTunnel(proto uint16, b []byte, p *Packet, wire int, depth int) error {
	if proto == etherTypeTEB {
		return decodeEthernet(b, p, wire, depth)
	}
	return decodeEther(proto, b, p, wire, depth)
}

func parseTCPOptions(o []byte, p *Packet) {
	for len(o) > 0 {
		kind := o[0]
		switch kind {
		case 0: // end of options
			return
		case 1: // NOP
			o = o[1:]
			continue
		}
		if len(o) < 2 {
			return
		}
		l := int(o[1])
		if l < 2 || l > len(o) {
			return
		}
		switch kind {
		case 2:
			if l == 4 {
				p.MSS = binary.BigEndian.Uint16(o[2:4])
			}
		case 3:
			if l == 3 {
				s := o[2]
				if s > 14 { // RFC 7323: larger values are treated as 14
					s = 14
				}
				p.WScale = int8(s)
			}
		case 4:
			p.SACKPermitted = true
		case 5:
			p.SACKBlocks = uint8((l - 2) / 8)
		}
		o = o[l:]
	}
}

// Addr returns an address of the given IP version as a netip.Addr.
func Addr(version uint8, a [16]byte) netip.Addr {
	if version == 4 {
		return netip.AddrFrom4([4]byte{a[0], a[1], a[2], a[3]})
	}
	return netip.AddrFrom16(a)
}
