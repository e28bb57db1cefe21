package kernel

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// Kernel constants (include/uapi/linux/inet_diag.h, sock_diag.h).
const (
	sockDiagByFamily = 20
	inetDiagInfo     = 2  // INET_DIAG_INFO: struct tcp_info
	inetDiagCgroupID = 21 // INET_DIAG_CGROUP_ID
	// inetDiagMsgLen is sizeof(struct inet_diag_msg).
	inetDiagMsgLen = 72
)

// InetSocket is the fixed part of an inet_diag_msg a socket count uses.
type InetSocket struct {
	Family uint8 // AF_INET or AF_INET6
	State  uint8 // kernel TCP state enum (UDP uses TCP_ESTABLISHED/TCP_CLOSE)
	SPort  uint16
	DPort  uint16
	// Dst is the peer address: 4 bytes used for AF_INET, 16 for AF_INET6.
	Dst [16]byte
}

// decodeInetDiagHeader fills sk from the fixed header of an inet_diag_msg
// (msg holds at least inetDiagMsgLen bytes).
func decodeInetDiagHeader(msg []byte, sk *InetSocket) {
	sk.Family = msg[0]
	sk.State = msg[1]
	// id starts at 4: sport(be16) dport(be16) src[16] dst[16] if cookie.
	sk.SPort = binary.BigEndian.Uint16(msg[4:])
	sk.DPort = binary.BigEndian.Uint16(msg[6:])
	copy(sk.Dst[:], msg[24:40])
}

// eachNetlinkMessage walks a buffer of netlink messages, calling fn with
// the offset and payload of each data message. It returns done at
// NLMSG_DONE. Errors name the byte offset.
func eachNetlinkMessage(b []byte, fn func(off int, msg []byte) error) (done bool, err error) {
	off := 0
	for off < len(b) {
		if len(b)-off < 16 {
			return false, fmt.Errorf("offset %d: truncated netlink header (%d bytes left)", off, len(b)-off)
		}
		l := int(nlenc.Uint32(b[off:]))
		typ := nlenc.Uint16(b[off+4:])
		if l < 16 || l > len(b)-off {
			return false, fmt.Errorf("offset %d: netlink message length %d out of range (%d bytes left)", off, l, len(b)-off)
		}
		msg := b[off+16 : off+l]
		switch typ {
		case unix.NLMSG_DONE:
			return true, nil
		case unix.NLMSG_ERROR:
			if len(msg) < 4 {
				return false, fmt.Errorf("offset %d: truncated netlink error", off)
			}
			if code := int32(nlenc.Uint32(msg)); code != 0 {
				return false, fmt.Errorf("kernel error: %w", syscall.Errno(-code))
			}
		case unix.NLMSG_NOOP:
		default:
			if err := fn(off+16, msg); err != nil {
				return false, err
			}
		}
		off += align4(l)
	}
	return false, nil
}

// ParseInetDiagMessages decodes a buffer of netlink messages holding
// inet_diag_msg replies, calling fn for each socket (sk is reused). It
// returns done at NLMSG_DONE. Errors name the byte offset.
func ParseInetDiagMessages(b []byte, sk *InetSocket, fn func(*InetSocket)) (done bool, err error) {
	return eachNetlinkMessage(b, func(off int, msg []byte) error {
		if len(msg) < inetDiagMsgLen {
			return fmt.Errorf("offset %d: inet_diag_msg of %d bytes, want %d", off, len(msg), inetDiagMsgLen)
		}
		decodeInetDiagHeader(msg, sk)
		fn(sk)
		return nil
	})
}

// Socket is one INET_DIAG answer in full: the socket's identity and, when
// asked for, its tcp_info.
type Socket struct {
	Family        uint8
	State         uint8
	Local, Remote netip.AddrPort
	Cookie        uint64
	Inode         uint32
	UID           uint32
	CgroupID      uint64
	// RQueue and WQueue are idiag_rqueue and idiag_wqueue: for a TCP
	// socket in a connected state, the bytes received and not yet read by
	// the application and the bytes sent and not yet acknowledged; for a
	// listener, the accept queue's length and limit.
	RQueue, WQueue uint32
	// HasInfo is false when the answer carried no tcp_info.
	HasInfo bool
	Info    TCPInfo
}

// TCPInfo is the part of struct tcp_info netsight uses. Fields the kernel
// did not send (older kernels send a shorter struct) stay zero; where zero
// is a meaningful value the Has* flags say whether the field was there.
// The kernel version that added each field is in its comment.
type TCPInfo struct {
	State         uint8
	RTT, MinRTT   uint32 // microseconds
	Unacked       uint32 // segments in flight (tcpi_unacked)
	TotalRetrans  uint32
	BytesAcked    uint64
	BytesReceived uint64
	SegsIn        uint32 // every segment received, RST and pure ACKs included (4.2)
	NotsentBytes  uint32 // bytes queued and not yet sent (4.6)
	DataSegsIn    uint32
	DataSegsOut   uint32
	// DeliveryRate is tcpi_delivery_rate in bytes per second (4.9).
	DeliveryRate uint64
	// BusyTime, RwndLimited and SndbufLimited are microseconds with data
	// in flight, limited by the peer's receive window, limited by this
	// host's send buffer (4.10; HasChrono).
	BusyTime, RwndLimited, SndbufLimited uint64
	HasChrono                            bool
	DSACKDups                            uint32 // 5.4
	// SndWnd is the peer's advertised receive window in bytes (5.4,
	// HasSndWnd); RcvWnd the window this host advertised last (6.2,
	// HasRcvWnd).
	SndWnd, RcvWnd       uint32
	HasSndWnd, HasRcvWnd bool
	TotalRTO             uint16
	HasTotalRTO          bool // kernel >= 6.7
}

// tcp_info offsets (include/uapi/linux/tcp.h).
const (
	offUnacked       = 24
	offRTT           = 68
	offTotalRetrans  = 100
	offBytesAcked    = 120
	offBytesReceived = 128
	offSegsIn        = 140
	offNotsentBytes  = 144
	offMinRTT        = 148
	offDataSegsIn    = 152
	offDataSegsOut   = 156
	offDeliveryRate  = 160
	offBusyTime      = 168
	offRwndLimited   = 176
	offSndbufLimited = 184
	offDSACKDups     = 216
	offSndWnd        = 228
	offRcvWnd        = 232
	offTotalRTO      = 240
)

// ParseTCPInfo decodes a tcp_info attribute of any length the kernel sends.
func ParseTCPInfo(b []byte) (TCPInfo, error) {
	var ti TCPInfo
	if len(b) < offTotalRetrans+4 {
		return ti, fmt.Errorf("tcp_info: %d bytes, want at least %d", len(b), offTotalRetrans+4)
	}
	le := binary.NativeEndian
	ti.State = b[0]
	ti.Unacked = le.Uint32(b[offUnacked:])
	ti.RTT = le.Uint32(b[offRTT:])
	ti.TotalRetrans = le.Uint32(b[offTotalRetrans:])
	// Each group is read only when the attribute holds it whole.
	if len(b) >= offBytesReceived+8 {
		ti.BytesAcked = le.Uint64(b[offBytesAcked:])
		ti.BytesReceived = le.Uint64(b[offBytesReceived:])
	}
	if len(b) >= offNotsentBytes+4 {
		ti.SegsIn = le.Uint32(b[offSegsIn:])
		ti.NotsentBytes = le.Uint32(b[offNotsentBytes:])
	}
	if len(b) >= offDataSegsOut+4 {
		ti.MinRTT = le.Uint32(b[offMinRTT:])
		ti.DataSegsIn = le.Uint32(b[offDataSegsIn:])
		ti.DataSegsOut = le.Uint32(b[offDataSegsOut:])
	}
	if len(b) >= offDeliveryRate+8 {
		ti.DeliveryRate = le.Uint64(b[offDeliveryRate:])
	}
	if len(b) >= offSndbufLimited+8 {
		ti.BusyTime = le.Uint64(b[offBusyTime:])
		ti.RwndLimited = le.Uint64(b[offRwndLimited:])
		ti.SndbufLimited = le.Uint64(b[offSndbufLimited:])
		ti.HasChrono = true
	}
	if len(b) >= offDSACKDups+4 {
		ti.DSACKDups = le.Uint32(b[offDSACKDups:])
	}
	if len(b) >= offSndWnd+4 {
		ti.SndWnd = le.Uint32(b[offSndWnd:])
		ti.HasSndWnd = true
	}
	if len(b) >= offRcvWnd+4 {
		ti.RcvWnd = le.Uint32(b[offRcvWnd:])
		ti.HasRcvWnd = true
	}
	if len(b) >= offTotalRTO+2 {
		ti.TotalRTO = le.Uint16(b[offTotalRTO:])
		ti.HasTotalRTO = true
	}
	return ti, nil
}

// ParseMessage decodes one SOCK_DIAG_BY_FAMILY answer (struct
// inet_diag_msg followed by attributes).
func ParseMessage(b []byte) (Socket, error) {
	var s Socket
	if len(b) < inetDiagMsgLen {
		return s, fmt.Errorf("inet_diag_msg: %d bytes, want at least %d", len(b), inetDiagMsgLen)
	}
	var h InetSocket
	decodeInetDiagHeader(b, &h)
	s.Family, s.State = h.Family, h.State
	var src, dst netip.Addr
	switch s.Family {
	case unix.AF_INET:
		src = netip.AddrFrom4([4]byte(b[8:12]))
		dst = netip.AddrFrom4([4]byte(h.Dst[:4]))
	case unix.AF_INET6:
		src = netip.AddrFrom16([16]byte(b[8:24])).Unmap()
		dst = netip.AddrFrom16(h.Dst).Unmap()
	default:
		return s, fmt.Errorf("inet_diag_msg: family %d at byte 0, want AF_INET or AF_INET6", s.Family)
	}
	s.Local, s.Remote = netip.AddrPortFrom(src, h.SPort), netip.AddrPortFrom(dst, h.DPort)
	// idiag_cookie is two host-order u32s, low word first.
	s.Cookie = uint64(binary.NativeEndian.Uint32(b[44:])) | uint64(binary.NativeEndian.Uint32(b[48:]))<<32
	s.RQueue = binary.NativeEndian.Uint32(b[56:])
	s.WQueue = binary.NativeEndian.Uint32(b[60:])
	s.UID = binary.NativeEndian.Uint32(b[64:])
	s.Inode = binary.NativeEndian.Uint32(b[68:])
	if len(b) == inetDiagMsgLen {
		return s, nil
	}
	// The attributes are walked in place: mdlayher/netlink's decoder copies
	// each one (7 allocations per socket, most of a poll's parse cost).
	for off := inetDiagMsgLen; off < len(b); {
		if len(b)-off < 4 {
			return s, fmt.Errorf("inet_diag attributes at byte %d: %d bytes left, want a 4-byte header", off, len(b)-off)
		}
		l := int(binary.NativeEndian.Uint16(b[off:]))
		typ := binary.NativeEndian.Uint16(b[off+2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if l < 4 || l > len(b)-off {
			return s, fmt.Errorf("inet_diag attributes at byte %d: attribute length %d out of range (%d bytes left)", off, l, len(b)-off)
		}
		data := b[off+4 : off+l]
		switch typ {
		case inetDiagInfo:
			ti, err := ParseTCPInfo(data)
			if err != nil {
				return s, err
			}
			s.Info, s.HasInfo = ti, true
		case inetDiagCgroupID:
			if len(data) == 8 {
				s.CgroupID = binary.NativeEndian.Uint64(data)
			}
		}
		off += align4(l)
	}
	return s, nil
}

// ParseDestroyDatagram calls fn for each SOCK_DIAG_BY_FAMILY message of a
// destroy notification datagram; malformed messages are skipped.
func ParseDestroyDatagram(b []byte, fn func(Socket)) {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(nlenc.Uint32(b))
		typ := nlenc.Uint16(b[4:])
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return
		}
		if typ == sockDiagByFamily {
			if s, err := ParseMessage(b[unix.NLMSG_HDRLEN:l]); err == nil {
				fn(s)
			}
		}
		b = b[min(align4(l), len(b)):]
	}
}
