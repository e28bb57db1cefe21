package monitor

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/monitor/topology"
)

// AllMonitor is the implicit monitor that matches every connection (each
// byte once: see Engine).
const AllMonitor = "all"

// DefaultMaxGroups bounds the groups (local address, remote address, server
// port, direction, process) the engine keeps slots for.
const DefaultMaxGroups = 2048

// maxLocalSeen bounds the set of client-side local addresses the engine
// remembers to recognise connections between two sockets of this host.
const maxLocalSeen = 4096

// Spec is one monitor: a local × remote scope. An empty side matches every
// connection; within a side, networks and CIDRs are alternatives, and the
// remote's categories and ports (the server port) each restrict it further
// when given.
type Spec struct {
	Name        string
	LocalNets   []string
	LocalCIDRs  []netip.Prefix
	RemoteNets  []string
	RemoteCIDRs []netip.Prefix
	RemoteCats  []string
	RemotePorts []uint16
}

func (s *Spec) match(local, remote netip.Addr, lp, rp *topology.Place, port uint16) bool {
	return side(s.LocalNets, s.LocalCIDRs, local, lp) && side(s.RemoteNets, s.RemoteCIDRs, remote, rp) &&
		(len(s.RemoteCats) == 0 || slices.Contains(s.RemoteCats, rp.Category)) &&
		(len(s.RemotePorts) == 0 || slices.Contains(s.RemotePorts, port))
}

func side(nets []string, cidrs []netip.Prefix, a netip.Addr, p *topology.Place) bool {
	if len(nets) == 0 && len(cidrs) == 0 {
		return true
	}
	if p.Network != "" && slices.Contains(nets, p.Network) {
		return true
	}
	for _, c := range cidrs {
		if c.Contains(a) {
			return true
		}
	}
	return false
}

// Config configures an Engine.
type Config struct {
	// Monitors are the configured monitors (at most 64), besides "all".
	Monitors []Spec
	// Window is the span Windows and GET /api/v1/monitors sum over
	// (default 60s, at most 5 minutes).
	Window time.Duration
	// MaxGroups bounds the groups (default DefaultMaxGroups).
	MaxGroups int
}

// scope is one monitor or one category: its slots, its open-connection
// gauge and its lifetime counters (the metrics).
type scope struct {
	name   string
	spec   Spec
	fine   ring[acc]
	coarse ring[acc]
	open   int64
	cum    cumulative
}

type cumulative struct {
	sent, recv, retransHS, retransEst, rtos uint64
	ok, refused, timeout, reset             uint64
	rtt, hs                                 hist
}

func (c *cumulative) add(o *obs) {
	d := o.d
	c.sent += d.BytesSent
	c.recv += d.BytesReceived
	c.retransHS += d.SynRetransmits
	c.retransEst += d.Retransmits - min(d.SynRetransmits, d.Retransmits)
	c.rtos += d.RTOs
	c.ok += b2u(o.ok)
	c.refused += b2u(o.refused)
	c.timeout += b2u(o.timeout)
	c.reset += b2u(o.rs)
	if o.rttBucket >= 0 {
		c.rtt.observe(o.rttBucket, o.rtt)
	}
	if o.hsBucket >= 0 {
		c.hs.observe(o.hsBucket, o.hs)
	}
}

func (s *scope) add(o *obs, fi, ci int64) {
	s.fine.at(fi, FineSlots).add(o)
	s.coarse.at(ci, CoarseSlots).add(o)
	s.cum.add(o)
	s.open = gauge(s.open, o.d)
}

func gauge(open int64, d *flow.Delta) int64 {
	if d.New {
		open++
	}
	if d.Closed || d.Gone {
		open--
	}
	return max(open, 0)
}

type groupKey struct {
	local, remote netip.Addr
	port          uint16
	dir           flow.Direction
	comm          string
}

// group is one (local, remote, server port, direction, process) with its
// slots; the engine keeps at most MaxGroups, least recently updated
// evicted first.
type group struct {
	key        groupKey
	prev, next *group
	gen        uint64 // resolver and config generation of the fields below
	mask       uint64 // monitors matched: bit i is Config.Monitors[i]
	inAll      bool   // counted in "all" and the categories
	cat        int
	lp, rp     topology.Place
	first      time.Time
	last       time.Time
	open       int64
	fine       ring[acc]
	coarse     ring[lite]
}

// Engine rolls the flow table's deltas up per monitor, per category and
// per group in 10 s slots (5 minutes) and 1 min slots (1 hour). Observe is
// the table's observer; everything else reads. It is safe for concurrent
// use.
//
// Each byte counts once in "all" and the categories: when both ends of a
// connection are sockets of this host (two network namespaces), the
// table holds it twice (client and server side) and the engine counts the
// client side only. A configured monitor counts whichever side it matches.
type Engine struct {
	res *topology.Resolver

	mu        sync.Mutex
	cfg       Config
	cfgGen    uint64
	scopes    []*scope // [0] is "all", then cfg.Monitors in order
	cats      []*scope // per topology.Categories
	groups    map[groupKey]*group
	head      *group // least recently updated
	tail      *group
	spare     *group
	evicted   uint64
	localSeen map[netip.Addr]struct{}
	winSlots  atomic.Int64 // slots in cfg.Window (read by Observe before it locks)
}

// NewEngine returns an engine classifying with res (nil: an empty
// resolver).
func NewEngine(cfg Config, res *topology.Resolver) *Engine {
	if res == nil {
		res = &topology.Resolver{}
	}
	e := &Engine{res: res, groups: map[groupKey]*group{}, localSeen: map[netip.Addr]struct{}{}}
	for _, c := range topology.Categories {
		e.cats = append(e.cats, &scope{name: c})
	}
	e.Configure(cfg)
	return e
}

// Resolver is the engine's topology resolver.
func (e *Engine) Resolver() *topology.Resolver { return e.res }

// Configure replaces the monitors (a reload). Monitors that keep their
// name keep their slots and counters; groups are re-matched lazily.
func (e *Engine) Configure(cfg Config) {
	if cfg.Window <= 0 {
		cfg.Window = time.Minute
	}
	cfg.Window = min(cfg.Window, FineSlot*FineSlots)
	if cfg.MaxGroups <= 0 {
		cfg.MaxGroups = DefaultMaxGroups
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	old := map[string]*scope{}
	for _, s := range e.scopes {
		old[s.name] = s
	}
	keep := func(name string, spec Spec) *scope {
		s := old[name]
		if s == nil {
			s = &scope{name: name}
		}
		s.spec = spec
		return s
	}
	scopes := []*scope{keep(AllMonitor, Spec{Name: AllMonitor})}
	for _, m := range cfg.Monitors {
		scopes = append(scopes, keep(m.Name, m))
	}
	e.scopes = scopes
	e.cfg = cfg
	e.cfgGen++
	e.winSlots.Store(int64((cfg.Window + FineSlot - 1) / FineSlot))
	for len(e.groups) > cfg.MaxGroups {
		e.evict()
	}
}

// Observe adds one connection delta (the flow table's observer: called
// under the table's lock; it takes the engine's).
func (e *Engine) Observe(d *flow.Delta) {
	r := d.Rec
	var o obs
	o.d = d
	now := d.Now
	fi, ci := now.Unix()/fineWidth, now.Unix()/coarseWidth
	o.rttBucket, o.hsBucket = -1, -1
	// At most one RTT observation per connection per window: the mark is
	// the slot of its last observation (+1, 0: none yet).
	if m := *d.Mark; r.SRTT > 0 && !r.ConnectFailed && !d.Gone && (m == 0 || uint64(fi)+1 >= m+uint64(e.winSlots.Load())) {
		*d.Mark = uint64(fi) + 1
		o.rtt = r.SRTT.Seconds()
		o.rttBucket = bucketOf(o.rtt)
	}
	if d.Established && r.Direction == flow.DirClient {
		o.ok = true
		if r.ConnectLatency > 0 {
			o.hs = r.ConnectLatency.Seconds()
			o.hsBucket = bucketOf(o.hs)
		}
	}
	if d.Failed {
		switch r.ConnectResult {
		case "refused":
			o.refused = true
		case "reset":
			o.rs = true
		case "timeout":
			o.timeout = true
		default:
			if r.RSTReceived > 0 {
				o.refused = true
			} else {
				o.timeout = true
			}
		}
	}
	o.estReset = d.RSTReceived > 0 && !r.ConnectFailed && r.State != "syn_sent"

	k := groupKey{local: r.Local.Addr().Unmap(), remote: r.Remote.Addr().Unmap(), port: r.ServerPort(), dir: r.Direction, comm: r.Comm}
	e.mu.Lock()
	defer e.mu.Unlock()
	if d.Gone {
		e.gone(&k, &o, fi, ci)
		return
	}
	g := e.group(&k, now)
	if g.inAll && k.dir == flow.DirServer {
		// The client side of this connection is a socket of this host
		// too (seen after the server side): count it there only.
		if _, dup := e.localSeen[k.remote]; dup {
			g.inAll = false
		}
	}
	g.fine.at(fi, FineSlots).add(&o)
	g.coarse.at(ci, CoarseSlots).add(&o)
	g.open = gauge(g.open, d)
	g.last = now
	if g.inAll {
		e.scopes[0].add(&o, fi, ci)
		e.cats[g.cat].add(&o, fi, ci)
	}
	for m := g.mask; m != 0; m &= m - 1 {
		i := trailingZeros(m)
		e.scopes[i+1].add(&o, fi, ci)
	}
}

// gone counts a connection the table dropped while open (evicted or idle):
// it leaves the open-connection gauges. Its group may have been evicted
// already; then it is classified afresh, without keeping a group.
func (e *Engine) gone(k *groupKey, o *obs, fi, ci int64) {
	g, ok := e.groups[*k]
	if !ok {
		var tmp group
		tmp.key = *k
		e.classify(&tmp, 0)
		if _, dup := e.localSeen[k.remote]; dup && k.dir == flow.DirServer {
			tmp.inAll = false
		}
		g = &tmp
	} else {
		g.fine.at(fi, FineSlots).add(o)
		g.coarse.at(ci, CoarseSlots).add(o)
		g.open = gauge(g.open, o.d)
	}
	if g.inAll {
		e.scopes[0].add(o, fi, ci)
		e.cats[g.cat].add(o, fi, ci)
	}
	for m := g.mask; m != 0; m &= m - 1 {
		e.scopes[trailingZeros(m)+1].add(o, fi, ci)
	}
}

func trailingZeros(m uint64) int {
	n := 0
	for m&1 == 0 {
		m >>= 1
		n++
	}
	return n
}

// group returns k's group, created (or reused from the evicted one) and
// classified as needed, and marks it most recently used.
func (e *Engine) group(k *groupKey, now time.Time) *group {
	g, ok := e.groups[*k]
	if ok {
		e.unlink(g)
	} else {
		if len(e.groups) >= e.cfg.MaxGroups {
			e.evict()
		}
		if g = e.spare; g != nil {
			e.spare = nil
			fine, coarse := g.fine, g.coarse
			fine.reset()
			coarse.reset()
			*g = group{fine: fine, coarse: coarse}
		} else {
			g = &group{}
		}
		g.key, g.first = *k, now
		e.groups[*k] = g
		if k.dir == flow.DirClient {
			// Remember the client side's address, to recognise the
			// server side of a connection between two sockets of this
			// host.
			if len(e.localSeen) >= maxLocalSeen {
				clear(e.localSeen)
			}
			e.localSeen[k.local] = struct{}{}
		}
	}
	e.pushBack(g)
	if gen := e.res.Gen()<<20 | e.cfgGen; !ok || g.gen != gen {
		e.classify(g, gen)
	}
	return g
}

func (e *Engine) classify(g *group, gen uint64) {
	k := &g.key
	lp, rp, _ := e.res.Classify(k.local, k.remote)
	g.lp, g.rp, g.gen = lp, rp, gen
	g.cat = max(topology.CategoryIndex(rp.Category), 0)
	_, dup := e.localSeen[k.remote]
	g.inAll = !(k.dir == flow.DirServer && dup)
	g.mask = 0
	for i := range e.cfg.Monitors {
		if e.cfg.Monitors[i].match(k.local, k.remote, &lp, &rp, k.port) {
			g.mask |= 1 << i
		}
	}
}

func (e *Engine) evict() {
	g := e.head
	if g == nil {
		return
	}
	e.unlink(g)
	delete(e.groups, g.key)
	e.evicted++
	e.spare = g
}

func (e *Engine) unlink(g *group) {
	if g.prev != nil {
		g.prev.next = g.next
	} else {
		e.head = g.next
	}
	if g.next != nil {
		g.next.prev = g.prev
	} else {
		e.tail = g.prev
	}
	g.prev, g.next = nil, nil
}

func (e *Engine) pushBack(g *group) {
	g.prev = e.tail
	if e.tail != nil {
		e.tail.next = g
	} else {
		e.head = g
	}
	e.tail = g
}

// Evicted counts groups dropped to keep at most MaxGroups.
func (e *Engine) Evicted() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.evicted
}

// Groups is the number of groups held.
func (e *Engine) Groups() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.groups)
}

// MemoryBound is the most heap the engine's slots and groups hold, in
// bytes, with maxGroups groups (0: DefaultMaxGroups) and monitors
// configured monitors: every group with all its 10 s and 1 min slots, every
// scope (all, the monitors, the categories) likewise, and the set of
// client addresses. docs/monitors.md quotes it for the defaults.
func MemoryBound(maxGroups, monitors int) int64 {
	if maxGroups <= 0 {
		maxGroups = DefaultMaxGroups
	}
	const mapEntry = 128 // key, pointer and the map's per-entry overhead
	// Slot arrays rounded up to the allocator's size classes (within 512
	// bytes at these sizes).
	arr := func(n int, size uintptr) int64 { return (int64(n)*int64(size) + 511) &^ 511 }
	perGroup := int64(unsafe.Sizeof(group{})) + arr(FineSlots, unsafe.Sizeof(slot[acc]{})) +
		arr(CoarseSlots, unsafe.Sizeof(slot[lite]{})) + mapEntry
	perScope := int64(unsafe.Sizeof(scope{})) + arr(FineSlots, unsafe.Sizeof(slot[acc]{})) + arr(CoarseSlots, unsafe.Sizeof(slot[acc]{}))
	scopes := int64(1 + monitors + len(topology.Categories))
	return int64(maxGroups)*perGroup + scopes*perScope + maxLocalSeen*64
}
