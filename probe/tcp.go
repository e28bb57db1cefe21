package probe

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// synRTO is Linux's initial SYN retransmission timeout (TCP_TIMEOUT_INIT).
const synRTO = time.Second

const tcpSynSent = 2 // TCP_SYN_SENT in include/net/tcp_states.h

// probeTCP times one handshake to ap. Its result counts every SYN sent
// (1 + retransmissions read from tcp_info) so that a lost SYN or SYN-ACK is
// a lost packet, and never reports the retransmission timeout as an RTT.
func (e *Engine) probeTCP(ctx context.Context, ti int, ap netip.AddrPort, timeout time.Duration) Result {
	res := Result{Target: ti, Addr: ap.Addr(), Sent: 1}
	domain := unix.AF_INET
	var sa unix.Sockaddr
	if ap.Addr().Is4() {
		sa = &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}
	} else {
		domain = unix.AF_INET6
		sa6 := &unix.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}
		if z := ap.Addr().Zone(); z != "" {
			if ifi, err := netInterfaceIndex(z); err == nil {
				sa6.ZoneId = uint32(ifi)
			}
		}
		sa = sa6
	}
	fd, err := e.opts.Socket(domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		res.Start, res.Outcome, res.Err = time.Now(), Error, fmt.Errorf("tcp socket: %w", err)
		return res
	}
	// RST on close: a probe must not leave TIME_WAIT behind (10,000
	// targets at 1/s would hold 600,000 of them).
	_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	f := os.NewFile(uintptr(fd), "tcp-probe")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		res.Start, res.Outcome, res.Err = time.Now(), Error, fmt.Errorf("tcp socket: %w", err)
		return res
	}
	res.Start = time.Now()
	dl := res.Start.Add(timeout)
	var cerr error
	_ = rc.Control(func(fd uintptr) { cerr = unix.Connect(int(fd), sa) })
	if errors.Is(cerr, unix.EINPROGRESS) {
		_ = f.SetWriteDeadline(dl)
		stop := context.AfterFunc(ctx, func() { _ = f.SetWriteDeadline(time.Now()) })
		werr := rc.Write(func(fd uintptr) bool {
			v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
			switch {
			case err != nil:
				cerr = err
				return true
			case v != 0:
				cerr = unix.Errno(v)
				return true
			}
			// Done once past SYN_SENT: the server may already have sent
			// its FIN (CLOSE_WAIT) by the time we look.
			ti, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
			if err == nil && ti.State != tcpSynSent {
				cerr = nil
				return true
			}
			return false // still SYN_SENT: wait for writability
		})
		stop()
		if werr != nil {
			cerr = werr
		}
	}
	elapsed := time.Since(res.Start)
	var retrans int
	var kernelRTT time.Duration
	_ = rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			retrans = max(int(info.Total_retrans), int(info.Retransmits))

			kernelRTT = time.Duration(info.Rtt) * time.Microsecond
		}
	})
	res.Sent = 1 + retrans

	switch {
	case cerr == nil:
		res.Outcome, res.Received = OK, 1
		// The kernel's sample (µs resolution) is immune to this
		// goroutine's scheduling delay; elapsed is the fallback.
		ref := elapsed
		if kernelRTT > 0 && kernelRTT <= elapsed {
			ref = kernelRTT
		}
		switch {
		case retrans == 0 && ref >= synRTO*9/10 && e.hiddenRetransmit(ti, ref):
			// No SYN was retransmitted, yet the handshake took a whole
			// SYN RTO longer than this path's RTT: the SYN-ACK was lost and
			// the server's retransmitted SYN-ACK completed it. One exchange
			// was lost; the time is not an RTT.
			res.Sent = 2
		case retrans == 0:
			res.RTT, res.HasRTT = ref, true
		case kernelRTT > 0 && kernelRTT < synRTO*9/10:
			// The answer to the retransmitted SYN, timed by the kernel
			// (TCP timestamps, 1 ms resolution). A sample of a second or
			// more echoes the first SYN: that is the timeout, not an RTT.
			res.RTT, res.HasRTT = kernelRTT, true
		}
	case errors.Is(cerr, unix.ECONNREFUSED):
		res.Outcome, res.Received = Refused, 1
		if retrans == 0 {
			res.RTT, res.HasRTT = elapsed, true
		}
		res.Err = fmt.Errorf("connect %s: connection refused", ap)
	case errors.Is(cerr, unix.EHOSTUNREACH), errors.Is(cerr, unix.ENETUNREACH),
		errors.Is(cerr, unix.EHOSTDOWN), errors.Is(cerr, unix.ENETDOWN):
		res.Outcome, res.Err = Unreachable, fmt.Errorf("connect %s: %w", ap, cerr)
	case errors.Is(cerr, os.ErrDeadlineExceeded), errors.Is(cerr, unix.ETIMEDOUT):
		if ctx.Err() != nil {
			res.Outcome, res.Err = Error, fmt.Errorf("connect %s: %w", ap, ctx.Err())
		} else {
			res.Outcome, res.Err = Timeout, fmt.Errorf("connect %s: timeout after %s", ap, timeout)
		}
	default:
		res.Outcome, res.Err = Error, fmt.Errorf("connect %s: %w", ap, cerr)
	}
	if res.HasRTT {
		e.noteRTT(ti, res.RTT)
	}
	return res
}

// noteRTT keeps the smallest RTT seen per target: the path's baseline.
func (e *Engine) noteRTT(ti int, rtt time.Duration) {
	m := &e.minRTT[ti]
	for {
		old := m.Load()
		if old != 0 && old <= int64(rtt) {
			return
		}
		if m.CompareAndSwap(old, int64(rtt)) {
			return
		}
	}
}

// hiddenRetransmit reports whether a handshake of elapsed, with no SYN
// retransmitted, is explained by a lost SYN-ACK that the server
// retransmitted after its own 1 s timer: the elapsed time exceeds the path's
// known RTT by about one SYN RTO, or, before any RTT is known, it lies within
// half an RTO above one RTO (real paths with 1.0-1.5 s RTTs do not exist on
// Earth; geostationary links are about 0.6 s).
func (e *Engine) hiddenRetransmit(ti int, elapsed time.Duration) bool {
	if base := time.Duration(e.minRTT[ti].Load()); base > 0 {
		return elapsed-base >= synRTO*9/10
	}
	return elapsed < synRTO*3/2
}
