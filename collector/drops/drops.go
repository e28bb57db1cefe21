package drops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/internal/kernel"
)

// Name is the collector type and config section.
const Name = "drops"

// Config is the collectors.drops section.
type Config struct {
	config.CollectorCommon `yaml:",inline"`
	// MaxEntries bounds the kernel's (reason, network namespace) table:
	// under namespace churn its least recently used keys are evicted. The
	// per-reason totals are exact whatever it is.
	MaxEntries int `yaml:"max_entries"`
}

// Limits of max_entries.
const (
	minEntries = 64
	maxEntries = 1 << 20
)

// Validate checks the section.
func (c *Config) Validate() error {
	errs := []error{c.ValidateCommon()}
	if c.MaxEntries < minEntries || c.MaxEntries > maxEntries {
		errs = append(errs, config.Errorf("max_entries", "must be in [%d, %d], got %d", minEntries, maxEntries, c.MaxEntries))
	}
	return errors.Join(errs...)
}

// DefaultConfig returns the defaults: on where supported, every 15s, 8192
// (reason, namespace) keys.
func DefaultConfig() *Config {
	return &Config{CollectorCommon: config.CollectorCommon{Interval: 15 * time.Second}, MaxEntries: 8192}
}

func init() { collector.Register(collector.NewFactory(Name, DefaultConfig, New, check)) }

// check reports whether the kernel has what the program needs: BTF with
// enum skb_drop_reason and a kfree_skb tracepoint that passes the reason,
// and the capabilities to load it. It loads nothing.
func check(context.Context, *Config, collector.Deps) error {
	_, err := kernelReasons()
	if err != nil {
		return err
	}
	return capabilities()
}

func capabilities() error {
	if !kernel.HasCap(kernel.CapSysAdmin) {
		if err := kernel.RequireCaps(kernel.CapBPF, kernel.CapPerfmon); err != nil {
			return collector.NotSupported("capabilities for eBPF tracing (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN)", err)
		}
	}
	return nil
}

// kernelReasons loads the running kernel's BTF and checks the tracepoint.
func kernelReasons() (*Reasons, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, collector.NotSupported("kernel BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF)", err)
	}
	var td *btf.Typedef
	if err := spec.TypeByName("btf_trace_kfree_skb", &td); err != nil {
		return nil, collector.NotSupported("tp_btf/kfree_skb (btf_trace_kfree_skb in kernel BTF)", err)
	}
	// The typedef is a pointer to func(void *ctx, skb, location, reason, ...).
	if ptr, ok := td.Type.(*btf.Pointer); ok {
		if fp, ok := ptr.Target.(*btf.FuncProto); ok && len(fp.Params) < 4 {
			return nil, collector.NotSupported("kfree_skb tracepoint with a drop reason (Linux >= 5.17)", nil)
		}
	}
	r, err := ReasonsFromBTF(spec)
	if err != nil {
		return nil, collector.NotSupported("enum skb_drop_reason in kernel BTF (Linux >= 5.17)", err)
	}
	return r, nil
}

var (
	dropsDesc = prometheus.NewDesc("netsight_skb_drops_total",
		"Packets (sk_buffs) the kernel dropped, by drop reason (tp_btf/kfree_skb; reason names from the running kernel's enum skb_drop_reason), all network namespaces.",
		[]string{"reason"}, nil)
	keysDesc = prometheus.NewDesc("netsight_skb_drops_tracked_keys",
		"(reason, network namespace) keys in the kernel table (at most collectors.drops.max_entries; least recently used evicted beyond).", nil, nil)
)

// minRefresh is how old a read may be before a read interface rereads the
// kernel maps.
const minRefresh = 250 * time.Millisecond

// Collector counts kernel drops by reason and network namespace.
type Collector struct {
	logger  *slog.Logger
	now     func() time.Time
	reasons *Reasons
	objs    dropsObjects
	link    link.Link
	ncpu    int

	mu     sync.Mutex
	readAt time.Time
	// totals by slot of the kernel's totals array (cumulative: the array
	// never loses counts).
	totals map[string]uint64
	// perNS: cumulative per key; last: the kernel's value at the last read
	// (an evicted and re-created key restarts from zero).
	perNS  map[dropsDropKey]uint64
	last   map[dropsDropKey]uint64
	seen   map[dropsDropKey]uint64 // read generation that last saw the key
	gen    uint64
	keys   int
	closed bool

	keysBuf []dropsDropKey
	valsBuf []uint64
}

// New loads and attaches the program. A host without BTF, the tracepoint
// or the capabilities gets an error wrapping ErrNotSupported naming what
// is missing.
func New(cfg *Config, deps collector.Deps) (*Collector, error) {
	deps = deps.WithDefaults()
	reasons, err := kernelReasons()
	if err != nil {
		return nil, err
	}
	if err := capabilities(); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, collector.NotSupported("raise RLIMIT_MEMLOCK (CAP_SYS_RESOURCE)", err)
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("drops: %w", err)
	}
	spec, err := loadDrops()
	if err != nil {
		return nil, fmt.Errorf("drops: load spec: %w", err)
	}
	spec.Maps["drops"].MaxEntries = uint32(cfg.MaxEntries)
	c := &Collector{logger: deps.Logger, now: deps.Now, reasons: reasons, ncpu: ncpu,
		totals: map[string]uint64{}, perNS: map[dropsDropKey]uint64{},
		last: map[dropsDropKey]uint64{}, seen: map[dropsDropKey]uint64{}}
	if err := spec.LoadAndAssign(&c.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, collector.NotSupported("eBPF verifier accepting the kfree_skb program", fmt.Errorf("%+v", ve))
		}
		return nil, collector.NotSupported("loading the kfree_skb eBPF program (CAP_BPF, CAP_PERFMON, kernel BTF)", err)
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: c.objs.NetsightKfreeSkb})
	if err != nil {
		c.objs.Close()
		return nil, collector.NotSupported("attaching tp_btf/kfree_skb", err)
	}
	c.link = l
	c.logger.Info("attached tp_btf/kfree_skb", "reasons", len(reasons.Labels), "max_entries", cfg.MaxEntries)
	return c, nil
}

// Close detaches the program and frees the maps; it is idempotent.
func (c *Collector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	var errs []error
	if c.link != nil {
		errs = append(errs, c.link.Close())
	}
	errs = append(errs, c.objs.Close())
	return errors.Join(errs...)
}

// Update reads the kernel maps and exports the totals by reason: every
// reason of the running kernel's enum (zeros included, a stable series
// set), plus OTHER and SUBSYS_* when they occur.
func (c *Collector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.readLocked(); err != nil {
		return err
	}
	for _, l := range c.reasons.Labels {
		ch <- prometheus.MustNewConstMetric(dropsDesc, prometheus.CounterValue, float64(c.totals[l]), l)
	}
	for l, v := range c.totals {
		if _, named := c.reasons.index(l); !named && !Ignored[l] {
			ch <- prometheus.MustNewConstMetric(dropsDesc, prometheus.CounterValue, float64(v), l)
		}
	}
	ch <- prometheus.MustNewConstMetric(keysDesc, prometheus.GaugeValue, float64(c.keys))
	return nil
}

// readLocked reads both maps; c.mu is held.
func (c *Collector) readLocked() error {
	if c.closed {
		return errors.New("drops: collector closed")
	}
	totals, err := c.readTotals()
	if err != nil {
		return fmt.Errorf("drops: read totals: %w", err)
	}
	if err := c.readPerNS(); err != nil {
		return fmt.Errorf("drops: read per-namespace table: %w", err)
	}
	c.totals = totals
	c.readAt = c.now()
	return nil
}

func (c *Collector) readTotals() (map[string]uint64, error) {
	n := reasonSlots + subsysSlots
	keys := make([]uint32, n)
	vals := make([]uint64, n*c.ncpu)
	var cursor ebpf.MapBatchCursor
	got, err := c.objs.Totals.BatchLookup(&cursor, keys, vals, nil)
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil, err
	}
	out := make(map[string]uint64, len(c.reasons.Labels))
	for i := range got {
		var sum uint64
		for _, v := range vals[i*c.ncpu : (i+1)*c.ncpu] {
			sum += v
		}
		if sum != 0 {
			out[c.reasons.slotLabel(keys[i])] += sum
		}
	}
	return out, nil
}

func (c *Collector) readPerNS() error {
	const batch = 256
	if c.keysBuf == nil {
		c.keysBuf = make([]dropsDropKey, batch)
		c.valsBuf = make([]uint64, batch*c.ncpu)
	}
	c.gen++
	keys := 0
	var cursor ebpf.MapBatchCursor
	for {
		n, err := c.objs.Drops.BatchLookup(&cursor, c.keysBuf, c.valsBuf, nil)
		for i := range n {
			var sum uint64
			for _, v := range c.valsBuf[i*c.ncpu : (i+1)*c.ncpu] {
				sum += v
			}
			k := c.keysBuf[i]
			prev, ok := c.last[k]
			if ok && sum >= prev {
				c.perNS[k] += sum - prev
			} else {
				c.perNS[k] += sum // new, or evicted and re-created
			}
			c.last[k] = sum
			c.seen[k] = c.gen
		}
		keys += n
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		}
		if err != nil {
			return err
		}
	}
	c.keys = keys
	// Keys the kernel evicted: keep their counts for a while, but never
	// more keys than the kernel table holds twice over.
	for k := range c.last {
		if c.seen[k] != c.gen {
			delete(c.last, k) // a re-created key starts from zero
		}
	}
	if limit := 2 * int(c.objs.Drops.MaxEntries()); len(c.perNS) > limit {
		for k, g := range c.seen {
			if g != c.gen && len(c.perNS) > limit {
				delete(c.perNS, k)
				delete(c.seen, k)
			}
		}
	}
	return nil
}

// refresh rereads the maps when the last read is older than minRefresh.
func (c *Collector) refresh() {
	if c.now().Sub(c.readAt) < minRefresh {
		return
	}
	if err := c.readLocked(); err != nil {
		c.logger.Debug("drops read", "err", err)
	}
}

// DropsByNetNS returns, per network namespace inode (0: the buffer had no
// device and no socket), the drops by reason label since the collector
// started (cumulative; a reload restarts from zero). Reasons that are not
// drops (Ignored) are left out. The maps are copies, read at most 250ms ago.
// A namespace whose keys the kernel table evicted (more than max_entries
// keys in use) may lose drops counted between two reads.
func (c *Collector) DropsByNetNS() map[uint32]map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refresh()
	out := map[uint32]map[string]uint64{}
	for k, v := range c.perNS {
		l := c.reasons.Label(k.Reason)
		if Ignored[l] || v == 0 {
			continue
		}
		m := out[k.Netns]
		if m == nil {
			m = map[string]uint64{}
			out[k.Netns] = m
		}
		m[l] += v
	}
	return out
}

// DropsTotal returns the drops by reason label over all namespaces since
// the collector started (exact: what netsight_skb_drops_total exports),
// Ignored reasons left out; a copy, read at most 250ms ago.
func (c *Collector) DropsTotal() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refresh()
	out := maps.Clone(c.totals)
	for l := range Ignored {
		delete(out, l)
	}
	return out
}

var (
	_ collector.Collector = (*Collector)(nil)
	_ collector.Closer    = (*Collector)(nil)
)
