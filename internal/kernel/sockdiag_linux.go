package kernel

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// InetSocket is the part of an inet_diag_msg a socket count uses.
type InetSocket struct {
	Family uint8 // AF_INET or AF_INET6
	State  uint8 // kernel TCP state enum (UDP uses TCP_ESTABLISHED/TCP_CLOSE)
	SPort  uint16
	DPort  uint16
	// Dst is the peer address: 4 bytes used for AF_INET, 16 for AF_INET6.
	Dst [16]byte
}

// SockDiagStatesAll asks for sockets in every state, as `ss state all` does
// (including request sockets, TCP_NEW_SYN_RECV).
const SockDiagStatesAll = 0xffff

// SockDiag dumps inet sockets over NETLINK_SOCK_DIAG in the calling thread's
// network namespace, without extensions (no tcp_info), so each socket costs a
// fixed 72-byte message. One SockDiag reuses its socket buffer; it is not
// safe for concurrent use. Counting needs no capability.
type SockDiag struct {
	buf []byte
	tap func([]byte) // tests: sees every received buffer
	req [unix.NLMSG_HDRLEN + 56]byte
}

// Dump calls fn for every socket of family (AF_INET/AF_INET6) and protocol
// (IPPROTO_TCP/IPPROTO_UDP) whose state bit is set in states.
func (s *SockDiag) Dump(ctx context.Context, family, protocol uint8, states uint32, fn func(*InetSocket)) error {
	d, err := s.Start(ctx, family, protocol, states)
	if err != nil {
		return err
	}
	return d.Each(ctx, fn)
}

// SockDiagDump is a dump request in flight. Its socket belongs to the
// namespace of the thread that called Start, so Each may run on any
// goroutine (several dumps can be received in parallel).
type SockDiagDump struct {
	fd  int
	buf []byte
	tap func([]byte)
}

// Start opens a NETLINK_SOCK_DIAG socket in the calling thread's network
// namespace and sends the dump request. The caller must call Each (which
// closes the socket) or Close.
func (s *SockDiag) Start(ctx context.Context, family, protocol uint8, states uint32) (*SockDiagDump, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("sock_diag: open netlink socket: %w", err)
	}
	if err := setDeadline(ctx, fd); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("sock_diag: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, dumpRcvBuf)
	req := s.req[:]
	clear(req)
	nlenc.PutUint32(req[0:], uint32(len(req)))
	nlenc.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	nlenc.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	nlenc.PutUint32(req[8:], 1)
	req[16] = family
	req[17] = protocol
	nlenc.PutUint32(req[20:], states)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("sock_diag: send request: %w", err)
	}
	if s.buf == nil {
		s.buf = make([]byte, dumpBufSize)
	}
	return &SockDiagDump{fd: fd, buf: s.buf, tap: s.tap}, nil
}

// Close releases the socket (Each does it itself).
func (d *SockDiagDump) Close() error {
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// Each receives the dump, calling fn per socket, and closes the socket.
func (d *SockDiagDump) Each(ctx context.Context, fn func(*InetSocket)) error {
	defer d.Close()
	var sk InetSocket
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("sock_diag: %w", err)
		}
		m, _, err := unix.Recvfrom(d.fd, d.buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.EAGAIN) {
				return fmt.Errorf("sock_diag: %w", context.DeadlineExceeded)
			}
			return fmt.Errorf("sock_diag: receive: %w", err)
		}
		if d.tap != nil {
			d.tap(d.buf[:m])
		}
		done, err := ParseInetDiagMessages(d.buf[:m], &sk, fn)
		if err != nil {
			return fmt.Errorf("sock_diag: %w", err)
		}
		if done {
			return nil
		}
	}
}
