// Package probelab builds the lab paths the probe tests and the probe
// benchmark run on: veth pairs between network namespaces given by name
// (created by internal/testlab in tests, by `ip netns add` in bench/probe),
// sockets opened inside a namespace, and a user-space L2 relay that delays
// and drops frames. The kernel here has no netem and no nft queue, so the
// relay reads frames with AF_PACKET on one interface and writes them out of
// the other after the configured delay.
//
// Everything here needs root and touches only the namespaces it is given.
package probelab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// InNS runs fn on an OS thread switched into the named network namespace
// ("" is the caller's own). Sockets created by fn stay in that namespace.
func InNS(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		orig, e := netns.Get()
		if e != nil {
			runtime.UnlockOSThread()
			err = fmt.Errorf("get netns: %w", e)
			return
		}
		defer orig.Close()
		h, e := netns.GetFromName(name)
		if e != nil {
			runtime.UnlockOSThread()
			err = fmt.Errorf("open netns %s: %w", name, e)
			return
		}
		defer h.Close()
		if e := netns.Set(h); e != nil {
			if netns.Set(orig) == nil {
				runtime.UnlockOSThread()
			}
			err = fmt.Errorf("enter netns %s: %w", name, e)
			return
		}
		defer func() {
			if netns.Set(orig) == nil {
				runtime.UnlockOSThread()
			}
		}()
		err = fn()
	}()
	<-done
	return err
}

// Socket returns a socket(2) replacement that creates sockets inside the
// named namespace (a probe.SocketFunc).
func Socket(name string) func(domain, typ, proto int) (int, error) {
	return func(domain, typ, proto int) (int, error) {
		var fd int
		err := InNS(name, func() error {
			var err error
			fd, err = unix.Socket(domain, typ, proto)
			return err
		})
		return fd, err
	}
}

// IP runs `ip args...` in the host namespace (use "-n NAME" to target one).
func IP(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Exec runs a command inside a namespace and returns its combined output.
func Exec(ns string, name string, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), ns, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Veth links nsA/ifA with nsB/ifB, assigns the given CIDRs (empty: none),
// brings both ends up and turns checksum/segmentation offloads off so that
// frames relayed from user space carry complete checksums.
func Veth(nsA, ifA, cidrA, nsB, ifB, cidrB string) error {
	if err := IP("link", "add", ifA, "netns", nsA, "type", "veth", "peer", "name", ifB, "netns", nsB); err != nil {
		return err
	}
	for _, e := range []struct{ ns, ifn, cidr string }{{nsA, ifA, cidrA}, {nsB, ifB, cidrB}} {
		if e.cidr != "" {
			if err := IP("-n", e.ns, "addr", "add", e.cidr, "dev", e.ifn); err != nil {
				return err
			}
		}
		if err := IP("-n", e.ns, "link", "set", e.ifn, "up"); err != nil {
			return err
		}
		if _, err := Exec(e.ns, "ethtool", "-K", e.ifn, "tx", "off", "tso", "off", "gso", "off", "gro", "off"); err != nil {
			return err
		}
	}
	return nil
}

// Sysctl writes a per-namespace sysctl.
func Sysctl(ns, key, value string) error {
	_, err := Exec(ns, "sysctl", "-q", "-w", key+"="+value)
	return err
}

// RelayConfig sets the impairment of a Relay.
type RelayConfig struct {
	// Delay applied to every frame, each direction.
	Delay time.Duration
	// Loss is the probability of dropping a frame travelling from A to B
	// that Droppable accepts (default: every IPv4/IPv6 frame). B to A is
	// never dropped, so round-trip loss equals Loss.
	Loss      float64
	Droppable func(frame []byte) bool
	// Seed makes the drop sequence reproducible (0: random).
	Seed uint64
}

// Relay forwards Ethernet frames between two interfaces of one namespace.
type Relay struct {
	cfg       RelayConfig
	fdA, fdB  int
	ifA, ifB  int
	rng       *rand.Rand
	rngMu     sync.Mutex
	forwarded atomic.Int64
	dropped   atomic.Int64
	wg        sync.WaitGroup
	closeOnce sync.Once
	closed    atomic.Bool
}

// StartRelay bridges ifA and ifB (both in namespace ns, without addresses)
// until ctx ends or Close.
func StartRelay(ctx context.Context, ns, ifA, ifB string, cfg RelayConfig) (*Relay, error) {
	r := &Relay{cfg: cfg, fdA: -1, fdB: -1}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	r.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	if r.cfg.Droppable == nil {
		r.cfg.Droppable = func(f []byte) bool {
			if len(f) < 14 {
				return false
			}
			et := binary.BigEndian.Uint16(f[12:])
			return et == 0x0800 || et == 0x86dd
		}
	}
	err := InNS(ns, func() error {
		var err error
		if r.fdA, r.ifA, err = packetSocket(ifA); err != nil {
			return err
		}
		r.fdB, r.ifB, err = packetSocket(ifB)
		return err
	})
	if err != nil {
		r.Close()
		return nil, err
	}
	r.wg.Add(2)
	go r.pump(ctx, r.fdA, r.fdB, r.ifB, true)
	go r.pump(ctx, r.fdB, r.fdA, r.ifA, false)
	context.AfterFunc(ctx, func() { r.Close() })
	return r, nil
}

func packetSocket(ifname string) (fd, ifindex int, err error) {
	ifi, err := netInterfaceByName(ifname)
	if err != nil {
		return -1, 0, err
	}
	proto := int(htons(unix.ETH_P_ALL))
	fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return -1, 0, fmt.Errorf("packet socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi}); err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("bind packet socket to %s: %w", ifname, err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	mreq := unix.PacketMreq{Ifindex: int32(ifi), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("promisc %s: %w", ifname, err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	// A read timeout lets the pump notice Close.
	tv := unix.Timeval{Usec: 100000}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return fd, ifi, nil
}

type frame struct {
	due  time.Time
	data []byte
}

func (r *Relay) pump(ctx context.Context, in, out, outIf int, aToB bool) {
	defer r.wg.Done()
	q := make(chan frame, 4096)
	var sender sync.WaitGroup
	sender.Add(1)
	go func() {
		defer sender.Done()
		to := &unix.SockaddrLinklayer{Ifindex: outIf}
		for f := range q {
			preciseSleepUntil(f.due)
			if err := unix.Sendto(out, f.data, 0, to); err == nil {
				r.forwarded.Add(1)
			}
		}
	}()
	defer func() { close(q); sender.Wait() }()
	buf := make([]byte, 65536)
	oob := make([]byte, 64)
	for ctx.Err() == nil && !r.closed.Load() {
		n, oobn, _, from, err := unix.Recvmsg(in, buf, oob, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return // closed
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		now := time.Now()
		// Delay from the kernel's arrival stamp, not from when this
		// goroutine woke up.
		if ts, ok := kernelStamp(oob[:oobn]); ok && ts.Before(now) && now.Sub(ts) < time.Second {
			now = ts
		}
		data := append([]byte(nil), buf[:n]...)
		if aToB && r.cfg.Loss > 0 && r.cfg.Droppable(data) {
			r.rngMu.Lock()
			drop := r.rng.Float64() < r.cfg.Loss
			r.rngMu.Unlock()
			if drop {
				r.dropped.Add(1)
				continue
			}
		}
		select {
		case q <- frame{due: now.Add(r.cfg.Delay), data: data}:
		default:
			r.dropped.Add(1) // queue overflow: an honest drop
		}
	}
}

// preciseSleepUntil sleeps with the runtime timer until shortly before t,
// then yields until t: Go timers overshoot by a few hundred µs, which
// would bias a 20 ms delay.
func preciseSleepUntil(t time.Time) {
	if d := time.Until(t) - 2*time.Millisecond; d > 0 {
		time.Sleep(d)
	}
	for time.Now().Before(t) {
		runtime.Gosched()
	}
}

// Dropped counts frames the relay dropped.
func (r *Relay) Dropped() int64 { return r.dropped.Load() }

// Forwarded counts frames the relay delivered.
func (r *Relay) Forwarded() int64 { return r.forwarded.Load() }

// Close stops the relay and waits for it.
func (r *Relay) Close() {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		for _, fd := range []int{r.fdA, r.fdB} {
			if fd >= 0 {
				_ = unix.Shutdown(fd, unix.SHUT_RDWR)
			}
		}
		r.wg.Wait()
		for _, fd := range []int{r.fdA, r.fdB} {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	})
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// IsICMPEchoRequest reports whether an Ethernet frame is an IPv4 ICMP echo
// request or an ICMPv6 echo request.
func IsICMPEchoRequest(f []byte) bool {
	if len(f) < 14 {
		return false
	}
	switch binary.BigEndian.Uint16(f[12:]) {
	case 0x0800:
		ip := f[14:]
		if len(ip) < 20 || ip[9] != 1 {
			return false
		}
		ihl := int(ip[0]&0xf) * 4
		// Only first fragments carry the ICMP header.
		return len(ip) > ihl && ip[ihl] == 8 && binary.BigEndian.Uint16(ip[6:])&0x1fff == 0
	case 0x86dd:
		ip := f[14:]
		return len(ip) > 40 && ip[6] == 58 && ip[40] == 128
	}
	return false
}

func netInterfaceByName(name string) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, err)
	}
	return ifi.Index, nil
}

func kernelStamp(oob []byte) (time.Time, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(m.Data))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:]))
			return time.Unix(sec, nsec), true
		}
	}
	return time.Time{}, false
}
