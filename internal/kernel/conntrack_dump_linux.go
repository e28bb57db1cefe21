package kernel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ConntrackDumper streams the conntrack table of the calling thread's
// network namespace over ctnetlink and decodes only what a per-state count
// needs (family, L4 protocol, status bits, TCP/SCTP/DCCP state). It allocates
// nothing per entry and reuses its receive buffer between dumps. It needs
// CAP_NET_ADMIN. A dumper is not safe for concurrent use.
type ConntrackDumper struct {
	buf []byte
	tap func([]byte) // tests: sees every received buffer
}

// ctnetlink constants (linux/netfilter/nfnetlink*.h).
const (
	nfnlSubsysCTNetlink = 1
	ipctnlMsgCtGet      = 1
	nfnetlinkV0         = 0
	dumpBufSize         = 64 << 10
	dumpRcvBuf          = 4 << 20
)

// Dump sends a dump request and calls fn for every entry, in kernel hash
// order. When fn returns false the dump stops early (the socket is closed,
// which frees the kernel side). It returns the number of entries passed to fn
// and whether the dump ran to its end. ctx bounds the whole dump.
func (d *ConntrackDumper) Dump(ctx context.Context, fn func(*ConntrackEntry) bool) (n int, complete bool, err error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return 0, false, fmt.Errorf("dump conntrack: open netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, false, fmt.Errorf("dump conntrack: bind: %w", err)
	}
	// A larger receive buffer lets the kernel batch more; failure is harmless.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, dumpRcvBuf)
	if err := setDeadline(ctx, fd); err != nil {
		return 0, false, fmt.Errorf("dump conntrack: %w", err)
	}
	req := make([]byte, unix.NLMSG_HDRLEN+4)
	nlenc.PutUint32(req[0:], uint32(len(req)))
	nlenc.PutUint16(req[4:], nfnlSubsysCTNetlink<<8|ipctnlMsgCtGet)
	nlenc.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	nlenc.PutUint32(req[8:], 1) // seq
	req[16] = unix.AF_UNSPEC    // both IPv4 and IPv6
	req[17] = nfnetlinkV0
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, false, fmt.Errorf("dump conntrack: send request: %w", err)
	}
	if d.buf == nil {
		d.buf = make([]byte, dumpBufSize)
	}
	var e ConntrackEntry
	for {
		if err := ctx.Err(); err != nil {
			return n, false, fmt.Errorf("dump conntrack: %w", err)
		}
		m, _, err := unix.Recvfrom(fd, d.buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.EAGAIN) {
				return n, false, fmt.Errorf("dump conntrack: %w", context.DeadlineExceeded)
			}
			if errors.Is(err, unix.ENOBUFS) {
				return n, false, fmt.Errorf("dump conntrack: receive buffer overrun: %w", err)
			}
			return n, false, fmt.Errorf("dump conntrack: receive: %w", err)
		}
		if d.tap != nil {
			d.tap(d.buf[:m])
		}
		done, stop, cnt, err := walkConntrackMessages(d.buf[:m], &e, fn)
		n += cnt
		if err != nil {
			return n, false, fmt.Errorf("dump conntrack: %w", err)
		}
		if stop {
			return n, false, nil
		}
		if done {
			return n, true, nil
		}
	}
}

func setDeadline(ctx context.Context, fd int) error {
	dl, ok := ctx.Deadline()
	if !ok {
		return nil
	}
	left := time.Until(dl)
	if left <= 0 {
		return context.DeadlineExceeded
	}
	tv := unix.NsecToTimeval(left.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("set receive timeout: %w", os.NewSyscallError("setsockopt", err))
	}
	return nil
}
