package testlab

import (
	"container/heap"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// RelayDir is one direction through a Relay.
type RelayDir int

// Directions through a relay. The "client" side is the first interface given
// to StartRelay (the client's link in a RelayedPath).
const (
	ClientToServer RelayDir = iota
	ServerToClient
)

func (d RelayDir) String() string {
	switch d {
	case ClientToServer:
		return "client_to_server"
	case ServerToClient:
		return "server_to_client"
	}
	return fmt.Sprintf("RelayDir(%d)", int(d))
}

// Impairment is what the relay does to the frames of one direction.
type Impairment struct {
	// Delay holds every frame this long (one way).
	Delay time.Duration
	// Jitter adds a uniformly distributed offset in [-Jitter, +Jitter] to
	// Delay (clamped at zero).
	Jitter time.Duration
	// LossPercent drops each frame with this probability (0..100). ARP and
	// IPv6 neighbour discovery (ICMPv6 types 133..137) are never dropped.
	LossPercent float64
	// Reorder lets jitter reorder frames. By default order is kept: a frame
	// is never released before the one that arrived before it (its release
	// time is max(own, previous)), so jitter shows up as delay variation
	// without reordering, as on a single path.
	Reorder bool
}

func (im Impairment) validate() error {
	switch {
	case im.Delay < 0:
		return fmt.Errorf("delay %v: must not be negative", im.Delay)
	case im.Jitter < 0:
		return fmt.Errorf("jitter %v: must not be negative", im.Jitter)
	case im.LossPercent < 0 || im.LossPercent > 100:
		return fmt.Errorf("loss_percent %v: must be within 0..100", im.LossPercent)
	}
	return nil
}

// RelayConfig configures a Relay (StartRelay) and the topology around it
// (NewRelayedPath).
type RelayConfig struct {
	ClientToServer Impairment
	ServerToClient Impairment
	// Seed makes loss and jitter decisions reproducible: with the same seed
	// the n-th frame of a direction gets the same decision. (Which frame is
	// n-th still depends on timing, e.g. TCP retransmissions.)
	Seed uint64
	// QueueLimit is the most frames waiting per direction (default 65536);
	// beyond it frames are dropped and counted as DroppedOverflow.
	QueueLimit int
	// SocketBuffer is the receive and send buffer of each AF_PACKET socket in
	// bytes (default 32 MiB).
	SocketBuffer int
	// Subnet is the client/server subnet of NewRelayedPath (default random).
	Subnet Subnet
	// MTU of all interfaces of NewRelayedPath (default 1500).
	MTU int
	// Logger gets relay lifecycle messages (default: discarded).
	Logger *slog.Logger
	// LossMatch, when set, limits LossPercent (both directions) to the
	// frames it returns true for; the others are always forwarded. ARP and
	// neighbour discovery stay exempt either way. With IsICMPEchoRequest a
	// prober's lost count equals DroppedLoss exactly, whatever else (MLD
	// reports, ...) crosses the path. It runs on the reader goroutines and
	// must not keep the frame.
	LossMatch func(frame []byte) bool
}

// RelayDirStats counts what happened to the frames of one direction.
type RelayDirStats struct {
	Received        uint64 // frames read from the ingress interface
	Forwarded       uint64 // frames written to the egress interface
	ForwardedBytes  uint64
	DroppedLoss     uint64 // dropped on purpose (LossPercent)
	DroppedOverflow uint64 // dropped because QueueLimit frames were waiting
	DroppedKernel   uint64 // lost in the socket receive buffer (PACKET_STATISTICS)
	DroppedOversize uint64 // larger than MTU (GSO/GRO super-frames; offloads not off?)
	SendErrors      uint64 // writes to the egress interface that failed
	Queued          int    // frames waiting now
}

// Unintended is every frame lost without being asked for: overflow, kernel,
// oversize and send errors. A healthy lab keeps it at zero.
func (s RelayDirStats) Unintended() uint64 {
	return s.DroppedOverflow + s.DroppedKernel + s.DroppedOversize + s.SendErrors
}

// RelayStats holds the counters of both directions.
type RelayStats struct {
	ClientToServer RelayDirStats
	ServerToClient RelayDirStats
}

// Dir returns the counters of d.
func (s RelayStats) Dir(d RelayDir) RelayDirStats {
	if d == ServerToClient {
		return s.ServerToClient
	}
	return s.ClientToServer
}

// Relay is a user-space L2 bridge between two interfaces of one namespace
// that delays, jitters and drops frames per direction. It reads every frame
// with an AF_PACKET socket per interface, decides loss at once, schedules the
// frame for release at arrival+delay in a time-ordered queue, and a writer
// woken by a timerfd (precise to a few microseconds, no busy waiting)
// transmits due frames on the other interface. There are four goroutines in
// all (reader and writer per direction), none per frame.
type Relay struct {
	ns   *NetNS
	dirs [2]*relayDir
	log  *slog.Logger
	wg   sync.WaitGroup
	once sync.Once
}

// StartRelay starts a relay in ns between interfaces clientIf and serverIf
// (which should have no addresses and GRO/GSO/TSO off, as ConnectVeth leaves
// them) and stops it in tb.Cleanup.
func StartRelay(tb testing.TB, ns *NetNS, clientIf, serverIf string, cfg RelayConfig) *Relay {
	tb.Helper()
	r, err := NewRelay(ns, clientIf, serverIf, cfg)
	if err != nil {
		tb.Fatalf("testlab: %v", err)
	}
	tb.Cleanup(func() { _ = r.Close() })
	return r
}

// NewRelay is StartRelay for callers that manage the lifetime themselves:
// the relay runs until Close.
func NewRelay(ns *NetNS, clientIf, serverIf string, cfg RelayConfig) (*Relay, error) {
	if ns == nil {
		return nil, errors.New("relay: refusing to bridge interfaces of the host namespace")
	}
	if err := cfg.ClientToServer.validate(); err != nil {
		return nil, fmt.Errorf("relay config: client_to_server.%w", err)
	}
	if err := cfg.ServerToClient.validate(); err != nil {
		return nil, fmt.Errorf("relay config: server_to_client.%w", err)
	}
	if cfg.QueueLimit <= 0 {
		cfg.QueueLimit = 1 << 16
	}
	if cfg.SocketBuffer <= 0 {
		cfg.SocketBuffer = 32 << 20
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := &Relay{ns: ns, log: log.With("component", "testlab_relay", "netns", ns.String())}

	var socks [2]*os.File
	var mtus [2]int
	var timers [2]*os.File
	closeAll := func() {
		for _, f := range append(socks[:], timers[:]...) {
			if f != nil {
				_ = f.Close()
			}
		}
	}
	for i, name := range []string{clientIf, serverIf} {
		link, err := ns.Handle().LinkByName(name)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("relay: find %s in netns %s: %w", name, ns, err)
		}
		mtus[i] = link.Attrs().MTU
		idx := link.Attrs().Index
		err = ns.Do(func() error {
			var err error
			socks[i], err = openPacketSocket(name, idx, cfg.SocketBuffer)
			return err
		})
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("relay: netns %s: %w", ns, err)
		}
		if timers[i], err = newTimerFD(); err != nil {
			closeAll()
			return nil, fmt.Errorf("relay: %w", err)
		}
	}
	imps := [2]Impairment{cfg.ClientToServer, cfg.ServerToClient}
	for d := range 2 {
		in, out := socks[d], socks[1-d]
		bufSize := max(mtus[d], mtus[1-d]) + 64
		rd := &relayDir{
			dir:     RelayDir(d),
			in:      in,
			out:     out,
			timer:   timers[d],
			imp:     imps[d],
			limit:   cfg.QueueLimit,
			lossRNG: newRNG(cfg.Seed, uint64(2*d+1)),
			match:   cfg.LossMatch,
			jitRNG:  newRNG(cfg.Seed, uint64(2*d+2)),
			bufSize: bufSize,
		}
		rd.pool.New = func() any { return &frame{buf: make([]byte, bufSize)} }
		r.dirs[d] = rd
	}
	for _, rd := range r.dirs {
		r.wg.Add(2)
		go func() { defer r.wg.Done(); rd.readLoop(r.log) }()
		go func() { defer r.wg.Done(); rd.writeLoop(r.log) }()
	}
	r.log.Debug("relay started", "client_if", clientIf, "server_if", serverIf,
		"client_to_server", fmt.Sprintf("%+v", cfg.ClientToServer), "server_to_client", fmt.Sprintf("%+v", cfg.ServerToClient))
	return r, nil
}

// SetImpairment changes the impairment of one direction from now on. Frames
// already queued keep their release time.
func (r *Relay) SetImpairment(d RelayDir, im Impairment) error {
	if err := im.validate(); err != nil {
		return fmt.Errorf("relay %s: %w", d, err)
	}
	rd := r.dirs[d&1]
	rd.mu.Lock()
	rd.imp = im
	rd.mu.Unlock()
	return nil
}

// Stats returns the counters of both directions.
func (r *Relay) Stats() RelayStats {
	return RelayStats{ClientToServer: r.dirs[0].stats(), ServerToClient: r.dirs[1].stats()}
}

// Close stops the relay, waits for its goroutines and discards queued frames.
// It is idempotent.
func (r *Relay) Close() error {
	r.once.Do(func() {
		for _, rd := range r.dirs {
			rd.kernelDrops() // last look before the socket goes
		}
		for _, rd := range r.dirs {
			_ = rd.in.Close()
			_ = rd.timer.Close()
		}
		r.wg.Wait()
		st := r.Stats()
		r.log.Debug("relay stopped", "client_to_server", fmt.Sprintf("%+v", st.ClientToServer),
			"server_to_client", fmt.Sprintf("%+v", st.ServerToClient))
	})
	return nil
}

type frame struct {
	buf     []byte
	n       int
	release time.Time
	seq     uint64
}

// frameQueue is a min-heap on (release, seq). With order kept, release times
// are monotonic and a push is O(1).
type frameQueue []*frame

func (q frameQueue) Len() int { return len(q) }
func (q frameQueue) Less(i, j int) bool {
	if q[i].release.Equal(q[j].release) {
		return q[i].seq < q[j].seq
	}
	return q[i].release.Before(q[j].release)
}
func (q frameQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *frameQueue) Push(x any)   { *q = append(*q, x.(*frame)) }
func (q *frameQueue) Pop() any {
	old := *q
	f := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return f
}

type relayDir struct {
	dir     RelayDir
	in, out *os.File
	timer   *os.File
	limit   int
	bufSize int
	pool    sync.Pool

	// Owned by the reader goroutine.
	lossRNG, jitRNG *rand.Rand
	match           func([]byte) bool // RelayConfig.LossMatch; nil: all

	mu          sync.Mutex
	imp         Impairment
	q           frameQueue
	seq         uint64
	lastRelease time.Time
	armedAt     time.Time // release time the timer is armed for; zero if idle
	kdrops      uint64

	received, forwarded, fwdBytes        atomic.Uint64
	dropLoss, dropOverflow, dropOversize atomic.Uint64
	sendErrors                           atomic.Uint64
}

func (rd *relayDir) stats() RelayDirStats {
	kd := rd.kernelDrops()
	rd.mu.Lock()
	queued := rd.q.Len()
	rd.mu.Unlock()
	return RelayDirStats{
		Received:        rd.received.Load(),
		Forwarded:       rd.forwarded.Load(),
		ForwardedBytes:  rd.fwdBytes.Load(),
		DroppedLoss:     rd.dropLoss.Load(),
		DroppedOverflow: rd.dropOverflow.Load(),
		DroppedKernel:   kd,
		DroppedOversize: rd.dropOversize.Load(),
		SendErrors:      rd.sendErrors.Load(),
		Queued:          queued,
	}
}

// kernelDrops accumulates PACKET_STATISTICS (which resets on every read).
func (rd *relayDir) kernelDrops() uint64 {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	rc, err := rd.in.SyscallConn()
	if err != nil {
		return rd.kdrops
	}
	_ = rc.Control(func(fd uintptr) {
		if st, err := unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			rd.kdrops += uint64(st.Drops)
		}
	})
	return rd.kdrops
}

const readBatch = 64

func (rd *relayDir) readLoop(log *slog.Logger) {
	rc, err := rd.in.SyscallConn()
	if err != nil {
		log.Error("relay reader", "dir", rd.dir.String(), "err", err)
		return
	}
	batch := make([]*frame, 0, readBatch)
	var stamps [readBatch]time.Time
	for {
		var sysErr error
		err := rc.Read(func(fd uintptr) bool {
			for len(batch) < readBatch {
				f := rd.pool.Get().(*frame)
				n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd,
					uintptr(unsafe.Pointer(&f.buf[0])), uintptr(len(f.buf)),
					unix.MSG_TRUNC|unix.MSG_DONTWAIT, 0, 0)
				switch {
				case errno == unix.EINTR:
					rd.pool.Put(f)
					continue
				case errno == unix.EAGAIN:
					rd.pool.Put(f)
					return len(batch) > 0
				case errno != 0:
					rd.pool.Put(f)
					sysErr = errno
					return true
				}
				rd.received.Add(1)
				if int(n) > len(f.buf) {
					rd.dropOversize.Add(1)
					rd.pool.Put(f)
					continue
				}
				f.n = int(n)
				stamps[len(batch)] = time.Now()
				batch = append(batch, f)
			}
			return true
		})
		if len(batch) > 0 {
			rd.enqueue(batch, stamps[:len(batch)])
			clear(batch)
			batch = batch[:0]
		}
		if err != nil || sysErr != nil {
			if !errors.Is(err, os.ErrClosed) {
				log.Error("relay reader stopped", "dir", rd.dir.String(), "err", errors.Join(err, sysErr))
			}
			return
		}
	}
}

// lossExempt reports frames the relay never drops: ARP and IPv6 neighbour
// discovery, so that loss tests measure data, not address resolution.
func lossExempt(b []byte) bool {
	if len(b) < 14 {
		return false
	}
	switch uint16(b[12])<<8 | uint16(b[13]) {
	case 0x0806: // ARP
		return true
	case 0x86dd: // IPv6: next header ICMPv6, type RS/RA/NS/NA/redirect
		return len(b) >= 14+40+1 && b[14+6] == 58 && b[14+40] >= 133 && b[14+40] <= 137
	}
	return false
}

func (rd *relayDir) enqueue(batch []*frame, stamps []time.Time) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	im := rd.imp
	for i, f := range batch {
		if im.LossPercent > 0 && !lossExempt(f.buf[:f.n]) && (rd.match == nil || rd.match(f.buf[:f.n])) &&
			rd.lossRNG.Float64()*100 < im.LossPercent {
			rd.dropLoss.Add(1)
			rd.pool.Put(f)
			continue
		}
		if rd.q.Len() >= rd.limit {
			rd.dropOverflow.Add(1)
			rd.pool.Put(f)
			continue
		}
		d := im.Delay
		if im.Jitter > 0 {
			d += time.Duration(rd.jitRNG.Int64N(2*int64(im.Jitter)+1)) - im.Jitter
			d = max(d, 0)
		}
		f.release = stamps[i].Add(d)
		if !im.Reorder && f.release.Before(rd.lastRelease) {
			f.release = rd.lastRelease
		}
		rd.lastRelease = f.release
		rd.seq++
		f.seq = rd.seq
		heap.Push(&rd.q, f)
		if rd.armedAt.IsZero() || f.release.Before(rd.armedAt) {
			rd.arm(f.release, stamps[i])
		}
	}
}

// arm sets the one-shot timer to fire at release. Called with mu held.
func (rd *relayDir) arm(release, now time.Time) {
	rd.armedAt = release
	d := max(release.Sub(now), time.Nanosecond)
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(d.Nanoseconds())}
	rc, err := rd.timer.SyscallConn()
	if err != nil {
		return // closing
	}
	_ = rc.Control(func(fd uintptr) { _ = unix.TimerfdSettime(int(fd), 0, &spec, nil) })
}

const writeBatch = 256

func (rd *relayDir) writeLoop(log *slog.Logger) {
	trc, err := rd.timer.SyscallConn()
	if err != nil {
		log.Error("relay writer", "dir", rd.dir.String(), "err", err)
		return
	}
	orc, err := rd.out.SyscallConn()
	if err != nil {
		log.Error("relay writer", "dir", rd.dir.String(), "err", err)
		return
	}
	var tbuf [8]byte
	due := make([]*frame, 0, writeBatch)
	for {
		var terr error
		err := trc.Read(func(fd uintptr) bool {
			_, terr = unix.Read(int(fd), tbuf[:])
			return terr != unix.EAGAIN
		})
		if err != nil {
			return // closed
		}
		if terr != nil && terr != unix.EINTR {
			log.Error("relay writer stopped", "dir", rd.dir.String(), "err", terr)
			return
		}
		for {
			rd.mu.Lock()
			now := time.Now()
			for rd.q.Len() > 0 && len(due) < writeBatch && !rd.q[0].release.After(now) {
				due = append(due, popFrame(&rd.q))
			}
			more := rd.q.Len() > 0 && !rd.q[0].release.After(now)
			if !more {
				if rd.q.Len() > 0 {
					rd.arm(rd.q[0].release, now)
				} else {
					rd.armedAt = time.Time{}
				}
			}
			rd.mu.Unlock()
			if err := rd.send(orc, due); err != nil {
				if !errors.Is(err, os.ErrClosed) {
					log.Error("relay writer stopped", "dir", rd.dir.String(), "err", err)
				}
				return
			}
			clear(due)
			due = due[:0]
			if !more {
				break
			}
		}
	}
}

// send transmits frames in order and returns them to the pool. Frames that
// fail with an error other than "try again" are counted and skipped.
func (rd *relayDir) send(rc interface {
	Write(func(uintptr) bool) error
}, frames []*frame) error {
	i := 0
	for i < len(frames) {
		err := rc.Write(func(fd uintptr) bool {
			for i < len(frames) {
				f := frames[i]
				_, _, errno := unix.Syscall6(unix.SYS_SENDTO, fd,
					uintptr(unsafe.Pointer(&f.buf[0])), uintptr(f.n), unix.MSG_DONTWAIT, 0, 0)
				switch errno {
				case 0:
					rd.forwarded.Add(1)
					rd.fwdBytes.Add(uint64(f.n))
				case unix.EAGAIN:
					return false
				case unix.EINTR:
					continue
				default:
					rd.sendErrors.Add(1)
				}
				i++
			}
			return true
		})
		if err != nil {
			for _, f := range frames[i:] {
				rd.pool.Put(f)
			}
			return err
		}
	}
	for _, f := range frames {
		rd.pool.Put(f)
	}
	return nil
}

// openPacketSocket opens a non-blocking AF_PACKET socket bound to one
// interface that receives every frame arriving there (promiscuous, own
// transmissions ignored) and can transmit raw Ethernet frames on it.
func openPacketSocket(name string, ifindex, bufBytes int) (*os.File, error) {
	// Protocol 0 receives nothing until bind sets ETH_P_ALL for one interface.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("AF_PACKET socket: %w", err)
	}
	fail := func(what string, err error) (*os.File, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("AF_PACKET %s on %s: %w", what, name, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fail("PACKET_IGNORE_OUTGOING (kernel >= 4.20)", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, bufBytes); err != nil {
		return fail("SO_RCVBUFFORCE", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, bufBytes); err != nil {
		return fail("SO_SNDBUFFORCE", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return fail("bind", err)
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		return fail("promiscuous membership", err)
	}
	f := os.NewFile(uintptr(fd), "packet:"+name)
	if f == nil {
		unix.Close(fd)
		return nil, fmt.Errorf("AF_PACKET on %s: bad fd", name)
	}
	return f, nil
}

func newTimerFD() (*os.File, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd_create: %w", err)
	}
	return os.NewFile(uintptr(fd), "timerfd"), nil
}

func newRNG(seed, stream uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, stream)) }

func popFrame(q *frameQueue) *frame { return heap.Pop(q).(*frame) }

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// RelayedPath is three namespaces in a row, client <-veth-> middle <-veth->
// server, with a Relay bridging the two veths of the middle namespace at
// layer 2. Client and server share one subnet (host 1 and host 2) and have
// static neighbour entries for each other, so no ARP/NDP crosses the relay;
// the middle namespace has no addresses and IPv6 disabled, so the only frames
// on the path are the client's and the server's.
type RelayedPath struct {
	Client, Middle, Server *NetNS
	// ClientEnd and ServerEnd are the client's and server's interfaces, with
	// the addresses to use.
	ClientEnd, ServerEnd Endpoint
	// ClientLink is client<->middle (A in client), ServerLink middle<->server
	// (A in middle).
	ClientLink, ServerLink *Link
	Subnet                 Subnet
	Relay                  *Relay
}

// NewRelayedPath builds the client/middle/server topology with cfg's
// impairments, all offloads off (every frame is wire-sized), and registers
// cleanup of everything with tb.
func NewRelayedPath(tb testing.TB, cfg RelayConfig) *RelayedPath {
	tb.Helper()
	RequireRoot(tb)
	p, err := CreateRelayedPath(cfg)
	if err != nil {
		tb.Fatalf("testlab: %v", err)
		return nil
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Errorf("testlab: %v", err)
		}
	})
	return p
}

// CreateRelayedPath is NewRelayedPath for programs without a testing.TB
// (benchmarks): the caller must Close the path. It needs root.
func CreateRelayedPath(cfg RelayConfig) (p *RelayedPath, err error) {
	p = &RelayedPath{Subnet: cfg.Subnet}
	defer func() {
		if err != nil {
			_ = p.Close()
			p = nil
		}
	}()
	for _, ns := range []**NetNS{&p.Client, &p.Middle, &p.Server} {
		if *ns, err = CreateNetNS(); err != nil {
			return p, err
		}
	}
	if !p.Subnet.V4.IsValid() {
		p.Subnet = RandomSubnet()
	}
	mtu := cfg.MTU
	if mtu <= 0 {
		mtu = 1500
	}
	for _, k := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"} {
		if err := p.Middle.Sysctl(k, "1"); err != nil {
			return p, err
		}
	}
	if p.ClientLink, err = connectVeth(p.Client, p.Middle, WithoutAddresses(), WithMTU(mtu)); err != nil {
		return p, err
	}
	if p.ServerLink, err = connectVeth(p.Middle, p.Server, WithoutAddresses(), WithMTU(mtu)); err != nil {
		return p, err
	}
	p.ClientEnd, p.ServerEnd = p.ClientLink.A, p.ServerLink.B
	p.ClientLink.Subnet, p.ServerLink.Subnet = p.Subnet, p.Subnet
	if err := assignAddrs(&p.ClientEnd, p.Subnet, 1); err != nil {
		return p, err
	}
	if err := assignAddrs(&p.ServerEnd, p.Subnet, 2); err != nil {
		return p, err
	}
	p.ClientLink.A, p.ServerLink.B = p.ClientEnd, p.ServerEnd
	if err := SetStaticNeighbors(p.ClientEnd, p.ServerEnd); err != nil {
		return p, err
	}
	for _, ep := range []Endpoint{p.ClientEnd, p.ServerEnd} {
		if err := waitReady(ep, 5*time.Second); err != nil {
			return p, err
		}
	}
	if p.Relay, err = NewRelay(p.Middle, p.ClientLink.B.Name, p.ServerLink.A.Name, cfg); err != nil {
		return p, err
	}
	return p, nil
}

// Close stops the relay and deletes the three namespaces. It is idempotent;
// NewRelayedPath registers it with Cleanup.
func (p *RelayedPath) Close() error {
	if p.Relay != nil {
		_ = p.Relay.Close()
	}
	var errs []error
	for _, ns := range []*NetNS{p.Server, p.Middle, p.Client} {
		if ns != nil {
			errs = append(errs, ns.Close())
		}
	}
	return errors.Join(errs...)
}
