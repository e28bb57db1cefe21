package conntrack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/internal/kernel"
)

// Name is the collector type and config section.
const Name = "conntrack"

// Config is the collectors.conntrack section.
type Config struct {
	config.CollectorCommon `yaml:",inline"`
	// MaxDumpEntries is the ceiling of the per-state dump: above it the dump
	// is skipped or sampled (OverLimit). 0 disables the per-state dump.
	MaxDumpEntries int `yaml:"max_dump_entries"`
	// OverLimit is "skip" (default) or "sample".
	OverLimit string `yaml:"over_limit"`
	// ForecastWindow is how far back the growth rate looks.
	ForecastWindow time.Duration `yaml:"forecast_window"`
}

// Validate checks the section.
func (c *Config) Validate() error {
	errs := []error{c.ValidateCommon()}
	if c.MaxDumpEntries < 0 {
		errs = append(errs, config.Errorf("max_dump_entries", "must not be negative (0 disables the per-state dump), got %d", c.MaxDumpEntries))
	} else if c.MaxDumpEntries > 10_000_000 {
		errs = append(errs, config.Errorf("max_dump_entries", "must be at most 10000000, got %d", c.MaxDumpEntries))
	}
	if c.OverLimit != OverLimitSkip && c.OverLimit != OverLimitSample {
		errs = append(errs, config.Errorf("over_limit", "must be skip or sample, got %q", c.OverLimit))
	}
	if c.ForecastWindow < c.Interval*2 {
		errs = append(errs, config.Errorf("forecast_window", "must be at least two intervals (%s), got %s", 2*c.Interval, c.ForecastWindow))
	} else if c.ForecastWindow > 24*time.Hour {
		errs = append(errs, config.Errorf("forecast_window", "must be at most 24h, got %s", config.FormatDuration(c.ForecastWindow)))
	}
	return errors.Join(errs...)
}

// DefaultConfig returns the section's defaults.
func DefaultConfig() *Config {
	return &Config{
		CollectorCommon: config.CollectorCommon{Interval: 15 * time.Second},
		MaxDumpEntries:  100000,
		OverLimit:       OverLimitSkip,
		ForecastWindow:  15 * time.Minute,
	}
}

func init() { collector.Register(collector.NewFactory(Name, DefaultConfig, New, check)) }

// check reports whether nf_conntrack is loaded (its procfs files exist).
func check(_ context.Context, _ *Config, deps collector.Deps) error {
	if _, err := (kernel.ConntrackProc{Root: deps.Paths.ProcFS}).Count(); err != nil {
		return collector.NotSupported("nf_conntrack module", err)
	}
	return nil
}

var (
	entriesDesc = prometheus.NewDesc("netsight_conntrack_entries",
		"Entries in the connection-tracking table of this network namespace (nf_conntrack_count).", nil, nil)
	limitDesc = prometheus.NewDesc("netsight_conntrack_entries_limit",
		"Maximum entries of the connection-tracking table (nf_conntrack_max).", nil, nil)
	byStateDesc = prometheus.NewDesc("netsight_conntrack_entries_by_state",
		"Conntrack entries per family, protocol and state from a ctnetlink dump (scaled estimate when netsight_conntrack_dump_limited is 1 and over_limit is sample).",
		[]string{"family", "protocol", "state"}, nil)
	dumpLimitedDesc = prometheus.NewDesc("netsight_conntrack_dump_limited",
		"1 when the last per-state dump was skipped or sampled because the table held more than max_dump_entries, else 0.",
		[]string{"mode"}, nil)
	dumpEntriesDesc = prometheus.NewDesc("netsight_conntrack_dump_entries",
		"Entries read by the last per-state dump.", nil, nil)
	dumpDurationDesc = prometheus.NewDesc("netsight_conntrack_dump_duration_seconds",
		"Duration of the last per-state dump.", nil, nil)
)

// statHelp documents the columns of /proc/net/stat/nf_conntrack.
var statHelp = map[string]string{
	"found":          "Conntrack lookups that found an entry (per-CPU stat, summed; 0 on kernels >= 5.x that dropped it).",
	"invalid":        "Packets conntrack could not track (invalid).",
	"ignore":         "Packets already tracked or untracked (not looked up).",
	"insert":         "Entries inserted (0 on recent kernels).",
	"insert_failed":  "Entries that could not be inserted (clash with an existing entry, or table full).",
	"drop":           "Packets dropped because a new entry could not be allocated (table full, nothing early-droppable).",
	"early_drop":     "Non-assured entries evicted to make room when the table was full.",
	"icmp_error":     "ICMP errors that matched no tracked flow or were malformed.",
	"expect_new":     "Expectations added.",
	"expect_create":  "Expectations created.",
	"expect_delete":  "Expectations deleted.",
	"search_restart": "Hash table lookups restarted because of a concurrent resize.",
	"clashres":       "Insert clashes resolved (e.g. parallel UDP packets of one flow).",
	"chainlength":    "Inserts refused because a hash chain was too long (chaintoolong).",
	"new":            "Entries added (0 on recent kernels).",
	"delete":         "Entries deleted (0 on recent kernels).",
	"delete_list":    "Entries put on the dying list (old kernels).",
	"searched":       "Hash lookups (old kernels).",
}

// Collector exports the conntrack table.
type Collector struct {
	cfg    *Config
	logger *slog.Logger
	now    func() time.Time

	mu     sync.Mutex
	reader Reader
	stats  CPUStats
	window time.Duration
	last   reading
	descs  map[string]*prometheus.Desc
	// noDump is set once the dump failed for lack of CAP_NET_ADMIN: the
	// rest of the collector keeps working and stays up.
	noDump bool
}

// New builds the collector for the namespace Update runs in.
// New builds the collector; it reads procfs below deps.Paths.ProcFS.
func New(cfg *Config, deps collector.Deps) (*Collector, error) {
	deps = deps.WithDefaults()
	c := &Collector{
		cfg: cfg, logger: deps.Logger, now: deps.Now,
		reader: Reader{MaxDumpEntries: cfg.MaxDumpEntries, OverLimit: cfg.OverLimit},
		window: cfg.ForecastWindow,
		descs:  map[string]*prometheus.Desc{},
	}
	c.reader.Proc.Root = deps.Paths.ProcFS
	return c, nil
}

func (c *Collector) statDesc(col string) *prometheus.Desc {
	if d, ok := c.descs[col]; ok {
		return d
	}
	help, ok := statHelp[col]
	if !ok {
		help = "Conntrack per-CPU statistic " + col + " (summed over CPUs)."
	} else if !strings.Contains(help, "summed") {
		help = strings.TrimSuffix(help, ".") + " (per-CPU, summed)."
	}
	d := prometheus.NewDesc("netsight_conntrack_"+col+"_total", help, nil, nil)
	c.descs[col] = d
	return d
}

// Update reads the table of the namespace the calling thread is in.
func (c *Collector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	count, max, err := c.reader.CountAndMax()
	if err != nil {
		if errors.Is(err, kernel.ErrNoConntrack) {
			return collector.NotSupported("nf_conntrack module", err)
		}
		return fmt.Errorf("conntrack: %w", err)
	}
	c.last = reading{at: c.now(), entries: count, limit: max}
	ch <- prometheus.MustNewConstMetric(entriesDesc, prometheus.GaugeValue, float64(count))
	ch <- prometheus.MustNewConstMetric(limitDesc, prometheus.GaugeValue, float64(max))

	var errs []error
	if st, err := c.reader.Proc.CPUStats(); err != nil {
		errs = append(errs, fmt.Errorf("conntrack stats: %w", err))
	} else {
		totals, order := c.stats.Observe(st)
		for _, col := range order {
			ch <- prometheus.MustNewConstMetric(c.statDesc(col), prometheus.CounterValue, float64(totals[col]))
		}
	}

	if c.noDump {
		return errors.Join(errs...)
	}
	res, err := c.reader.DumpStates(ctx, count)
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			c.noDump = true
			c.logger.Warn("per-state conntrack dump disabled: needs CAP_NET_ADMIN; counts, limit, statistics and forecast continue", "err", err)
			return errors.Join(errs...)
		}
		errs = append(errs, err)
	} else if res.Mode != "disabled" {
		for _, m := range []string{"sampled", "skipped"} {
			v := 0.0
			if res.Mode == m {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(dumpLimitedDesc, prometheus.GaugeValue, v, m)
		}
		ch <- prometheus.MustNewConstMetric(dumpEntriesDesc, prometheus.GaugeValue, float64(res.Seen))
		ch <- prometheus.MustNewConstMetric(dumpDurationDesc, prometheus.GaugeValue, res.Duration.Seconds())
		for _, s := range res.States {
			ch <- prometheus.MustNewConstMetric(byStateDesc, prometheus.GaugeValue, s.Entries, s.Family, s.Protocol, s.State)
		}
	}
	return errors.Join(errs...)
}

// reading is one read of the table's entry count and limit.
type reading struct {
	at             time.Time
	entries, limit uint64
}

// ConntrackReading returns the last successful read (At zero before the
// first) and the forecast window of collectors.conntrack: the monitor's
// exhaustion forecast reads it (monitor.ConntrackReader).
func (c *Collector) ConntrackReading() (at time.Time, entries, limit uint64, window time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last.at, c.last.entries, c.last.limit, c.window
}

var _ collector.Collector = (*Collector)(nil)
