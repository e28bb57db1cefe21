package probe

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// ICMP header and payload layout. The payload starts with a 16-byte token:
// the engine's random 64-bit token and the probe's 64-bit serial. The rest is
// a fixed filler pattern.
const (
	icmpHeaderLen = 8
	tokenLen      = 16
)

type sockKey struct {
	v6, df bool
}

type icmpSock struct {
	key  sockKey
	mode ICMPMode
	f    *os.File
	rc   syscall.RawConn

	mu  sync.Mutex // guards buf (send path)
	buf []byte
}

// icmpSocket returns the shared socket for a family and DF setting, opening
// it on first use.
func (e *Engine) icmpSocket(k sockKey) (*icmpSock, error) {
	e.sockMu.Lock()
	defer e.sockMu.Unlock()
	if s := e.socks[k]; s != nil {
		return s, nil
	}
	if f, ok := e.sockErr[k]; ok && time.Since(f.at) < sockRetry {
		return nil, f.err
	}
	s, err := e.openICMP(k)
	if err != nil {
		e.sockErr[k] = sockFailure{err: err, at: time.Now()}
		e.log.Error("cannot open icmp socket", "ipv6", k.v6, "df", k.df, "err", err)
		return nil, err
	}
	delete(e.sockErr, k)
	e.socks[k] = s
	e.log.Info("icmp socket open", "ipv6", k.v6, "df", k.df, "mode", s.mode)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.readLoop(s)
	}()
	return s, nil
}

func (e *Engine) openICMP(k sockKey) (*icmpSock, error) {
	domain, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if k.v6 {
		domain, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	var fd int
	var err, dgramErr error
	mode := ICMPDatagram
	if e.opts.ICMPMode != ICMPRaw {
		fd, dgramErr = e.opts.Socket(domain, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
		err = dgramErr
	}
	if e.opts.ICMPMode == ICMPRaw || (dgramErr != nil && e.opts.ICMPMode == ICMPAuto) {
		mode = ICMPRaw
		fd, err = e.opts.Socket(domain, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			if dgramErr != nil {
				return nil, fmt.Errorf("datagram icmp socket: %v (net.ipv4.ping_group_range excludes our gid?); raw icmp socket: %w (needs CAP_NET_RAW)", dgramErr, err)
			}
			return nil, fmt.Errorf("raw icmp socket: %w (needs CAP_NET_RAW)", err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("datagram icmp socket: %w (check net.ipv4.ping_group_range)", err)
	}
	if err := setupICMP(fd, k, mode); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "icmp")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("icmp socket: %w", err)
	}
	return &icmpSock{key: k, mode: mode, f: f, rc: rc, buf: make([]byte, icmpHeaderLen+MaxSize)}, nil
}

func setupICMP(fd int, k sockKey, mode ICMPMode) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fmt.Errorf("icmp socket: SO_TIMESTAMPNS: %w", err)
	}
	if mode == ICMPDatagram {
		// ICMP errors about our echoes (unreachable, too big) arrive on the
		// socket's error queue, quoting the echo: see readErrQueue. Raw
		// sockets receive them as ordinary messages.
		if k.v6 {
			_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1)
		} else {
			_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVERR, 1)
		}
	}
	// Room for a burst of thousands of replies; FORCE needs CAP_NET_ADMIN.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	}
	if !k.v6 {
		pmtu := unix.IP_PMTUDISC_DONT // large probes fragment
		if k.df {
			pmtu = unix.IP_PMTUDISC_PROBE // DF set, no local PMTU cache interference
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, pmtu); err != nil {
			return fmt.Errorf("icmp socket: IP_MTU_DISCOVER: %w", err)
		}
		return nil
	}
	if k.df {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG, 1); err != nil {
			return fmt.Errorf("icmp socket: IPV6_DONTFRAG: %w", err)
		}
	}
	if mode == ICMPRaw {
		// A raw ICMPv6 socket sees every ICMPv6 message; keep the ones
		// that can answer an echo.
		var f ipv6.ICMPFilter
		f.SetAll(true)
		for _, t := range []ipv6.ICMPType{ipv6.ICMPTypeEchoReply, ipv6.ICMPTypeDestinationUnreachable,
			ipv6.ICMPTypePacketTooBig, ipv6.ICMPTypeTimeExceeded} {
			f.Accept(t)
		}
		filt := (*unix.ICMPv6Filter)(unsafe.Pointer(&f))
		if err := unix.SetsockoptICMPv6Filter(fd, unix.IPPROTO_ICMPV6, unix.ICMPV6_FILTER, filt); err != nil {
			return fmt.Errorf("icmp socket: ICMPV6_FILTER: %w", err)
		}
	}
	return nil
}

func (e *Engine) closeSockets() {
	e.sockMu.Lock()
	defer e.sockMu.Unlock()
	for k, s := range e.socks {
		s.f.Close()
		delete(e.socks, k)
	}
}

// sendICMP sends one echo request to addr for target ti.
func (e *Engine) sendICMP(ti int, addr netip.Addr) {
	t := &e.targets[ti]
	k := sockKey{v6: addr.Is6(), df: t.DF}
	s, err := e.icmpSocket(k)
	if err != nil {
		e.opts.OnResult(Result{Target: ti, Start: time.Now(), Addr: addr, Outcome: Error, Sent: 1, Err: err})
		return
	}
	serial := e.serial.Add(1)
	seq := uint16(serial)
	s.mu.Lock()
	pkt := buildEcho(s.buf[:icmpHeaderLen+t.size()], k.v6, s.mode == ICMPRaw, e.id, seq, e.token, serial)
	var sa unix.Sockaddr
	if k.v6 {
		sa6 := &unix.SockaddrInet6{Addr: addr.As16()}
		if z := addr.Zone(); z != "" {
			if ifi, err := netInterfaceIndex(z); err == nil {
				sa6.ZoneId = uint32(ifi)
			}
		}
		sa = sa6
	} else {
		sa = &unix.SockaddrInet4{Addr: addr.As4()}
	}
	p := &pend{ti: ti, serial: serial, seq: seq, addr: addr}
	e.pmu.Lock()
	p.start = time.Now()
	e.pending[serial] = p
	heap.Push(&e.deadlines, deadline{at: p.start.Add(t.timeout()), serial: serial})
	e.pmu.Unlock()
	var serr error
	werr := s.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), pkt, 0, sa)
		if serr != nil && serr != unix.EAGAIN && s.mode == ICMPDatagram && asyncErr(serr) {
			// With IP_RECVERR a datagram socket's pending error (an ICMP
			// error about an earlier echo, to any target) fails the next
			// send, whose packet is not sent. Reading it cleared it: retry.
			serr = unix.Sendto(int(fd), pkt, 0, sa)
		}
		return serr != unix.EAGAIN
	})
	s.mu.Unlock()
	if werr != nil && serr == nil {
		serr = werr
	}
	if serr != nil {
		if p := e.take(serial); p != nil {
			out := Error
			if errors.Is(serr, unix.EHOSTUNREACH) || errors.Is(serr, unix.ENETUNREACH) {
				out = Unreachable
			}
			e.opts.OnResult(Result{Target: ti, Start: p.start, Addr: addr, Outcome: out, Sent: 1,
				Err: fmt.Errorf("send echo to %s: %w", addr, serr)})
		}
	}
}

// buildEcho writes an echo request into b (len = header + payload) and
// returns it. The v4 checksum is computed for raw sockets; the kernel fills
// it for datagram sockets and for ICMPv6.
func buildEcho(b []byte, v6, raw bool, id, seq uint16, token, serial uint64) []byte {
	if v6 {
		b[0] = byte(ipv6.ICMPTypeEchoRequest)
	} else {
		b[0] = byte(ipv4.ICMPTypeEcho)
	}
	b[1] = 0
	b[2], b[3] = 0, 0
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	binary.BigEndian.PutUint64(b[8:], token)
	binary.BigEndian.PutUint64(b[16:], serial)
	for i := icmpHeaderLen + tokenLen; i < len(b); i++ {
		b[i] = byte(i)
	}
	if !v6 && raw {
		binary.BigEndian.PutUint16(b[2:], checksum(b))
	}
	return b
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// readLoop receives replies on s until the socket is closed.
func (e *Engine) readLoop(s *icmpSock) {
	buf := make([]byte, 65536)
	oob := make([]byte, 128)
	for {
		var n, oobn int
		var from unix.Sockaddr
		var rerr error
		err := s.rc.Read(func(fd uintptr) bool {
			n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_DONTWAIT)
			if rerr == unix.EAGAIN && s.mode == ICMPDatagram {
				e.readErrQueue(s, int(fd), buf, oob)
			}
			return rerr != unix.EAGAIN
		})
		if err != nil {
			return // closed
		}
		if rerr != nil {
			// A pending socket error (from IP_RECVERR) is reported once by
			// a plain recvmsg; the details are on the error queue.
			if s.mode == ICMPDatagram {
				_ = s.rc.Control(func(fd uintptr) { e.readErrQueue(s, int(fd), buf, oob) })
			}
			if rerr == unix.EINTR || rerr == unix.ECONNREFUSED || rerr == unix.EHOSTUNREACH || rerr == unix.ENETUNREACH || rerr == unix.EMSGSIZE {
				continue
			}
			e.log.Debug("icmp recvmsg", "err", rerr)
			continue
		}
		now := time.Now()
		ts, ok := kernelTimestamp(oob[:oobn])
		if !ok {
			ts = now
		}
		e.handleReply(s, buf[:n], sockaddrAddr(from), ts)
	}
}

// reply is a parsed echo reply or an ICMP error about one of our echoes.
type reply struct {
	unreachable bool
	id, seq     uint16
	token       uint64
	serial      uint64
	hasToken    bool
	errType     string
}

// parseReply parses one received message. raw4 means the data starts with
// an IPv4 header (raw IPv4 sockets).
func parseReply(b []byte, v6, raw4 bool) (reply, bool) {
	if raw4 {
		if len(b) < 20 || b[0]>>4 != 4 {
			return reply{}, false
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return reply{}, false
		}
		b = b[ihl:]
	}
	if len(b) < icmpHeaderLen {
		return reply{}, false
	}
	echoReply := byte(ipv4.ICMPTypeEchoReply)
	if v6 {
		echoReply = byte(ipv6.ICMPTypeEchoReply)
	}
	if b[0] == echoReply && b[1] == 0 {
		r := reply{id: binary.BigEndian.Uint16(b[4:]), seq: binary.BigEndian.Uint16(b[6:])}
		if len(b) >= icmpHeaderLen+tokenLen {
			r.token = binary.BigEndian.Uint64(b[8:])
			r.serial = binary.BigEndian.Uint64(b[16:])
			r.hasToken = true
		}
		return r, true
	}
	// ICMP errors quoting our echo request.
	proto := 1
	if v6 {
		proto = 58
	}
	m, err := icmp.ParseMessage(proto, b)
	if err != nil {
		return reply{}, false
	}
	var inner []byte
	switch body := m.Body.(type) {
	case *icmp.DstUnreach:
		inner = body.Data
	case *icmp.TimeExceeded:
		inner = body.Data
	case *icmp.PacketTooBig:
		inner = body.Data
	default:
		return reply{}, false
	}
	// inner: the original IP header, then our echo request.
	if v6 {
		if len(inner) < 40 || inner[6] != 58 {
			return reply{}, false
		}
		inner = inner[40:]
	} else {
		if len(inner) < 20 || inner[9] != 1 {
			return reply{}, false
		}
		ihl := int(inner[0]&0x0f) * 4
		if ihl < 20 || len(inner) < ihl {
			return reply{}, false
		}
		inner = inner[ihl:]
	}
	echoReq := byte(ipv4.ICMPTypeEcho)
	if v6 {
		echoReq = byte(ipv6.ICMPTypeEchoRequest)
	}
	if len(inner) < icmpHeaderLen || inner[0] != echoReq {
		return reply{}, false
	}
	r := reply{unreachable: true, id: binary.BigEndian.Uint16(inner[4:]), seq: binary.BigEndian.Uint16(inner[6:]),
		errType: fmt.Sprint(m.Type)}
	if len(inner) >= icmpHeaderLen+tokenLen {
		r.token = binary.BigEndian.Uint64(inner[8:])
		r.serial = binary.BigEndian.Uint64(inner[16:])
		r.hasToken = true
	}
	return r, true
}

func (e *Engine) handleReply(s *icmpSock, b []byte, from netip.Addr, ts time.Time) {
	raw := s.mode == ICMPRaw
	r, ok := parseReply(b, s.key.v6, raw && !s.key.v6)
	if !ok {
		return
	}
	// A raw socket sees every echo reply on the host: ours carry our
	// identifier. Datagram sockets get only their own, with an identifier
	// the kernel chose, so there the token decides.
	if raw && r.id != e.id {
		return
	}
	if !r.hasToken || r.token != e.token {
		return
	}
	e.pmu.Lock()
	p := e.pending[r.serial]
	if p == nil || p.seq != r.seq || (!r.unreachable && p.addr.WithZone("") != from) {
		e.pmu.Unlock()
		return // late (already timed out), duplicate, or not from the target
	}
	delete(e.pending, r.serial)
	e.pmu.Unlock()
	res := Result{Target: p.ti, Start: p.start, Addr: p.addr, Sent: 1}
	if r.unreachable {
		res.Outcome = Unreachable
		res.Err = fmt.Errorf("icmp %s from %s", r.errType, from)
		e.opts.OnResult(res)
		return
	}
	rtt := ts.Sub(p.start)
	// The kernel stamp is wall clock, the start is wall clock too; if the
	// clock stepped in between, fall back to the monotonic reading.
	if rtt < 0 || rtt > 10*time.Minute {
		rtt = time.Since(p.start)
	}
	res.Outcome, res.Received, res.RTT, res.HasRTT = OK, 1, rtt, true
	e.opts.OnResult(res)
}

// kernelTimestamp finds the SCM_TIMESTAMPNS control message.
func kernelTimestamp(oob []byte) (time.Time, bool) {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return time.Time{}, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && l >= unix.CmsgLen(16) {
			d := oob[unix.CmsgLen(0):]
			sec := int64(binary.NativeEndian.Uint64(d))
			nsec := int64(binary.NativeEndian.Uint64(d[8:]))
			return time.Unix(sec, nsec), true
		}
		oob = oob[min(unix.CmsgSpace(l-unix.SizeofCmsghdr), len(oob)):]
	}
	return time.Time{}, false
}

func sockaddrAddr(sa unix.Sockaddr) netip.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(a.Addr)
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(a.Addr).Unmap()
	}
	return netip.Addr{}
}

// readErrQueue drains a datagram socket's error queue: each entry is an
// ICMP error (or a local delivery failure) about one of our echoes, whose
// header and payload it carries, so the token identifies the probe.
func (e *Engine) readErrQueue(s *icmpSock, fd int, buf, oob []byte) {
	for {
		n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if err != nil {
			return
		}
		ee, from, ok := parseRecvErr(oob[:oobn])
		if !ok {
			continue
		}
		r, ok := parseEchoRequest(buf[:n], s.key.v6)
		if !ok || r.token != e.token {
			continue
		}
		e.pmu.Lock()
		p := e.pending[r.serial]
		if p == nil || p.seq != r.seq {
			e.pmu.Unlock()
			continue
		}
		delete(e.pending, r.serial)
		e.pmu.Unlock()
		e.opts.OnResult(classifyRecvErr(p, ee, from))
	}
}

// parseRecvErr finds the sock_extended_err control message and the
// address of the node that reported it.
func parseRecvErr(oob []byte) (unix.SockExtendedErr, netip.Addr, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return unix.SockExtendedErr{}, netip.Addr{}, false
	}
	for _, m := range msgs {
		if !(m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_RECVERR) &&
			!(m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_RECVERR) {
			continue
		}
		if len(m.Data) < sizeofSockExtendedErr {
			return unix.SockExtendedErr{}, netip.Addr{}, false
		}
		ee := *(*unix.SockExtendedErr)(unsafe.Pointer(&m.Data[0]))
		var from netip.Addr
		off := m.Data[sizeofSockExtendedErr:]
		if len(off) >= 8 && binary.NativeEndian.Uint16(off) == unix.AF_INET {
			from = netip.AddrFrom4([4]byte(off[4:8]))
		} else if len(off) >= 24 && binary.NativeEndian.Uint16(off) == unix.AF_INET6 {
			from = netip.AddrFrom16([16]byte(off[8:24]))
		}
		return ee, from, true
	}
	return unix.SockExtendedErr{}, netip.Addr{}, false
}

// parseEchoRequest parses one of our echo requests (as quoted back).
func parseEchoRequest(b []byte, v6 bool) (reply, bool) {
	want := byte(ipv4.ICMPTypeEcho)
	if v6 {
		want = byte(ipv6.ICMPTypeEchoRequest)
	}
	if len(b) < icmpHeaderLen+tokenLen || b[0] != want {
		return reply{}, false
	}
	return reply{unreachable: true, id: binary.BigEndian.Uint16(b[4:]), seq: binary.BigEndian.Uint16(b[6:]),
		token: binary.BigEndian.Uint64(b[8:]), serial: binary.BigEndian.Uint64(b[16:]), hasToken: true}, true
}

const sizeofSockExtendedErr = 16 // struct sock_extended_err

// sock_extended_err origins.
const (
	eeOriginLocal = 1
	eeOriginICMP  = 2
	eeOriginICMP6 = 3
)

// classifyRecvErr turns an error-queue entry about probe p into a result.
func classifyRecvErr(p *pend, ee unix.SockExtendedErr, from netip.Addr) Result {
	res := Result{Target: p.ti, Start: p.start, Addr: p.addr, Sent: 1}
	errno := unix.Errno(ee.Errno)
	switch {
	case ee.Origin == eeOriginLocal:
		// The kernel could not send it (no buffer, message too long with
		// DF): the probe never left, which still loses it.
		res.Outcome, res.Err = Error, fmt.Errorf("echo to %s: local error: %w", p.addr, errno)
	case errno == unix.EMSGSIZE:
		res.Outcome, res.Err = Error, fmt.Errorf("echo to %s: message too long for path MTU %d (reported by %s)", p.addr, ee.Info, from)
	case (ee.Origin == eeOriginICMP && ee.Type == 11 && ee.Code == 1) || (ee.Origin == eeOriginICMP6 && ee.Type == 3 && ee.Code == 1):
		// Fragment reassembly time exceeded: a fragment was lost.
		res.Outcome, res.Err = Timeout, fmt.Errorf("echo to %s: fragment reassembly timed out at %s", p.addr, from)
	default:
		res.Outcome, res.Err = Unreachable, fmt.Errorf("echo to %s: icmp type %d code %d from %s: %w", p.addr, ee.Type, ee.Code, from, errno)
	}
	return res
}

// asyncErr reports errnos that ICMP errors leave pending on a socket.
func asyncErr(err error) bool {
	switch err {
	case unix.EHOSTUNREACH, unix.ENETUNREACH, unix.ECONNREFUSED, unix.EHOSTDOWN, unix.ENETDOWN, unix.EPROTO, unix.ENOPROTOOPT, unix.EACCES, unix.EMSGSIZE:
		return true
	}
	return false
}
