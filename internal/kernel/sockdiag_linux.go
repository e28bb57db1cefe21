package kernel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// SockDiagStatesAll asks for sockets in every state, as `ss state all` does
// (including request sockets, TCP_NEW_SYN_RECV).
const SockDiagStatesAll = 0xffff

// TCP states the tcp_info dump leaves out: TIME_WAIT and NEW_SYN_RECV
// minisockets carry no tcp_info.
const (
	tcpTimeWait   = 6
	tcpNewSynRecv = 12
)

// SockDiagRequest is one SOCK_DIAG_BY_FAMILY dump request.
type SockDiagRequest struct {
	Family   uint8  // AF_INET or AF_INET6
	Protocol uint8  // IPPROTO_TCP or IPPROTO_UDP
	States   uint32 // bit per TCP state (SockDiagStatesAll: all)
	// Info asks for the tcp_info extension (INET_DIAG_INFO): answers grow
	// from 72 bytes to several hundred.
	Info bool
}

// SockDiag is netsight's one NETLINK_SOCK_DIAG client (the sockets counter
// and the flows sock_diag back end use it). It opens its sockets in NetNS
// (a network namespace file descriptor; 0: the calling thread's namespace)
// and reuses its receive buffer, so it is not safe for concurrent use.
// Dumps need no capability; the destroy groups (WatchDestroyedTCP) need
// CAP_NET_ADMIN.
type SockDiag struct {
	NetNS int
	buf   []byte
	tap   func([]byte) // tests: sees every received buffer
}

// Dump calls fn for every socket req selects (header fields only).
func (s *SockDiag) Dump(ctx context.Context, req SockDiagRequest, fn func(*InetSocket)) error {
	d, err := s.Start(ctx, req)
	if err != nil {
		return err
	}
	return d.Each(ctx, fn)
}

// DumpTCPInfo returns every TCP socket of both families with its tcp_info,
// except TIME_WAIT and NEW_SYN_RECV minisockets. Listeners are included.
func (s *SockDiag) DumpTCPInfo(ctx context.Context) ([]Socket, error) {
	states := uint32(0xfff) &^ (1<<tcpTimeWait | 1<<tcpNewSynRecv)
	var out []Socket
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		d, err := s.Start(ctx, SockDiagRequest{Family: fam, Protocol: unix.IPPROTO_TCP, States: states, Info: true})
		if err == nil {
			err = d.EachMessage(ctx, func(off int, msg []byte) error {
				sk, err := ParseMessage(msg)
				if err != nil {
					return fmt.Errorf("offset %d: %w", off, err)
				}
				out = append(out, sk)
				return nil
			})
		}
		if err != nil {
			return nil, fmt.Errorf("dump tcp sockets (family %d): %w", fam, err)
		}
	}
	return out, nil
}

// SockDiagDump is a dump request in flight. Its socket belongs to the
// namespace it was opened in, so Each may run on any goroutine (several
// dumps can be received in parallel when each has its own SockDiag).
type SockDiagDump struct {
	c   *netlink.Conn
	buf []byte
	tap func([]byte)
}

// Start opens a NETLINK_SOCK_DIAG socket and sends the dump request. The
// caller must call Each or EachMessage (which close the socket) or Close.
func (s *SockDiag) Start(ctx context.Context, req SockDiagRequest) (*SockDiagDump, error) {
	c, err := netlink.Dial(unix.NETLINK_SOCK_DIAG, &netlink.Config{NetNS: s.NetNS})
	if err != nil {
		return nil, fmt.Errorf("sock_diag: open netlink socket: %w", err)
	}
	_ = c.SetReadBuffer(dumpRcvBuf)
	data := make([]byte, 56) // struct inet_diag_req_v2
	data[0], data[1] = req.Family, req.Protocol
	if req.Info {
		data[2] = 1 << (inetDiagInfo - 1)
	}
	nlenc.PutUint32(data[4:], req.States)
	if _, err := c.Send(netlink.Message{
		Header: netlink.Header{Type: sockDiagByFamily, Flags: netlink.Request | netlink.Dump},
		Data:   data,
	}); err != nil {
		c.Close()
		return nil, fmt.Errorf("sock_diag: send request: %w", err)
	}
	if s.buf == nil {
		s.buf = make([]byte, dumpBufSize)
	}
	return &SockDiagDump{c: c, buf: s.buf, tap: s.tap}, nil
}

// Close releases the socket (Each does it itself).
func (d *SockDiagDump) Close() error {
	if d.c == nil {
		return nil
	}
	err := d.c.Close()
	d.c = nil
	return err
}

// Each receives the dump, calling fn per socket (header fields only, sk
// reused), and closes the socket.
func (d *SockDiagDump) Each(ctx context.Context, fn func(*InetSocket)) error {
	var sk InetSocket
	return d.receive(ctx, func(b []byte) (bool, error) { return ParseInetDiagMessages(b, &sk, fn) })
}

// EachMessage receives the dump, calling fn with each answer's offset and
// payload (an inet_diag_msg and its attributes), and closes the socket.
func (d *SockDiagDump) EachMessage(ctx context.Context, fn func(off int, msg []byte) error) error {
	return d.receive(ctx, func(b []byte) (bool, error) { return eachNetlinkMessage(b, fn) })
}

// receive reads datagrams into the reused buffer (the netlink package's
// Receive allocates per message) until parse reports NLMSG_DONE.
func (d *SockDiagDump) receive(ctx context.Context, parse func([]byte) (bool, error)) error {
	defer d.Close()
	if dl, ok := ctx.Deadline(); ok {
		if err := d.c.SetReadDeadline(dl); err != nil {
			return fmt.Errorf("sock_diag: set deadline: %w", err)
		}
	}
	// The callback may still run after Close set d.c to nil (stop does
	// not wait for it): it uses its own reference (a deadline on a closed
	// socket is a harmless error).
	c := d.c
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Now()) })
	defer stop()
	rc, err := d.c.SyscallConn()
	if err != nil {
		return fmt.Errorf("sock_diag: %w", err)
	}
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), d.buf, unix.MSG_DONTWAIT)
			return rerr != unix.EAGAIN && rerr != unix.EINTR
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if cerr := ctx.Err(); cerr != nil {
					return fmt.Errorf("sock_diag: %w", cerr)
				}
				return fmt.Errorf("sock_diag: %w", context.DeadlineExceeded)
			}
			return fmt.Errorf("sock_diag: receive: %w", err)
		}
		if d.tap != nil {
			d.tap(d.buf[:n])
		}
		done, err := parse(d.buf[:n])
		if err != nil {
			return fmt.Errorf("sock_diag: %w", err)
		}
		if done {
			return nil
		}
	}
}

// Multicast groups of sock_diag broadcasts of destroyed TCP sockets.
const (
	grpInetTCPDestroy  = 1
	grpInet6TCPDestroy = 3
)

// destroyDrainPause is how long WatchDestroyedTCP waits after draining the
// notification socket; closes are reported at most this late.
const destroyDrainPause = 50 * time.Millisecond

// WatchDestroyedTCP calls fn for each TCP socket the kernel destroys in
// network namespace netns (0: the calling thread's), with its final
// tcp_info, until ctx ends. lost is called on each overrun (ENOBUFS).
// Joining the groups needs CAP_NET_ADMIN.
func WatchDestroyedTCP(ctx context.Context, netns int, fn func(Socket), lost func()) error {
	c, err := netlink.Dial(unix.NETLINK_SOCK_DIAG, &netlink.Config{NetNS: netns,
		Groups: 1<<(grpInetTCPDestroy-1) | 1<<(grpInet6TCPDestroy-1)})
	if err != nil {
		return fmt.Errorf("join sock_diag destroy groups (CAP_NET_ADMIN): %w", err)
	}
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("sock_diag destroy socket: %w", err)
	}
	// A large buffer lets the reader drain in batches (below) without
	// overruns: SO_RCVBUFFORCE (CAP_NET_ADMIN, which joining needed anyway)
	// is not capped by net.core.rmem_max.
	_ = rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20) != nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 16<<20)
		}
	})
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
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
			if errors.Is(err, syscall.ENOBUFS) {
				lost()
				continue
			}
			return fmt.Errorf("receive sock_diag destroy: %w", err)
		}
		for i := range n {
			if msgs[i].Hdr.Flags&unix.MSG_TRUNC != 0 {
				continue
			}
			ParseDestroyDatagram(bufs[i*slot:i*slot+int(min(msgs[i].Len, slot))], fn)
		}
		if n < batch {
			// Drained: let notifications accumulate for a moment so the
			// next call returns many (one wakeup per close costs more
			// than the close itself at high rates).
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(destroyDrainPause):
			}
		}
	}
}
