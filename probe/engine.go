package probe

import (
	"container/heap"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Resolver looks names up; *net.Resolver implements it. Tests inject a
// hosts-like map so no real DNS is ever queried.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// SocketFunc creates a socket like socket(2). The default is unix.Socket;
// tests use it to open sockets inside a network namespace.
type SocketFunc func(domain, typ, proto int) (int, error)

// ICMPMode chooses the ICMP socket type.
type ICMPMode string

// ICMP socket modes.
const (
	// ICMPAuto tries an unprivileged datagram socket, then a raw one.
	ICMPAuto ICMPMode = "auto"
	// ICMPDatagram uses only datagram ("ping") sockets.
	ICMPDatagram ICMPMode = "datagram"
	// ICMPRaw uses only raw sockets (CAP_NET_RAW).
	ICMPRaw ICMPMode = "raw"
)

// Options configure an Engine.
type Options struct {
	Logger *slog.Logger
	// Socket creates sockets (default unix.Socket).
	Socket SocketFunc
	// Resolver resolves target names (default net.DefaultResolver).
	Resolver Resolver
	// ResolveInterval is how often names are re-resolved (default 5m).
	ResolveInterval time.Duration
	// ICMPMode is auto (default), datagram or raw.
	ICMPMode ICMPMode
	// MaxInFlight bounds concurrent TCP probes (default 16384). A probe
	// due while the bound is reached is skipped and counted (Skipped).
	MaxInFlight int
	// Count stops each target after Count probes (0: run until ctx ends).
	// Run then returns once every result has been delivered.
	Count int
	// NoSpread starts every target at once instead of spreading first
	// probes uniformly over one interval (one-shot use).
	NoSpread bool
	// OnResult receives every probe's result, from several goroutines.
	// It must be fast and safe for concurrent use.
	OnResult func(Result)
	// OnResolve is told the outcome of every name resolution.
	OnResolve func(target int, addr netip.Addr, err error)
}

// Engine probes a fixed set of targets.
type Engine struct {
	opts    Options
	log     *slog.Logger
	targets []Target
	addrs   []atomic.Pointer[netip.Addr]
	literal []bool
	minRTT  []atomic.Int64 // per target, ns; TCP hidden-retransmit baseline

	token   uint64
	id      uint16
	serial  atomic.Uint64
	skipped atomic.Uint64

	sockMu sync.Mutex
	socks  map[sockKey]*icmpSock
	// sockErr remembers why a family could not be opened (not retried on
	// every probe; retried after sockRetry).
	sockErr map[sockKey]sockFailure

	pmu       sync.Mutex
	pending   map[uint64]*pend
	deadlines deadlineHeap

	sem chan struct{}
	wg  sync.WaitGroup // TCP probes and socket readers
}

type sockFailure struct {
	err error
	at  time.Time
}

const sockRetry = 30 * time.Second

// New builds an engine for targets. It checks targets but opens nothing:
// sockets are opened on first use, so a target family the host cannot
// probe produces Error results rather than a failed start.
func New(targets []Target, opts Options) (*Engine, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Socket == nil {
		opts.Socket = unix.Socket
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	if opts.ResolveInterval <= 0 {
		opts.ResolveInterval = 5 * time.Minute
	}
	if opts.ICMPMode == "" {
		opts.ICMPMode = ICMPAuto
	}
	switch opts.ICMPMode {
	case ICMPAuto, ICMPDatagram, ICMPRaw:
	default:
		return nil, fmt.Errorf("probe: unknown icmp mode %q", opts.ICMPMode)
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 16384
	}
	if opts.OnResult == nil {
		opts.OnResult = func(Result) {}
	}
	e := &Engine{
		opts:    opts,
		log:     opts.Logger,
		targets: append([]Target(nil), targets...),
		addrs:   make([]atomic.Pointer[netip.Addr], len(targets)),
		literal: make([]bool, len(targets)),
		minRTT:  make([]atomic.Int64, len(targets)),
		socks:   map[sockKey]*icmpSock{},
		sockErr: map[sockKey]sockFailure{},
		pending: map[uint64]*pend{},
		sem:     make(chan struct{}, opts.MaxInFlight),
	}
	for i := range e.targets {
		if err := e.targets[i].Validate(); err != nil {
			return nil, fmt.Errorf("probe: %w", err)
		}
		if a, err := netip.ParseAddr(e.targets[i].Host); err == nil {
			a = a.Unmap()
			e.addrs[i].Store(&a)
			e.literal[i] = true
		}
	}
	var b [10]byte
	_, _ = crand.Read(b[:])
	e.token = binary.BigEndian.Uint64(b[:8])
	e.id = binary.BigEndian.Uint16(b[8:])
	return e, nil
}

// Targets returns the engine's targets (do not modify).
func (e *Engine) Targets() []Target { return e.targets }

// Addr returns the address target i currently probes (invalid if unresolved).
func (e *Engine) Addr(i int) netip.Addr {
	if p := e.addrs[i].Load(); p != nil {
		return *p
	}
	return netip.Addr{}
}

// Skipped returns how many probes were skipped because the engine fell
// behind (scheduler late by more than an interval, or MaxInFlight reached).
func (e *Engine) Skipped() uint64 { return e.skipped.Load() }

// SocketInfo describes an open ICMP socket.
type SocketInfo struct {
	Family string // "ipv4" or "ipv6"
	Mode   ICMPMode
	DF     bool
}

// Sockets lists the open ICMP sockets.
func (e *Engine) Sockets() []SocketInfo {
	e.sockMu.Lock()
	defer e.sockMu.Unlock()
	var out []SocketInfo
	for k, s := range e.socks {
		fam := "ipv4"
		if k.v6 {
			fam = "ipv6"
		}
		out = append(out, SocketInfo{Family: fam, Mode: s.mode, DF: k.df})
	}
	return out
}

// Run probes until ctx ends (or, with Count, until every target has sent
// Count probes and every result is in). It closes its sockets on return.
func (e *Engine) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	e.resolveAll(ctx)

	var bg sync.WaitGroup
	bg.Add(2)
	go func() { defer bg.Done(); e.resolveLoop(ctx) }()
	go func() { defer bg.Done(); e.sweepLoop(ctx) }()

	e.schedule(ctx)
	if e.opts.Count > 0 && ctx.Err() == nil {
		// Wait for outstanding probes: TCP goroutines end by their
		// timeout, ICMP entries by the sweeper.
		e.waitTCP()
		for ctx.Err() == nil {
			e.pmu.Lock()
			n := len(e.pending)
			e.pmu.Unlock()
			if n == 0 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	cancel()
	bg.Wait()
	e.closeSockets()
	e.wg.Wait()
	return nil
}

func (e *Engine) waitTCP() {
	// Fill the semaphore: every running TCP probe holds one slot.
	for range cap(e.sem) {
		e.sem <- struct{}{}
	}
	for range cap(e.sem) {
		<-e.sem
	}
}

// ---- scheduling ----

type schedItem struct {
	ti    int
	base  time.Time // schedule anchor: slot k is due at base + k*interval (+jitter)
	slot  int64
	fired int64
	due   time.Time
}

type schedHeap []*schedItem

func (h schedHeap) Len() int           { return len(h) }
func (h schedHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h schedHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *schedHeap) Push(x any)        { *h = append(*h, x.(*schedItem)) }
func (h *schedHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// jitter returns a per-probe offset of up to ±1/50 of the interval (at most
// ±20ms): enough to keep thousands of targets from locking into step, small
// enough to keep the rate.
func jitter(iv time.Duration) time.Duration {
	j := iv / 50
	if j > 20*time.Millisecond {
		j = 20 * time.Millisecond
	}
	if j <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(2*j))) - j
}

func (e *Engine) schedule(ctx context.Context) {
	now := time.Now()
	h := make(schedHeap, 0, len(e.targets))
	for i := range e.targets {
		iv := e.targets[i].interval()
		base := now
		if !e.opts.NoSpread {
			base = now.Add(time.Duration(rand.Int64N(int64(iv))))
		}
		h = append(h, &schedItem{ti: i, base: base, due: base})
	}
	heap.Init(&h)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for len(h) > 0 {
		now = time.Now()
		for len(h) > 0 && !h[0].due.After(now) {
			it := h[0]
			e.fire(ctx, it.ti)
			it.fired++
			it.slot++
			if e.opts.Count > 0 && it.fired >= int64(e.opts.Count) {
				heap.Pop(&h)
				continue
			}
			iv := e.targets[it.ti].interval()
			next := it.base.Add(time.Duration(it.slot) * iv)
			if behind := now.Sub(next); e.opts.Count == 0 && behind > max(iv, 100*time.Millisecond) {
				// Fell behind by more than an interval (and 100 ms): skip
				// the missed slots instead of bursting them out.
				miss := int64(behind/iv) + 1
				e.skipped.Add(uint64(miss))
				it.slot += miss
				next = it.base.Add(time.Duration(it.slot) * iv)
			}
			it.due = next.Add(jitter(iv))
			heap.Fix(&h, 0)
		}
		if len(h) == 0 {
			return
		}
		timer.Reset(time.Until(h[0].due))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

func (e *Engine) fire(ctx context.Context, ti int) {
	t := &e.targets[ti]
	addr := e.Addr(ti)
	if !addr.IsValid() {
		e.opts.OnResult(Result{Target: ti, Start: time.Now(), Outcome: Error, Sent: 1,
			Err: fmt.Errorf("%s: name not resolved", t.Host)})
		return
	}
	switch t.Protocol {
	case ICMP:
		e.sendICMP(ti, addr)
	case TCP:
		select {
		case e.sem <- struct{}{}:
		default:
			e.skipped.Add(1)
			return
		}
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			defer func() { <-e.sem }()
			r := e.probeTCP(ctx, ti, netip.AddrPortFrom(addr, t.Port), t.timeout())
			e.opts.OnResult(r)
		}()
	}
}

// ---- name resolution ----

func (e *Engine) resolveAll(ctx context.Context) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range e.targets {
		if e.literal[i] {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			e.resolve(ctx, i)
		}()
	}
	wg.Wait()
}

func (e *Engine) resolve(ctx context.Context, i int) {
	t := &e.targets[i]
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var addr netip.Addr
	var err error
	if t.IPv6 {
		addr, err = e.lookup(ctx, "ip6", t.Host)
	} else {
		addr, err = e.lookup(ctx, "ip4", t.Host)
		if err != nil {
			addr, err = e.lookup(ctx, "ip6", t.Host)
		}
	}
	if err != nil {
		// Keep the last good address: a DNS hiccup is not a network fault.
		if old := e.Addr(i); old.IsValid() {
			e.log.Warn("re-resolve failed, keeping previous address", "target", t.Name, "host", t.Host, "addr", old, "err", err)
		} else {
			e.log.Warn("resolve failed", "target", t.Name, "host", t.Host, "err", err)
		}
	} else if old := e.Addr(i); old != addr {
		e.addrs[i].Store(&addr)
		if old.IsValid() {
			e.log.Info("target address changed", "target", t.Name, "host", t.Host, "old", old, "new", addr)
		}
	}
	if e.opts.OnResolve != nil {
		e.opts.OnResolve(i, addr, err)
	}
}

func (e *Engine) lookup(ctx context.Context, network, host string) (netip.Addr, error) {
	addrs, err := e.opts.Resolver.LookupNetIP(ctx, network, host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("resolve %s: %w", host, err)
	}
	for _, a := range addrs {
		a = a.Unmap()
		if (network == "ip4") == a.Is4() {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("resolve %s: no %s address", host, network)
}

func (e *Engine) resolveLoop(ctx context.Context) {
	names := false
	for i := range e.literal {
		if !e.literal[i] {
			names = true
		}
	}
	if !names {
		return
	}
	tk := time.NewTicker(e.opts.ResolveInterval)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			e.resolveAll(ctx)
		}
	}
}

// ---- ICMP pending probes and timeouts ----

type pend struct {
	ti     int
	serial uint64
	seq    uint16
	addr   netip.Addr
	start  time.Time
}

type deadline struct {
	at     time.Time
	serial uint64
}

type deadlineHeap []deadline

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h deadlineHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)        { *h = append(*h, x.(deadline)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	*h = old[:len(old)-1]
	return d
}

// take removes and returns the pending probe serial, or nil.
func (e *Engine) take(serial uint64) *pend {
	e.pmu.Lock()
	p := e.pending[serial]
	if p != nil {
		delete(e.pending, serial)
	}
	e.pmu.Unlock()
	return p
}

func (e *Engine) sweepLoop(ctx context.Context) {
	tk := time.NewTicker(10 * time.Millisecond)
	defer tk.Stop()
	var expired []*pend
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		now := time.Now()
		expired = expired[:0]
		e.pmu.Lock()
		for len(e.deadlines) > 0 && !e.deadlines[0].at.After(now) {
			d := heap.Pop(&e.deadlines).(deadline)
			if p := e.pending[d.serial]; p != nil {
				delete(e.pending, d.serial)
				expired = append(expired, p)
			}
		}
		e.pmu.Unlock()
		for _, p := range expired {
			e.opts.OnResult(Result{Target: p.ti, Start: p.start, Addr: p.addr, Outcome: Timeout, Sent: 1})
		}
	}
}
