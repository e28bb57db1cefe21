package nftables

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/internal/kernel"
)

// Name is the collector type and config section.
const Name = "nftables"

// TableName is the only table this collector creates, reads and deletes.
const TableName = "netsight"

// Config is the collectors.nftables section.
type Config struct {
	config.CollectorCommon `yaml:",inline"`
	// Priority of the three base chains. It must be above -200 (conntrack
	// assigns the state there); the default -190 counts packets before
	// ordinary filter chains (priority 0) can drop them.
	Priority int `yaml:"priority"`
}

// Validate checks the section.
func (c *Config) Validate() error {
	errs := []error{c.ValidateCommon()}
	if c.Priority <= -200 || c.Priority > 300 {
		errs = append(errs, config.Errorf("priority", "must be in (-200, 300] (after conntrack at -200), got %d", c.Priority))
	}
	return errors.Join(errs...)
}

// DefaultConfig returns the defaults: disabled.
func DefaultConfig() *Config {
	off := false
	return &Config{
		CollectorCommon: config.CollectorCommon{Enabled: &off, Interval: 15 * time.Second},
		Priority:        -190,
	}
}

func init() { collector.Register(collector.NewFactory(Name, DefaultConfig, New, check)) }

// check reports whether nftables netlink is usable (CAP_NET_ADMIN); it
// changes nothing.
func check(context.Context, *Config, collector.Deps) error {
	if err := kernel.NftablesUsable(); err != nil {
		return collector.NotSupported("nftables netlink (CAP_NET_ADMIN)", err)
	}
	return nil
}

var (
	families = []struct {
		name  string
		proto byte
	}{{"ipv4", unix.NFPROTO_IPV4}, {"ipv6", unix.NFPROTO_IPV6}}
	protocols = []struct {
		name  string
		proto byte
	}{{"tcp", unix.IPPROTO_TCP}, {"udp", unix.IPPROTO_UDP}}
	hooks = []struct {
		name string
		hook *nftables.ChainHook
	}{{"input", nftables.ChainHookInput}, {"output", nftables.ChainHookOutput}, {"forward", nftables.ChainHookForward}}
	states = []struct {
		name string
		bit  uint32
	}{{"new", expr.CtStateBitNEW}, {"established", expr.CtStateBitESTABLISHED}, {"invalid", expr.CtStateBitINVALID}}

	packetsDesc = prometheus.NewDesc("netsight_nftables_ct_packets_total",
		"Packets per conntrack state seen by netsight's own nftables counters (table inet netsight).",
		[]string{"family", "protocol", "hook", "state"}, nil)
	bytesDesc = prometheus.NewDesc("netsight_nftables_ct_bytes_total",
		"Bytes (from the network header) per conntrack state seen by netsight's own nftables counters.",
		[]string{"family", "protocol", "hook", "state"}, nil)
)

// counterName is the named counter of one cell, e.g. ipv4_tcp_input_new.
func counterName(fam, proto, hook, state string) string {
	return fam + "_" + proto + "_" + hook + "_" + state
}

type cell struct{ fam, proto, hook, state string }

// Collector owns the inet netsight table.
type Collector struct {
	cfg    *Config
	logger *slog.Logger
	nsFD   int
	conn   *nftables.Conn
	table  *nftables.Table
	cells  map[string]cell

	mu     sync.Mutex
	closed bool
}

// New creates (or re-creates, if a previous run left it) the inet netsight
// table in the network namespace of the calling thread.
func New(cfg *Config, deps collector.Deps) (*Collector, error) {
	deps = deps.WithDefaults()
	logger := deps.Logger
	fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("nftables: open netns: %w", err)
	}
	// Pin the namespace only when this thread is in another one than the
	// process (a test's lab namespace): google/nftables enters a pinned
	// namespace with setns, which needs CAP_SYS_ADMIN even for the
	// process's own namespace, and the agent runs with CAP_NET_ADMIN only.
	var opts []nftables.ConnOption
	if other, err := otherNetNS(); err != nil || other {
		opts = append(opts, nftables.WithNetNSFd(fd))
	}
	conn, err := nftables.New(opts...)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("nftables: %w", err)
	}
	c := &Collector{cfg: cfg, logger: logger, nsFD: fd, conn: conn,
		table: &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet},
		cells: map[string]cell{}}
	if err := c.install(); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EPERM) || errors.Is(err, os.ErrPermission) {
			return nil, collector.NotSupported("CAP_NET_ADMIN (nftables)", err)
		}
		return nil, err
	}
	logger.Info("created nftables table inet "+TableName, "chains", len(hooks), "counters", len(c.cells))
	return c, nil
}

func (c *Collector) install() error {
	if t, err := c.conn.ListTableOfFamily(TableName, nftables.TableFamilyINet); err == nil && t != nil {
		c.conn.DelTable(c.table) // our own leftover from a run that did not shut down
	}
	c.conn.AddTable(c.table)
	prio := nftables.ChainPriority(c.cfg.Priority)
	accept := nftables.ChainPolicyAccept
	for _, h := range hooks {
		ch := c.conn.AddChain(&nftables.Chain{
			Name: "ct_" + h.name, Table: c.table, Type: nftables.ChainTypeFilter,
			Hooknum: h.hook, Priority: &prio, Policy: &accept,
		})
		for _, f := range families {
			for _, p := range protocols {
				for _, s := range states {
					name := counterName(f.name, p.name, h.name, s.name)
					c.cells[name] = cell{f.name, p.name, h.name, s.name}
					c.conn.AddObj(&nftables.CounterObj{Table: c.table, Name: name})
					c.conn.AddRule(&nftables.Rule{Table: c.table, Chain: ch, Exprs: []expr.Any{
						&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
						&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{f.proto}},
						&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
						&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p.proto}},
						&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
						&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
							Mask: binaryutil.NativeEndian.PutUint32(s.bit), Xor: binaryutil.NativeEndian.PutUint32(0)},
						&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
						&expr.Objref{Type: 1 /* NFT_OBJECT_COUNTER */, Name: name},
					}})
				}
			}
		}
	}
	if err := c.conn.Flush(); err != nil {
		return fmt.Errorf("nftables: create table inet %s: %w", TableName, err)
	}
	return nil
}

// Update reads the named counters of the inet netsight table.
func (c *Collector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("nftables: collector closed")
	}
	objs, err := c.conn.GetObjects(c.table)
	if err != nil {
		return fmt.Errorf("nftables: read counters of table inet %s: %w", TableName, err)
	}
	seen := 0
	for _, o := range objs {
		co, ok := o.(*nftables.CounterObj)
		if !ok {
			continue
		}
		k, ok := c.cells[co.Name]
		if !ok {
			continue
		}
		seen++
		ch <- prometheus.MustNewConstMetric(packetsDesc, prometheus.CounterValue, float64(co.Packets), k.fam, k.proto, k.hook, k.state)
		ch <- prometheus.MustNewConstMetric(bytesDesc, prometheus.CounterValue, float64(co.Bytes), k.fam, k.proto, k.hook, k.state)
	}
	if seen != len(c.cells) {
		return fmt.Errorf("nftables: table inet %s holds %d of our %d counters (was it changed by someone else?)", TableName, seen, len(c.cells))
	}
	return nil
}

// Close deletes the inet netsight table (only it). It is idempotent.
func (c *Collector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	defer unix.Close(c.nsFD)
	c.conn.DelTable(c.table)
	if err := c.conn.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("nftables: delete table inet %s: %w", TableName, err)
	}
	c.logger.Info("deleted nftables table inet " + TableName)
	return nil
}

var (
	_ collector.Collector = (*Collector)(nil)
	_ collector.Closer    = (*Collector)(nil)
)

// processNetNS is the network namespace the process started in, read
// while the package initialises (on the main thread, before anything can
// have moved a thread elsewhere). /proc/self/ns/net cannot tell: it follows
// whichever thread the leader task happens to be.
var processNetNS, processNetNSErr = threadNetNS()

func threadNetNS() (unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return st, fmt.Errorf("stat thread netns: %w", err)
	}
	return st, nil
}

// otherNetNS reports whether the calling thread's network namespace differs
// from the one the process started in.
func otherNetNS() (bool, error) {
	if processNetNSErr != nil {
		return false, processNetNSErr
	}
	cur, err := threadNetNS()
	if err != nil {
		return false, err
	}
	return cur.Ino != processNetNS.Ino || cur.Dev != processNetNS.Dev, nil
}
