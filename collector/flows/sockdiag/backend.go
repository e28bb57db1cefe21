package sockdiag

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/internal/kernel"
)

// tcpListen is TCP_LISTEN of the kernel's TCP state enum.
const tcpListen = 10

// Options configure a Backend.
type Options struct {
	// NetNS is a network namespace file descriptor to watch (0: the
	// agent's own). sock_diag only sees one namespace.
	NetNS int
	// ProcRoot is where to find /proc for process attribution; empty
	// disables attribution.
	ProcRoot string
	// CloseGrace is how long a socket missing from the dumps waits for its
	// destroy notification (which carries the final counters; the kernel
	// sends it from a work queue, after the socket left the dump) before it
	// is reported closed with the values of the last poll. Default 2s.
	CloseGrace time.Duration
	// MaxTracked bounds the connections remembered between polls (default
	// 65536); sockets beyond it are skipped and counted.
	MaxTracked int
}

// Stats are the back end's self-metrics.
type Stats struct {
	Polls, PollErrors uint64
	// DestroyLost counts overruns of the destroy notification socket;
	// connections closed then are reported from the last poll.
	DestroyLost uint64
	// Destroyed counts closes seen through destroy notifications, Vanished
	// closes inferred because a socket disappeared between polls.
	Destroyed, Vanished uint64
	// Skipped counts sockets not tracked because MaxTracked was reached.
	Skipped uint64
	Tracked int
}

type known struct {
	rec        flow.Record
	gen        uint64
	missingAt  time.Time // first poll that did not see it
	inode      uint32
	synRetrans uint64
	segsIn     uint32 // tcpi_segs_in: segments received, RSTs included
}

// synchronized are the TCP states after the handshake in which this host
// keeps a receive window and a send window (ESTABLISHED, FIN_WAIT1,
// FIN_WAIT2, CLOSE_WAIT, LAST_ACK, CLOSING).
const synchronized = 1<<1 | 1<<4 | 1<<5 | 1<<8 | 1<<9 | 1<<11

// connectResult says how a failed client connect ended, from the final
// tcp_info of its destroy notification: a SYN_SENT socket that received
// any segment was answered with a RST (a SYN-ACK would have completed the
// handshake): "refused"; one that received nothing was never answered
// (SYN retries exhausted, or the application gave up first): "timeout".
// An ICMP error (host unreachable) that ends the connect also reads as
// timeout: sock_diag does not carry the socket error.
func connectResult(segsIn uint32) string {
	if segsIn > 0 {
		return "refused"
	}
	return "timeout"
}

// Backend turns sock_diag dumps and destroy notifications into
// flow.Records.
type Backend struct {
	// dumpMu serialises Polls: d reuses its receive buffer.
	dumpMu sync.Mutex
	d      kernel.SockDiag
	opts   Options
	netns  uint32 // inode of the watched network namespace (0: unknown)

	mu        sync.Mutex
	known     map[uint64]*known
	listening map[uint16]bool
	gen       uint64

	polls, pollErrs, lost, destroyed, vanished, skipped atomic.Uint64
}

// New returns a back end.
func New(opts Options) *Backend {
	if opts.CloseGrace <= 0 {
		opts.CloseGrace = 2 * time.Second
	}
	if opts.MaxTracked <= 0 {
		opts.MaxTracked = 65536
	}
	return &Backend{d: kernel.SockDiag{NetNS: opts.NetNS}, opts: opts, netns: netnsInode(opts.NetNS),
		known: map[uint64]*known{}, listening: map[uint16]bool{}}
}

// netnsInode returns the inode of the namespace behind fd (0: the agent's
// own, /proc/self/ns/net), or 0 when it cannot be read.
func netnsInode(fd int) uint32 {
	if fd <= 0 {
		return flow.NetNSInode("/proc/self/ns/net")
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0
	}
	return uint32(st.Ino)
}

// NetNS returns the inode of the network namespace the back end watches
// (every record carries it), 0 when unknown.
func (b *Backend) NetNS() uint32 { return b.netns }

// Poll dumps the sockets and sends one record per connection to sink;
// connections gone since the last poll and not reported by a destroy
// notification are sent closed with their last values.
func (b *Backend) Poll(ctx context.Context, now time.Time, sink func(flow.Record)) error {
	b.polls.Add(1)
	b.dumpMu.Lock()
	socks, err := b.d.DumpTCPInfo(ctx)
	b.dumpMu.Unlock()
	if err != nil {
		b.pollErrs.Add(1)
		return fmt.Errorf("sock_diag poll: %w", err)
	}
	listening := map[uint16]bool{}
	for i := range socks {
		if socks[i].State == tcpListen {
			listening[socks[i].Local.Port()] = true
		}
	}
	b.mu.Lock()
	b.gen++
	b.listening = listening
	var out []flow.Record
	var fresh []*known
	want := map[uint32]bool{}
	for i := range socks {
		s := &socks[i]
		if s.State == tcpListen || !s.HasInfo || s.Remote.Port() == 0 {
			continue
		}
		k := b.known[s.Cookie]
		if k == nil {
			if len(b.known) >= b.opts.MaxTracked {
				b.skipped.Add(1)
				continue
			}
			k = &known{inode: s.Inode}
			k.rec.Start = now
			b.known[s.Cookie] = k
			if s.Inode != 0 && b.opts.ProcRoot != "" {
				fresh = append(fresh, k)
				want[s.Inode] = true
			}
		}
		k.gen, k.missingAt = b.gen, time.Time{}
		b.fill(k, s, listening)
		out = append(out, k.rec)
	}
	var gone []flow.Record
	for c, k := range b.known {
		if k.gen != b.gen {
			if k.missingAt.IsZero() {
				k.missingAt = now
			}
			if now.Sub(k.missingAt) < b.opts.CloseGrace {
				continue
			}
			r := k.rec
			r.Closed, r.End, r.State = true, k.missingAt, "close"
			// Without the destroy notification the final tcp_info is
			// unknown: a failed connect's result stays "" (cannot tell).
			r.ConnectFailed = r.BytesSent == 0 && r.Direction == flow.DirClient
			r.RecvQueue = 0
			gone = append(gone, r)
			delete(b.known, c)
		}
	}
	b.mu.Unlock()
	if len(want) > 0 {
		owners := ScanOwners(b.opts.ProcRoot, want)
		b.mu.Lock()
		for _, k := range fresh {
			if o, ok := owners[k.inode]; ok {
				k.rec.PID, k.rec.Comm = o.PID, o.Comm
			}
		}
		for i := range out {
			if k := b.known[out[i].ID]; k != nil {
				out[i].PID, out[i].Comm = k.rec.PID, k.rec.Comm
			}
		}
		b.mu.Unlock()
	}
	b.vanished.Add(uint64(len(gone)))
	for _, r := range out {
		sink(r)
	}
	for _, r := range gone {
		sink(r)
	}
	return nil
}

// fill updates k.rec from a socket; b.mu is held.
func (b *Backend) fill(k *known, s *kernel.Socket, listening map[uint16]bool) {
	r := &k.rec
	r.ID = s.Cookie
	r.NetNS = b.netns
	r.Local, r.Remote = s.Local, s.Remote
	if r.Direction == flow.DirUnknown {
		if listening[s.Local.Port()] {
			r.Direction = flow.DirServer
		} else {
			r.Direction = flow.DirClient
		}
	}
	if s.CgroupID != 0 {
		r.CgroupID = s.CgroupID
	}
	r.State = flow.TCPStateName(s.State)
	ti := &s.Info
	// Retransmissions while connecting are SYN retransmissions: in
	// SYN_SENT, and at the destroy (CLOSE) of a connect that never got its
	// SYN acknowledged.
	if s.State == 2 /* SYN_SENT */ || (s.State == 7 && ti.BytesAcked == 0 && r.Direction == flow.DirClient) {
		k.synRetrans = max(k.synRetrans, uint64(ti.TotalRetrans))
	}
	r.SynRetransmits = k.synRetrans
	r.BytesSent, r.BytesReceived = ti.BytesAcked, ti.BytesReceived
	r.SegsIn, r.SegsOut = uint64(ti.DataSegsIn), uint64(ti.DataSegsOut)
	if ti.RTT > 0 {
		r.SRTT = time.Duration(ti.RTT) * time.Microsecond
		r.MaxRTT = max(r.MaxRTT, r.SRTT)
	}
	if ti.MinRTT > 0 && ti.MinRTT != ^uint32(0) {
		r.MinRTT = time.Duration(ti.MinRTT) * time.Microsecond
	}
	r.Retransmits = uint64(ti.TotalRetrans)
	r.RTOs = uint64(ti.TotalRTO)
	k.segsIn = max(k.segsIn, ti.SegsIn)
	// Per-connection signals: latest values, zero when the kernel's
	// tcp_info is too short to hold them.
	if ti.HasChrono {
		r.BusyTime = time.Duration(ti.BusyTime) * time.Microsecond
		r.RwndLimited = time.Duration(ti.RwndLimited) * time.Microsecond
		r.SndbufLimited = time.Duration(ti.SndbufLimited) * time.Microsecond
	}
	r.DeliveryRate = ti.DeliveryRate
	r.DSACKDups = uint64(ti.DSACKDups)
	if s.State != 7 /* CLOSE: a destroyed socket's queues are gone */ {
		r.RecvQueue = s.RQueue
	}
	open := synchronized&(1<<s.State) != 0
	if ti.HasSndWnd {
		r.SndWnd = ti.SndWnd
		// The peer's window is zero while this host has data for it.
		if open && ti.SndWnd == 0 && (ti.NotsentBytes > 0 || ti.Unacked > 0) {
			r.ZeroWindowReceived++
		}
	}
	if ti.HasRcvWnd {
		r.RcvWnd = ti.RcvWnd
		if open && ti.RcvWnd == 0 {
			r.ZeroWindowSent++
		}
	}
}

// Run receives destroy notifications until ctx ends and sends each closed
// connection, with its final counters, to sink.
func (b *Backend) Run(ctx context.Context, sink func(flow.Record)) error {
	return kernel.WatchDestroyedTCP(ctx, b.opts.NetNS, func(s kernel.Socket) {
		if !s.HasInfo || s.State == tcpListen || s.Remote.Port() == 0 {
			return // never connected
		}
		now := time.Now()
		b.mu.Lock()
		k := b.known[s.Cookie]
		if k == nil {
			k = &known{}
			k.rec.Start = now // opened and closed between two polls
		}
		delete(b.known, s.Cookie)
		b.fill(k, &s, b.listening)
		r := k.rec
		segsIn := k.segsIn
		b.mu.Unlock()
		r.Closed, r.End, r.State = true, now, "close"
		r.RecvQueue = 0
		// A connection that got its SYN acknowledged has bytes_acked >= 1.
		r.ConnectFailed = r.BytesSent == 0 && r.Direction == flow.DirClient
		if r.ConnectFailed {
			r.ConnectResult = connectResult(segsIn)
		}
		b.destroyed.Add(1)
		sink(r)
	}, func() { b.lost.Add(1) })
}

// Stats returns the self-metrics.
func (b *Backend) Stats() Stats {
	b.mu.Lock()
	n := len(b.known)
	b.mu.Unlock()
	return Stats{Polls: b.polls.Load(), PollErrors: b.pollErrs.Load(), DestroyLost: b.lost.Load(),
		Destroyed: b.destroyed.Load(), Vanished: b.vanished.Load(), Skipped: b.skipped.Load(), Tracked: n}
}
