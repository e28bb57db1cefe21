package sockdiag

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
	"unsafe"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Kernel constants (include/uapi/linux/inet_diag.h, sock_diag.h).
const (
	sockDiagByFamily = 20
	inetDiagInfo     = 2
	inetDiagCgroupID = 21
	// Multicast groups of sock_diag broadcasts of destroyed sockets.
	grpInetTCPDestroy  = 1
	grpInet6TCPDestroy = 3

	tcpTimeWait   = 6
	tcpListen     = 10
	tcpNewSynRecv = 12

	inetDiagMsgLen = 72
)

// Socket is one INET_DIAG answer: the socket's identity and its tcp_info.
type Socket struct {
	Family        uint8
	State         uint8
	Local, Remote netip.AddrPort
	Cookie        uint64
	Inode         uint32
	UID           uint32
	CgroupID      uint64
	// HasInfo is false when the answer carried no tcp_info.
	HasInfo bool
	Info    TCPInfo
}

// TCPInfo is the part of struct tcp_info netsight uses. Fields the kernel
// did not send (older kernels send a shorter struct) stay zero and the Has*
// flags say so.
type TCPInfo struct {
	State         uint8
	RTT, MinRTT   uint32 // microseconds
	TotalRetrans  uint32
	BytesAcked    uint64
	BytesReceived uint64
	DataSegsIn    uint32
	DataSegsOut   uint32
	TotalRTO      uint16
	HasTotalRTO   bool // kernel >= 6.7
}

// tcp_info offsets (include/uapi/linux/tcp.h).
const (
	offRTT           = 68
	offTotalRetrans  = 100
	offBytesAcked    = 120
	offBytesReceived = 128
	offMinRTT        = 148
	offDataSegsIn    = 152
	offDataSegsOut   = 156
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
	ti.RTT = le.Uint32(b[offRTT:])
	ti.TotalRetrans = le.Uint32(b[offTotalRetrans:])
	if len(b) >= offBytesReceived+8 {
		ti.BytesAcked = le.Uint64(b[offBytesAcked:])
		ti.BytesReceived = le.Uint64(b[offBytesReceived:])
	}
	if len(b) >= offDataSegsOut+4 {
		ti.MinRTT = le.Uint32(b[offMinRTT:])
		ti.DataSegsIn = le.Uint32(b[offDataSegsIn:])
		ti.DataSegsOut = le.Uint32(b[offDataSegsOut:])
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
	s.Family, s.State = b[0], b[1]
	sport := binary.BigEndian.Uint16(b[4:])
	dport := binary.BigEndian.Uint16(b[6:])
	var src, dst netip.Addr
	switch s.Family {
	case unix.AF_INET:
		src = netip.AddrFrom4([4]byte(b[8:12]))
		dst = netip.AddrFrom4([4]byte(b[24:28]))
	case unix.AF_INET6:
		src = netip.AddrFrom16([16]byte(b[8:24])).Unmap()
		dst = netip.AddrFrom16([16]byte(b[24:40])).Unmap()
	default:
		return s, fmt.Errorf("inet_diag_msg: family %d at byte 0, want AF_INET or AF_INET6", s.Family)
	}
	s.Local, s.Remote = netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)
	// idiag_cookie is two host-order u32s, low word first.
	s.Cookie = uint64(binary.NativeEndian.Uint32(b[44:])) | uint64(binary.NativeEndian.Uint32(b[48:]))<<32
	s.UID = binary.NativeEndian.Uint32(b[64:])
	s.Inode = binary.NativeEndian.Uint32(b[68:])
	ad, err := netlink.NewAttributeDecoder(b[inetDiagMsgLen:])
	if err != nil {
		return s, fmt.Errorf("inet_diag attributes at byte %d: %w", inetDiagMsgLen, err)
	}
	for ad.Next() {
		switch ad.Type() {
		case inetDiagInfo:
			ti, err := ParseTCPInfo(ad.Bytes())
			if err != nil {
				return s, err
			}
			s.Info, s.HasInfo = ti, true
		case inetDiagCgroupID:
			if d := ad.Bytes(); len(d) == 8 {
				s.CgroupID = binary.NativeEndian.Uint64(d)
			}
		}
	}
	if err := ad.Err(); err != nil {
		return s, fmt.Errorf("inet_diag attributes: %w", err)
	}
	return s, nil
}

// Dialer opens sock_diag sockets, optionally in another network namespace.
type Dialer struct {
	// NetNS is a network namespace file descriptor (0: the current one).
	NetNS int
}

// Dump returns every TCP socket of both families except TIME_WAIT and
// NEW_SYN_RECV minisockets (they carry no tcp_info). Listeners are included.
func (d Dialer) Dump(ctx context.Context) ([]Socket, error) {
	c, err := netlink.Dial(unix.NETLINK_SOCK_DIAG, &netlink.Config{NetNS: d.NetNS})
	if err != nil {
		return nil, fmt.Errorf("dial sock_diag: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		if err := c.SetDeadline(dl); err != nil {
			return nil, fmt.Errorf("sock_diag deadline: %w", err)
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	states := uint32(0xfff) &^ (1<<tcpTimeWait | 1<<tcpNewSynRecv)
	var out []Socket
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		req := make([]byte, 56)
		req[0], req[1], req[2] = fam, unix.IPPROTO_TCP, 1<<(inetDiagInfo-1)
		binary.NativeEndian.PutUint32(req[4:], states)
		msgs, err := c.Execute(netlink.Message{
			Header: netlink.Header{Type: sockDiagByFamily, Flags: netlink.Request | netlink.Dump},
			Data:   req,
		})
		if err != nil {
			return nil, fmt.Errorf("dump tcp sockets (family %d): %w", fam, err)
		}
		for _, m := range msgs {
			s, err := ParseMessage(m.Data)
			if err != nil {
				return nil, fmt.Errorf("dump tcp sockets: %w", err)
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// drainPause is how long Watch waits after draining the notification
// socket; closes are reported at most this late.
const drainPause = 50 * time.Millisecond

// ErrDestroyLost is returned (wrapped) by Watch when the kernel dropped
// destroy notifications because the socket buffer was full.
var ErrDestroyLost = errors.New("sock_diag destroy notifications lost")

// Watch calls fn for each TCP socket the kernel destroys, with its final
// tcp_info, until ctx ends. lost is called with the count of overruns
// (ENOBUFS). Joining the groups needs CAP_NET_ADMIN.
func (d Dialer) Watch(ctx context.Context, fn func(Socket), lost func()) error {
	c, err := netlink.Dial(unix.NETLINK_SOCK_DIAG, &netlink.Config{NetNS: d.NetNS,
		Groups: 1<<(grpInetTCPDestroy-1) | 1<<(grpInet6TCPDestroy-1)})
	if err != nil {
		return fmt.Errorf("join sock_diag destroy groups (CAP_NET_ADMIN): %w", err)
	}
	defer c.Close()
	// A large buffer lets the reader drain in batches (below) without
	// overruns: SO_RCVBUFFORCE (CAP_NET_ADMIN, which joining needed anyway)
	// is not capped by net.core.rmem_max.
	if rc, err := c.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 16<<20)
			}
		})
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("sock_diag destroy socket: %w", err)
	}
	// recvmmsg: up to 64 notifications per system call into reused
	// buffers (the netlink package peeks first and allocates per message,
	// several times the cost at high close rates).
	const batch, slot = 64, 4096
	bufs := make([]byte, batch*slot)
	iovs := make([]unix.Iovec, batch)
	msgs := make([]unix.Mmsghdr, batch)
	for i := range batch {
		iovs[i].Base = &bufs[i*slot]
		iovs[i].SetLen(slot)
		msgs[i].Hdr.Iov = &iovs[i]
		msgs[i].Hdr.SetIovlen(1)
	}
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&msgs[0])), batch, unix.MSG_DONTWAIT, 0, 0)
			if e == unix.EAGAIN || e == unix.EINTR {
				return false
			}
			if e != 0 {
				rerr = e
			}
			n = int(r)
			return true
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, unix.ENOBUFS) {
				lost()
				continue
			}
			return fmt.Errorf("receive sock_diag destroy: %w", err)
		}
		for i := range n {
			if msgs[i].Hdr.Flags&unix.MSG_TRUNC != 0 {
				continue
			}
			parseDatagram(bufs[i*slot:i*slot+int(min(msgs[i].Len, slot))], fn)
		}
		if n < batch {
			// Drained: let notifications accumulate for a moment so the
			// next call returns many (one wakeup per close costs more
			// than the close itself at high rates).
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(drainPause):
			}
		}
	}
}

// parseDatagram calls fn for each SOCK_DIAG_BY_FAMILY message in b.
func parseDatagram(b []byte, fn func(Socket)) {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b))
		typ := binary.NativeEndian.Uint16(b[4:])
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return
		}
		if typ == sockDiagByFamily {
			if s, err := ParseMessage(b[unix.NLMSG_HDRLEN:l]); err == nil {
				fn(s)
			}
		}
		b = b[min(nlmsgAlign(l), len(b)):]
	}
}

func nlmsgAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }
