package ebpf

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	cebpf "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/internal/kernel"
)

// Options size the kernel side.
type Options struct {
	// MaxConns bounds the in-kernel table of open connections.
	MaxConns uint32
	// RingBufferBytes sizes the ring of closed connections (the largest
	// power of two of records that fits).
	RingBufferBytes uint32
	// CgroupPath is the cgroup v2 directory to attach to; empty:
	// kernel.Cgroup2Root of the default paths (the collector passes the
	// one of paths.cgroupfs).
	CgroupPath string
	// FlushInterval is how often, at most, user space waits between two
	// reads of the ring of closed connections; at high connection rates it
	// reads sooner, so that the ring never gets more than about a quarter
	// full. Batching keeps the cost per closed connection low. Default
	// 100ms.
	FlushInterval time.Duration
}

// Stats are the tracer's self-metrics.
type Stats struct {
	ProgramsAttached  int
	RingBufferLost    uint64 // closed connections dropped: overwritten in the ring before user space read them
	MapFull           uint64 // connections not tracked: conns map full
	ListenersFull     uint64 // listeners not recorded: listeners map full
	Events            uint64 // closed connections sent to user space
	UntrackedCloses   uint64 // unused since closes come from tcp_destroy_sock (every socket); 0
	HotFull           uint64 // new connections tracked in the conns map: their hot-window bucket was full
	Seeded            uint64 // connections opened before the programs were attached, tracked from an iterator pass
	RingBufferRecords uint64 // records read by user space
}

// Tracer owns the loaded programs, maps and links.
type Tracer struct {
	objs     flowObjects
	links    []link.Link
	iter     *link.Iter // refreshes the live state of open connections
	usJiffy  int64      // microseconds per kernel jiffy (0: unknown)
	nets     *netnsSet  // namespaces the iterator runs in
	activeMu sync.Mutex // guards the ActiveBatch buffers below
	keys     []uint64
	vals     []flowConn
	recs     []flow.Record
	comms    *interner
	ringMu   sync.Mutex // guards ring and hot's harvest; Close unmaps under it
	ring     closeRing
	hot      hotWindow
	buf      flowConn // ActiveBatch's copy of hot entries
	closed   bool
	cgroup   string
	flush    time.Duration
	records  atomic.Uint64
	closeOne sync.Once
}

// Open loads and attaches the programs. Errors that mean "this host cannot
// run eBPF flows" (no BPF capability, no BTF, no sock_ops) wrap
// cilium/ebpf's ErrNotSupported or an *UnsupportedError.
func Open(opts Options) (*Tracer, error) {
	// Name the missing capability rather than the symptom (the first
	// failing syscall would be the memlock rlimit or map creation).
	if !kernel.HasCap(kernel.CapSysAdmin) {
		if err := kernel.RequireCaps(kernel.CapBPF, kernel.CapPerfmon, kernel.CapNetAdmin); err != nil {
			return nil, &UnsupportedError{What: "capabilities for eBPF (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, or CAP_SYS_ADMIN)", Err: err}
		}
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, &UnsupportedError{What: "raise RLIMIT_MEMLOCK (CAP_SYS_RESOURCE)", Err: err}
	}
	cg := opts.CgroupPath
	if cg == "" {
		var err error
		if cg, err = kernel.Cgroup2Root(kernel.Paths{}); err != nil {
			return nil, &UnsupportedError{What: "cgroup v2 mount", Err: err}
		}
	}
	spec, err := loadFlow()
	if err != nil {
		return nil, fmt.Errorf("load flow spec: %w", err)
	}
	if opts.MaxConns == 0 {
		opts.MaxConns = 65536
	}
	if opts.RingBufferBytes == 0 {
		opts.RingBufferBytes = 1 << 20
	}
	slots := ringSlots(opts.RingBufferBytes)
	hb := hotBuckets(opts.MaxConns)
	spec.Maps[flowMapConns].MaxEntries = opts.MaxConns
	spec.Maps[flowMapClosed].MaxEntries = slots
	spec.Maps[flowMapHotKeys].MaxEntries = hb
	spec.Maps[flowMapHot].MaxEntries = hb * hotSlots
	if err := spec.Variables["hot_buckets"].Set(hb); err != nil {
		return nil, fmt.Errorf("set hot_buckets: %w", err)
	}
	if err := spec.Variables["ring_mask"].Set(slots - 1); err != nil {
		return nil, fmt.Errorf("set ring_mask: %w", err)
	}
	t := &Tracer{cgroup: cg, flush: opts.FlushInterval, usJiffy: usecPerJiffy(), nets: newNetnsSet(), comms: newInterner()}
	t.ring.slots = uint64(slots)
	t.hot.buckets = hb
	if t.flush <= 0 {
		t.flush = 100 * time.Millisecond
	}
	if err := spec.LoadAndAssign(&t.objs, nil); err != nil {
		var ve *cebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, &UnsupportedError{What: "eBPF verifier accepting the flow programs", Err: fmt.Errorf("%+v", ve)}
		}
		return nil, &UnsupportedError{What: "loading eBPF programs (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN and kernel BTF)", Err: err}
	}
	l, err := link.AttachCgroup(link.CgroupOptions{Path: cg, Attach: cebpf.AttachCGroupSockOps, Program: t.objs.NetsightSockops})
	if err != nil {
		t.Close()
		return nil, &UnsupportedError{What: "attaching sock_ops to cgroup " + cg, Err: err}
	}
	t.links = append(t.links, l)
	t.iter, err = link.AttachIter(link.IterOptions{Program: t.objs.NetsightIter})
	if err != nil {
		t.Close()
		return nil, &UnsupportedError{What: "attaching the TCP socket iterator (iter/tcp, Linux 5.8+)", Err: err}
	}
	t.links = append(t.links, t.iter)
	l, err = link.AttachTracing(link.TracingOptions{Program: t.objs.NetsightDestroy})
	if err != nil {
		t.Close()
		return nil, &UnsupportedError{What: "attaching to the tcp_destroy_sock tracepoint (tp_btf)", Err: err}
	}
	t.links = append(t.links, l)
	// RST counting and connect errors are optional: the rest works
	// without them.
	for _, p := range []*cebpf.Program{t.objs.NetsightRstRecv, t.objs.NetsightRstSend, t.objs.NetsightSkError} {
		if l, err := link.AttachTracing(link.TracingOptions{Program: p}); err == nil {
			t.links = append(t.links, l)
		}
	}
	for _, m := range []struct {
		dst      *mapping
		m        *cebpf.Map
		writable bool
	}{{&t.ring.recs, t.objs.Closed, false}, {&t.ring.head, t.objs.Head, false}, {&t.hot.keys, t.objs.HotKeys, true}, {&t.hot.conns, t.objs.Hot, false}} {
		if *m.dst, err = mmapArray(m.m, m.writable); err != nil {
			t.Close()
			return nil, &UnsupportedError{What: "memory-mapped BPF arrays (Linux 5.5+)", Err: err}
		}
	}
	return t, nil
}

// CgroupPath returns the cgroup the sock_ops program is attached to.
func (t *Tracer) CgroupPath() string { return t.cgroup }

// UnsupportedError says which kernel feature or capability is missing.
type UnsupportedError struct {
	What string
	Err  error
}

func (e *UnsupportedError) Error() string { return fmt.Sprintf("%s: %v", e.What, e.Err) }
func (e *UnsupportedError) Unwrap() error { return e.Err }

// Close detaches everything. It is safe to call more than once.
func (t *Tracer) Close() error {
	var errs []error
	t.closeOne.Do(func() {
		for _, l := range t.links {
			errs = append(errs, l.Close())
		}
		// The readers (drain under ringMu, scan under activeMu) check
		// for the unmapping under their lock.
		t.ringMu.Lock()
		t.activeMu.Lock()
		t.closed = true
		errs = append(errs, t.ring.recs.unmap(), t.ring.head.unmap(), t.hot.keys.unmap(), t.hot.conns.unmap())
		t.activeMu.Unlock()
		t.ringMu.Unlock()
		errs = append(errs, t.objs.Close())
	})
	return errors.Join(errs...)
}

// Run delivers every closed connection to sink until ctx ends or the tracer
// is closed.
func (t *Tracer) Run(ctx context.Context, sink func(flow.Record)) error {
	return t.RunBatch(ctx, func(recs []flow.Record) {
		for i := range recs {
			sink(recs[i])
		}
	})
}

// maxBatch bounds the records RunBatch hands over at once.
const maxBatch = 512

// RunBatch delivers closed connections in batches until ctx ends or the
// tracer is closed: every FlushInterval it reads what the ring holds (at
// most maxBatch records per batch), so the consumer pays for one lock and
// one clock read per batch instead of per connection, and no system call is
// made per connection. sink must not keep the slice.
func (t *Tracer) RunBatch(ctx context.Context, sink func([]flow.Record)) error {
	comms := newInterner()
	batch := make([]flow.Record, 0, maxBatch)
	var buf flowConn
	timer := time.NewTimer(t.flush)
	defer timer.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		n, err := t.drain(&buf, batch, comms, sink)
		if err != nil {
			return err
		}
		now := time.Now()
		timer.Reset(t.nextDrain(n, now.Sub(last)))
		last = now
	}
}

// nextDrain returns when to read the ring again after n records arrived in
// elapsed: soon enough that, at that rate, the ring is at most a quarter
// full by then (the ring is read without any wakeup from the kernel), at
// most FlushInterval and at least 2ms apart.
func (t *Tracer) nextDrain(n int, elapsed time.Duration) time.Duration {
	if n == 0 || elapsed <= 0 {
		return t.flush
	}
	perRecord := elapsed / time.Duration(n)
	room := min(t.ring.slots, uint64(t.hot.buckets)*hotSlots) / 4
	return min(t.flush, max(2*time.Millisecond, perRecord*time.Duration(room)))
}

// drain delivers every published record in batches of at most maxBatch
// and returns how many.
func (t *Tracer) drain(buf *flowConn, batch []flow.Record, comms *interner, sink func([]flow.Record)) (int, error) {
	t.ringMu.Lock()
	defer t.ringMu.Unlock()
	if t.closed {
		return 0, errTracerClosed
	}
	// Closed connections of the hot window first (their slots are free
	// again once read), then the ring's.
	total := 0
	for _, read := range [...]func(*flowConn, int, func(*flowConn)) int{t.hot.harvest, t.ring.drain} {
		for {
			clock := t.newClock()
			batch = batch[:0]
			n := read(buf, maxBatch, func(c *flowConn) {
				batch = append(batch, flow.Record{})
				toRecordInto(&batch[len(batch)-1], c, clock, comms)
			})
			if n > 0 {
				total += n
				t.records.Add(uint64(n))
				sink(batch)
				clear(batch) // drop string references
			}
			if n < maxBatch {
				break
			}
		}
	}
	return total, nil
}

var errTracerClosed = errors.New("flows tracer closed")

// Active calls fn for every open connection in the kernel table. It first
// refreshes the connections' live state (RTT, bytes, chrono times, windows,
// receive queue) with one pass of the TCP socket iterator in each network
// namespace that holds tracked connections and that it can enter (its own,
// those named under /var/run/netns, those of the connections' processes);
// connections of other namespaces keep the state of their last event. It
// then reads the hot window through its mapping and the conns map in
// batches (BPF_MAP_LOOKUP_BATCH), which, unlike key-by-key iteration, does
// not restart when connections close meanwhile; it falls back to iteration
// on kernels without batch operations.
func (t *Tracer) Active(fn func(flow.Record)) error {
	return t.ActiveBatch(func(recs []flow.Record) {
		for i := range recs {
			fn(recs[i])
		}
	})
}

// activeChunk is how many entries one BPF_MAP_LOOKUP_BATCH reads.
const activeChunk = 1024

// ActiveBatch is Active delivering the records in batches (at most
// activeChunk at once; sink must not keep the slice), so that the consumer
// takes its lock once per batch. The read buffers are reused across calls.
func (t *Tracer) ActiveBatch(sink func([]flow.Record)) error {
	t.activeMu.Lock()
	defer t.activeMu.Unlock()
	refreshErr := t.nets.each(t.runIter)
	clock := t.newClock()
	if t.keys == nil {
		t.keys = make([]uint64, activeChunk)
		t.vals = make([]flowConn, activeChunk)
		t.recs = make([]flow.Record, 0, activeChunk)
	}
	recs := t.recs[:0]
	emit := func(c *flowConn) {
		t.nets.see(c.Netns, c.Pid)
		recs = append(recs, flow.Record{})
		toRecordInto(&recs[len(recs)-1], c, clock, t.comms)
		if len(recs) == cap(recs) {
			sink(recs)
			clear(recs)
			recs = recs[:0]
		}
	}
	defer func() {
		if len(recs) > 0 {
			sink(recs)
			clear(recs)
		}
	}()
	if err := t.scan(emit); err != nil {
		return err
	}
	// Connections in a namespace that appeared since the last refresh:
	// refresh them there and read the map once more (rare).
	if again, err := t.nets.eachNew(t.runIter); again {
		refreshErr = errors.Join(refreshErr, err)
		if err := t.scan(emit); err != nil {
			return err
		}
	}
	return refreshErr
}

// scan reads the hot window and the whole conns map (in batches), noting
// each connection's namespace for the next refresh.
func (t *Tracer) scan(emit func(*flowConn)) error {
	if t.hot.keys.mem == nil {
		return errTracerClosed
	}
	t.nets.beginScan()
	t.hot.each(&t.buf, emit)
	var cursor cebpf.MapBatchCursor
	for {
		n, err := t.objs.Conns.BatchLookup(&cursor, t.keys, t.vals, nil)
		for i := range n {
			emit(&t.vals[i])
		}
		if errors.Is(err, cebpf.ErrKeyNotExist) {
			break
		}
		if errors.Is(err, cebpf.ErrNotSupported) {
			if err := t.iterate(emit); err != nil {
				return err
			}
			break
		}
		if err != nil {
			return fmt.Errorf("batch lookup conns map: %w", err)
		}
	}
	t.nets.endScan()
	return nil
}

func (t *Tracer) iterate(emit func(*flowConn)) error {
	var key uint64
	var c flowConn
	it := t.objs.Conns.Iterate()
	for it.Next(&key, &c) {
		emit(&c)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("iterate conns map: %w", err)
	}
	return nil
}

// runIter runs one pass of the TCP socket iterator in the calling thread's
// network namespace; the program writes nothing, it refreshes the map.
func (t *Tracer) runIter() error {
	r, err := t.iter.Open()
	if err != nil {
		return fmt.Errorf("open tcp iterator: %w", err)
	}
	defer r.Close()
	var buf [64]byte
	for {
		_, err := r.Read(buf[:])
		if errors.Is(err, io.EOF) {
			return nil
		}
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read tcp iterator: %w", err)
		}
	}
}

// Stats returns the self-metrics.
func (t *Tracer) Stats() (Stats, error) {
	s := Stats{ProgramsAttached: len(t.links)}
	s.RingBufferRecords = t.records.Load()
	var vals []uint64
	var kernelLost uint64
	for idx, dst := range []*uint64{&kernelLost, &s.MapFull, &s.ListenersFull, &s.Events, &s.UntrackedCloses, &s.HotFull, &s.Seeded} {
		if err := t.objs.Stats.Lookup(uint32(idx), &vals); err != nil {
			return s, fmt.Errorf("read stats[%d]: %w", idx, err)
		}
		for _, v := range vals {
			*dst += v
		}
	}
	s.RingBufferLost = t.ring.lost.Load()
	return s, nil
}

// clock converts CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns) to wall
// time, and kernel jiffies to durations.
type clock struct {
	wall    time.Time
	mono    int64
	usJiffy int64 // microseconds per jiffy; 0: unknown
}

func newClock() clock {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return clock{wall: time.Now(), mono: ts.Nano()}
}

func (t *Tracer) newClock() clock {
	c := newClock()
	c.usJiffy = t.usJiffy
	return c
}

func (c clock) jiffies(j uint64) time.Duration {
	return time.Duration(int64(j)*c.usJiffy) * time.Microsecond
}

func (c clock) at(ns uint64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return c.wall.Add(time.Duration(int64(ns) - c.mono))
}

const (
	dirClient = 1
	dirServer = 2
	flFailed  = 1
)

// StateName returns the lower-case name of a kernel TCP state number.
func StateName(s uint8) string { return flow.TCPStateName(s) }

func addr(family uint8, a [4]uint32, port uint16) netip.AddrPort {
	var b [16]byte
	for i, w := range a {
		binary.LittleEndian.PutUint32(b[i*4:], w)
	}
	var ip netip.Addr
	if family == unix.AF_INET {
		ip = netip.AddrFrom4([4]byte(b[:4]))
	} else {
		ip = netip.AddrFrom16(b).Unmap()
	}
	return netip.AddrPortFrom(ip, port)
}

// toRecordInto fills r (zero) from c; comms interns process names (nil:
// allocate each).
func toRecordInto(r *flow.Record, c *flowConn, clk clock, comms *interner) {
	r.ID = c.Cookie
	r.Local = addr(c.Family, c.Laddr, c.Lport)
	r.Remote = addr(c.Family, c.Raddr, c.Rport)
	r.PID = c.Pid
	r.Comm = comms.get(&c.Comm)
	r.CgroupID = c.Cgroup
	r.NetNS = c.Netns
	r.State = StateName(c.State)
	r.Start = clk.at(c.StartNs)
	r.End = clk.at(c.EndNs)
	r.Closed = c.EndNs != 0
	r.BytesSent = c.BytesAcked
	r.BytesReceived = c.BytesReceived
	r.SegsOut = uint64(c.DataSegsOut)
	r.SegsIn = uint64(c.DataSegsIn)
	r.SRTT = time.Duration(c.SrttUs) * time.Microsecond
	r.MinRTT = time.Duration(c.MinRttUs) * time.Microsecond
	r.MaxRTT = time.Duration(max(c.MaxRttUs, c.SrttUs)) * time.Microsecond
	r.Retransmits = uint64(max(c.TotalRetrans, c.RetransSegs))
	r.SynRetransmits = uint64(c.SynRetrans)
	r.RTOs = uint64(c.Rtos)
	r.RSTSent = uint64(c.RstSent)
	r.RSTReceived = uint64(c.RstRecv)
	r.ConnectLatency = time.Duration(c.ConnectLatencyUs) * time.Microsecond
	r.ConnectFailed = c.Flags&flFailed != 0
	if r.ConnectFailed {
		r.ConnectResult = connectResult(c.SkErr, c.RstRecv)
	}
	busy := uint64(c.Chrono[0]) + uint64(c.Chrono[1]) + uint64(c.Chrono[2])
	r.BusyTime = clk.jiffies(busy) // tcpi_busy_time counts all three
	r.RwndLimited = clk.jiffies(uint64(c.Chrono[1]))
	r.SndbufLimited = clk.jiffies(uint64(c.Chrono[2]))
	r.DeliveryRate = c.DeliveryRate
	r.DSACKDups = uint64(c.DsackDups)
	r.SndWnd = c.SndWnd
	r.RcvWnd = c.RcvWnd
	r.RecvQueue = c.RecvQueue
	r.ZeroWindowSent = uint64(c.ZeroWndSent)
	r.ZeroWindowReceived = uint64(c.ZeroWndRecv)
	switch c.Direction {
	case dirClient:
		r.Direction = flow.DirClient
	case dirServer:
		r.Direction = flow.DirServer
	}
	if r.State == "unknown" {
		r.State = "syn_sent"
	}
}

// connectResult names how a connect failed from the error the kernel
// reported on the socket (0: none, the application closed it before any
// answer, e.g. a dial timeout) and the RSTs received (a refusal when the
// error report was not seen).
func connectResult(skErr, rstRecv uint32) string {
	if skErr == 0 && rstRecv > 0 {
		return "refused"
	}
	switch unix.Errno(skErr) {
	case unix.ECONNREFUSED:
		return "refused"
	case 0, unix.ETIMEDOUT:
		return "timeout"
	case unix.ECONNRESET:
		return "reset"
	}
	return ""
}

// interner returns one string per distinct process name, so a busy host
// does not allocate a comm string per closed connection. It holds at most
// maxInterned names and starts over when full.
type interner struct{ m map[[16]int8]string }

const maxInterned = 4096

func newInterner() *interner { return &interner{m: make(map[[16]int8]string)} }

func (in *interner) get(c *[16]int8) string {
	if in == nil {
		return commString(*c)
	}
	if s, ok := in.m[*c]; ok {
		return s
	}
	if len(in.m) >= maxInterned {
		clear(in.m)
	}
	s := commString(*c)
	in.m[*c] = s
	return s
}

func commString(c [16]int8) string {
	b := make([]byte, 0, len(c))
	for _, v := range c {
		if v == 0 {
			break
		}
		b = append(b, byte(v))
	}
	return string(b)
}

// ProgramStats returns the summed run time and run count of the tracer's
// programs that run in the kernel's own paths (sock_ops and the RST
// tracepoints), and, apart, of the socket iterator, which runs inside the
// agent's read of it (so its time is also part of the agent's system CPU
// time). The kernel only counts while BPF statistics are enabled (sysctl
// kernel.bpf_stats_enabled=1 or cilium/ebpf EnableStats); used by
// bench/flows to measure in-kernel cost.
func (t *Tracer) ProgramStats() (ProgramStats, error) {
	var ps ProgramStats
	for _, p := range []*cebpf.Program{t.objs.NetsightSockops, t.objs.NetsightDestroy, t.objs.NetsightSkError, t.objs.NetsightRstRecv, t.objs.NetsightRstSend, t.objs.NetsightIter} {
		st, err := p.Stats()
		if err != nil {
			return ps, fmt.Errorf("program stats: %w", err)
		}
		if info, err := p.Info(); err == nil {
			if ps.PerProgram == nil {
				ps.PerProgram = map[string]ProgramRun{}
			}
			ps.PerProgram[info.Name] = ProgramRun{Runtime: st.Runtime, Runs: st.RunCount}
		}
		if p == t.objs.NetsightIter {
			ps.IterRuntime, ps.IterRuns = st.Runtime, st.RunCount
			continue
		}
		ps.Runtime += st.Runtime
		ps.Runs += st.RunCount
	}
	return ps, nil
}

// ProgramStats is the in-kernel cost of the tracer's programs.
type ProgramStats struct {
	Runtime     time.Duration // sock_ops and tracepoint programs
	Runs        uint64
	IterRuntime time.Duration // socket iterator (in the agent's reads)
	IterRuns    uint64
	// PerProgram is each program's share, by program name.
	PerProgram map[string]ProgramRun
}

// ProgramRun is one program's run time and count.
type ProgramRun struct {
	Runtime time.Duration
	Runs    uint64
}
