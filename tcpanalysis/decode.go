package tcpanalysis

import (
	"encoding/binary"
	"errors"
	"net/netip"
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
)

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
	VLAN    uint16

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
	etherTypeIPv4  = 0x0800
	etherTypeIPv6  = 0x86DD
	etherTypeVLAN  = 0x8100
	etherTypeQinQ  = 0x88A8
	etherType9100  = 0x9100
	maxVLANHeaders = 2
)

// Decode parses frame (starting with a link header of type lt) into p. It
// never allocates and never panics on any input; a frame that is not IPv4 or
// IPv6 returns ErrUnsupported, a short or inconsistent header ErrTruncated or
// ErrMalformed. p is fully overwritten except TimestampNanos and WireLen,
// which the caller sets.
func Decode(lt LinkType, frame []byte, p *Packet) error {
	ts, wl := p.TimestampNanos, p.WireLen
	*p = Packet{TimestampNanos: ts, WireLen: wl, WScale: -1}
	var etherType uint16
	b := frame
	switch lt {
	case LinkEthernet:
		if len(b) < 14 {
			return ErrTruncated
		}
		etherType = binary.BigEndian.Uint16(b[12:14])
		b = b[14:]
	case LinkRaw, LinkRawAlt, LinkIPv4, LinkIPv6:
		return decodeIP(b, p, wireLenAfter(wl, frame, b))
	case LinkNull, LinkLoop:
		if len(b) < 4 {
			return ErrTruncated
		}
		b = b[4:]
		return decodeIP(b, p, wireLenAfter(wl, frame, b))
	case LinkSLL:
		if len(b) < 16 {
			return ErrTruncated
		}
		etherType = binary.BigEndian.Uint16(b[14:16])
		b = b[16:]
	case LinkSLL2:
		if len(b) < 20 {
			return ErrTruncated
		}
		etherType = binary.BigEndian.Uint16(b[0:2])
		b = b[20:]
	default:
		return ErrUnsupported
	}
	for i := 0; etherType == etherTypeVLAN || etherType == etherTypeQinQ || etherType == etherType9100; i++ {
		if i == maxVLANHeaders || len(b) < 4 {
			return ErrTruncated
		}
		if !p.HasVLAN {
			p.HasVLAN = true
			p.VLAN = binary.BigEndian.Uint16(b[0:2]) & 0x0fff
		}
		etherType = binary.BigEndian.Uint16(b[2:4])
		b = b[4:]
	}
	switch etherType {
	case etherTypeIPv4:
		return decodeIPv4(b, p, wireLenAfter(wl, frame, b))
	case etherTypeIPv6:
		return decodeIPv6(b, p, wireLenAfter(wl, frame, b))
	}
	return ErrUnsupported
}

// wireLenAfter is the on-the-wire length of the bytes from rest on: the
// frame's wire length minus the link headers already consumed.
func wireLenAfter(wireLen int, frame, rest []byte) int {
	if wireLen < len(frame) {
		return len(rest)
	}
	return wireLen - (len(frame) - len(rest))
}

func decodeIP(b []byte, p *Packet, wireRemain int) error {
	if len(b) < 1 {
		return ErrTruncated
	}
	switch b[0] >> 4 {
	case 4:
		return decodeIPv4(b, p, wireRemain)
	case 6:
		return decodeIPv6(b, p, wireRemain)
	}
	return ErrUnsupported
}

func decodeIPv4(b []byte, p *Packet, wireRemain int) error {
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
	if total == 0 {
		// BIG TCP super-packets seen by a capture on the sending host carry
		// 0; the frame length is then the truth.
		total = wireRemain
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
	return decodeTransport(b[ihl:], total-ihl, more, p)
}

const (
	ipv6HopByHop = 0
	ipv6Routing  = 43
	ipv6Fragment = 44
	ipv6DestOpts = 60
	ipv6AH       = 51
	ipv6NoNext   = 59
)

func decodeIPv6(b []byte, p *Packet, wireRemain int) error {
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
	if plen == 0 {
		// Jumbogram or BIG TCP super-packet: trust the frame length.
		plen = wireRemain - 40
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
		return decodeTransport(b, remaining, more, p)
	}
	return ErrMalformed
}

// decodeTransport decodes a TCP or UDP header. l4len is the transport length
// according to the IP header; b holds the captured bytes of it.
func decodeTransport(b []byte, l4len int, moreFragments bool, p *Packet) error {
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
		return nil
	}
	p.PayloadLen = l4len
	return nil
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
