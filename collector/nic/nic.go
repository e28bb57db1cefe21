package nic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/internal/kernel"
)

// Name is the collector type and config section.
const Name = "nic"

// Config is the collectors.nic section.
type Config struct {
	config.CollectorCommon `yaml:",inline"`
	// Include is a regular expression (anchored) of interface names to read.
	Include string `yaml:"include"`
	// Exclude is a regular expression (anchored) of interface names to skip.
	Exclude string `yaml:"exclude"`
	// PerQueue exports per-queue statistics (queue label); off by default.
	PerQueue bool `yaml:"per_queue"`
	// MaxStatsPerDevice bounds the generic statistics series per interface.
	MaxStatsPerDevice int `yaml:"max_stats_per_device"`
}

// MinInterval is the fastest the driver is polled.
const MinInterval = time.Second

// Validate checks the section.
func (c *Config) Validate() error {
	errs := []error{c.ValidateCommon()}
	if c.Interval < MinInterval {
		errs = append(errs, config.Errorf("interval", "must be at least %s (netsight does not poll NIC drivers faster), got %s", MinInterval, c.Interval))
	}
	for _, f := range []struct{ name, re string }{{"include", c.Include}, {"exclude", c.Exclude}} {
		if _, err := regexp.Compile("^(?:" + f.re + ")$"); err != nil {
			errs = append(errs, config.Errorf(f.name, "invalid regular expression: %v", err))
		}
	}
	if c.MaxStatsPerDevice < 1 {
		errs = append(errs, config.Errorf("max_stats_per_device", "must be at least 1, got %d", c.MaxStatsPerDevice))
	} else if c.MaxStatsPerDevice > 100_000 {
		errs = append(errs, config.Errorf("max_stats_per_device", "must be at most 100000, got %d", c.MaxStatsPerDevice))
	}
	return errors.Join(errs...)
}

// DefaultConfig returns the section's defaults.
func DefaultConfig() *Config {
	return &Config{
		CollectorCommon:   config.CollectorCommon{Interval: 15 * time.Second},
		Include:           ".*",
		Exclude:           "lo",
		MaxStatsPerDevice: 500,
	}
}

func init() { collector.Register(collector.NewFactory(Name, DefaultConfig, New, nil)) }

// The ENA ENI allowance statistics (amzn-drivers ena_ethtool.c).
var allowanceCounters = []string{
	"bw_in_allowance_exceeded",
	"bw_out_allowance_exceeded",
	"pps_allowance_exceeded",
	"conntrack_allowance_exceeded",
	"linklocal_allowance_exceeded",
}

const conntrackAvailable = "conntrack_allowance_available"

var (
	allowanceDescs = map[string]*prometheus.Desc{}
	availableDesc  = prometheus.NewDesc("netsight_nic_conntrack_allowance_available",
		"Connections the instance can still track before reaching its allowance (ENA conntrack_allowance_available, driver >= 2.8.1).",
		[]string{"device"}, nil)
	resetsDesc = prometheus.NewDesc("netsight_nic_driver_resets_total",
		"Times a driver counter was seen going down (device reset); the allowance counters stay monotonic across them.",
		[]string{"device"}, nil)
	infoDesc = prometheus.NewDesc("netsight_nic_info",
		"Interfaces whose ethtool statistics are read, with their driver.", []string{"device", "driver"}, nil)
	statDesc = prometheus.NewDesc("netsight_nic_stat",
		"Raw driver statistic (ethtool -S) of an interface; per-queue statistics excluded unless per_queue is on.",
		[]string{"device", "stat"}, nil)
	queueStatDesc = prometheus.NewDesc("netsight_nic_queue_stat",
		"Raw per-queue driver statistic (ethtool -S), queue number moved to a label.",
		[]string{"device", "queue", "stat"}, nil)
	truncatedDesc = prometheus.NewDesc("netsight_nic_stats_truncated",
		"Statistics of an interface left out because it has more than max_stats_per_device.",
		[]string{"device"}, nil)
)

func init() {
	for _, n := range allowanceCounters {
		allowanceDescs[n] = prometheus.NewDesc("netsight_nic_"+n+"_total",
			"ENA "+n+": packets queued or dropped because the instance exceeded this allowance. Reset-safe: accumulated across driver resets.",
			[]string{"device"}, nil)
	}
}

// Collector exports NIC statistics.
type Collector struct {
	cfg      *Config
	logger   *slog.Logger
	include  *regexp.Regexp
	exclude  *regexp.Regexp
	source   func() (kernel.NICSource, error)
	mu       sync.Mutex
	counters map[string]*resetSafe // device/stat
	resets   map[string]uint64
	drivers  map[string]string
	warned   map[string]bool
	now      func() time.Time
	lastRead time.Time
	lastDevs []Device
	lastErr  error
}

// New builds the collector over the real ethtool ioctl in the calling
// thread's namespace.
func New(cfg *Config, deps collector.Deps) (*Collector, error) {
	return NewWithSource(cfg, deps, nil)
}

// NewWithSource is New with source opening the kernel source per update
// (nil: the real ethtool ioctl).
func NewWithSource(cfg *Config, deps collector.Deps, source func() (kernel.NICSource, error)) (*Collector, error) {
	deps = deps.WithDefaults()
	logger := deps.Logger
	inc, err := regexp.Compile("^(?:" + cfg.Include + ")$")
	if err != nil {
		return nil, fmt.Errorf("nic include: %w", err)
	}
	exc, err := regexp.Compile("^(?:" + cfg.Exclude + ")$")
	if err != nil {
		return nil, fmt.Errorf("nic exclude: %w", err)
	}
	if cfg.Exclude == "" {
		exc = nil
	}
	if source == nil {
		source = func() (kernel.NICSource, error) { return kernel.NewEthtoolSource() }
	}
	c := &Collector{
		cfg: cfg, logger: logger, include: inc, exclude: exc, source: source,
		counters: map[string]*resetSafe{}, resets: map[string]uint64{},
		drivers: map[string]string{}, warned: map[string]bool{}, now: deps.Now,
	}
	return c, nil
}

// ConntrackAllowanceAvailable is conntrack_allowance_available summed over
// the interfaces of the last read, ok false when none reports it: the
// monitor's capacity reads it (monitor.AllowanceReader).
func (c *Collector) ConntrackAllowanceAvailable() (available uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return sumAvailable(c.lastDevs)
}

// AllowanceExceeded returns, per interface of the last read, the
// reset-safe totals of its *_allowance_exceeded counters (copies; nil
// before the first read): the health verdict's cloud_nic_limit reads it
// (health.AllowanceExceededReader).
func (c *Collector) AllowanceExceeded() map[string]map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out map[string]map[string]uint64
	for _, d := range c.lastDevs {
		if len(d.Exceeded) == 0 {
			continue
		}
		if out == nil {
			out = map[string]map[string]uint64{}
		}
		out[d.Name] = maps.Clone(d.Exceeded)
	}
	return out
}

func sumAvailable(devs []Device) (available uint64, ok bool) {
	for _, d := range devs {
		if d.HasAvailable {
			available += d.Available
			ok = true
		}
	}
	return available, ok
}

// resetSafe turns a raw counter that restarts at 0 on device reset into a
// monotonic total.
type resetSafe struct {
	last, total uint64
	seen        bool
}

// observe folds a raw value in; it reports whether a reset was detected.
func (r *resetSafe) observe(raw uint64) bool {
	switch {
	case !r.seen:
		r.total, r.seen = raw, true
	case raw < r.last:
		// The counter restarted from zero and has counted raw since.
		r.total += raw
		r.last = raw
		return true
	default:
		r.total += raw - r.last
	}
	r.last = raw
	return false
}

// Device is one interface's reading, shared with `netsight conntrack`.
type Device struct {
	Name   string
	Driver string
	Stats  []kernel.NICStat // sorted by name
	// Available is conntrack_allowance_available when present.
	Available    uint64
	HasAvailable bool
	// Exceeded holds the reset-safe totals of the allowance counters present.
	Exceeded map[string]uint64
}

// Read reads every selected interface and folds the allowance counters into
// their monotonic totals.
func (c *Collector) Read() ([]Device, error) {
	src, err := c.source()
	if err != nil {
		return nil, err
	}
	defer src.Close()
	names, err := src.Interfaces()
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var devs []Device
	var errs []error
	for _, name := range names {
		if !c.include.MatchString(name) || (c.exclude != nil && c.exclude.MatchString(name)) {
			continue
		}
		stats, err := src.Stats(name)
		if err != nil {
			if errors.Is(err, kernel.ErrNoNICStats) {
				continue
			}
			errs = append(errs, err)
			continue
		}
		sort.Slice(stats, func(i, j int) bool { return stats[i].Name < stats[j].Name })
		d := Device{Name: name, Stats: stats, Exceeded: map[string]uint64{}}
		if drv, ok := c.drivers[name]; ok {
			d.Driver = drv
		} else if drv, err := src.Driver(name); err == nil {
			d.Driver, c.drivers[name] = drv, drv
		}
		reset := false
		for _, s := range stats {
			if s.Name == conntrackAvailable {
				d.Available, d.HasAvailable = s.Value, true
				continue
			}
			if !isAllowance(s.Name) {
				continue
			}
			key := name + "/" + s.Name
			r := c.counters[key]
			if r == nil {
				r = &resetSafe{}
				c.counters[key] = r
			}
			if r.observe(s.Value) {
				reset = true
				c.logger.Info("nic counter went down: driver reset, keeping a monotonic total",
					"device", name, "stat", s.Name, "raw", s.Value, "total", r.total)
			}
			d.Exceeded[s.Name] = r.total
		}
		if reset {
			c.resets[name]++ // once per device per read, however many counters fell
		}
		devs = append(devs, d)
	}
	return devs, errors.Join(errs...)
}

func isAllowance(n string) bool {
	for _, a := range allowanceCounters {
		if a == n {
			return true
		}
	}
	return false
}

// queueRE finds the queue number in per-queue statistic names of common
// drivers: ENA queue_3_tx_cnt, virtio/veth rx_queue_0_packets, mlx5
// rx3_packets, ixgbe tx_queue_3_bytes, i40e/ice rx-3.packets, bnxt [3]: ...
var queueRE = regexp.MustCompile(`^(?:queue_(\d+)_|(?:rx|tx)_queue_(\d+)_|(?:rx|tx)(\d+)_|(?:rx|tx)-(\d+)\.|\[(\d+)\]: ?)`)

// splitQueue returns the queue number and the statistic name without it
// (keeping rx/tx), or ok=false for a device-wide statistic.
func splitQueue(name string) (queue, stat string, ok bool) {
	m := queueRE.FindStringSubmatchIndex(name)
	if m == nil {
		return "", name, false
	}
	for g := 1; g*2 < len(m); g++ {
		if m[2*g] >= 0 {
			queue = name[m[2*g]:m[2*g+1]]
			break
		}
	}
	prefix := name[:m[1]]
	rest := name[m[1]:]
	switch {
	case strings.HasPrefix(prefix, "rx"):
		stat = "rx_" + rest
	case strings.HasPrefix(prefix, "tx"):
		stat = "tx_" + rest
	default:
		stat = rest
	}
	return queue, stat, true
}

// Update reads every interface of the namespace the calling thread is in.
func (c *Collector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Never poll the driver more than once a second, whoever asks.
	devs, err := c.lastDevs, c.lastErr
	if now := c.now(); c.lastRead.IsZero() || now.Sub(c.lastRead) >= MinInterval {
		devs, err = c.Read()
		c.lastRead, c.lastDevs, c.lastErr = now, devs, err
	}
	if devs == nil && err != nil {
		return fmt.Errorf("nic: %w", err)
	}
	for _, d := range devs {
		ch <- prometheus.MustNewConstMetric(infoDesc, prometheus.GaugeValue, 1, d.Name, d.Driver)
		ch <- prometheus.MustNewConstMetric(resetsDesc, prometheus.CounterValue, float64(c.resets[d.Name]), d.Name)
		for _, n := range allowanceCounters {
			if v, ok := d.Exceeded[n]; ok {
				ch <- prometheus.MustNewConstMetric(allowanceDescs[n], prometheus.CounterValue, float64(v), d.Name)
			}
		}
		if d.HasAvailable {
			ch <- prometheus.MustNewConstMetric(availableDesc, prometheus.GaugeValue, float64(d.Available), d.Name)
		}
		emitted, truncated := 0, 0
		for _, s := range d.Stats {
			if s.Name == conntrackAvailable || isAllowance(s.Name) {
				continue
			}
			q, stat, perQueue := splitQueue(s.Name)
			if perQueue && !c.cfg.PerQueue {
				continue
			}
			if emitted >= c.cfg.MaxStatsPerDevice {
				truncated++
				continue
			}
			emitted++
			if perQueue {
				ch <- prometheus.MustNewConstMetric(queueStatDesc, prometheus.UntypedValue, float64(s.Value), d.Name, q, stat)
			} else {
				ch <- prometheus.MustNewConstMetric(statDesc, prometheus.UntypedValue, float64(s.Value), d.Name, s.Name)
			}
		}
		ch <- prometheus.MustNewConstMetric(truncatedDesc, prometheus.GaugeValue, float64(truncated), d.Name)
		if truncated > 0 && !c.warned[d.Name] {
			c.warned[d.Name] = true
			c.logger.Warn("nic statistics truncated", "device", d.Name, "left_out", truncated, "max_stats_per_device", c.cfg.MaxStatsPerDevice)
		}
	}
	return err
}

var _ collector.Collector = (*Collector)(nil)
