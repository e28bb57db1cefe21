package probe

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/probe"
)

// Type is the collector's name and config section.
const Type = "probe"

// rttBuckets are the buckets of netsight_probe_rtt_seconds: the RTT
// buckets of the flow metrics, from a veth pair (tens of µs) to
// intercontinental paths.
var rttBuckets = flow.RTTBuckets

func init() {
	collector.Register(collector.NewFactory(Type, DefaultConfig, New,
		func(_ context.Context, cfg *Config, _ collector.Deps) error {
			return checkICMP(cfg.engineTargets(), probe.ICMPMode(cfg.ICMPMode), nil)
		}))
}

// options are the collector's injectable dependencies (tests use them to
// probe from a lab namespace with a hosts-like resolver).
type options struct {
	Socket   probe.SocketFunc
	Resolver probe.Resolver
	// ResolveInterval overrides the config (tests re-resolve fast).
	ResolveInterval time.Duration
}

// Collector probes the configured targets and exports per-target counters,
// an RTT histogram and the statistics of the last complete period.
type Collector struct {
	cfg     *Config
	log     *slog.Logger
	eng     *probe.Engine
	targets []probe.Target
	aggs    []*probe.Aggregator
	stats   []targetStats
	labels  []string   // label names: target, protocol, user label keys
	values  [][]string // label values per target
	hist    *prometheus.HistogramVec
	obs     []prometheus.Observer

	sent, received, results, resolveErrs                  *prometheus.Desc
	pSent, pReceived, pLoss, pMin, pAvg, pMax, pJit, pEnd *prometheus.Desc
	info, skipped, socket                                 *prometheus.Desc
}

type targetStats struct {
	sent, received atomic.Uint64
	outcomes       [5]atomic.Uint64
	resolveErrs    atomic.Uint64
}

// New builds the collector. With no targets it exports nothing.
func New(cfg *Config, deps collector.Deps) (*Collector, error) {
	return newCollector(cfg, deps, options{})
}

func newCollector(cfg *Config, deps collector.Deps, opts options) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	deps = deps.WithDefaults()
	c := &Collector{cfg: cfg, log: deps.Logger, targets: cfg.engineTargets()}
	n := len(c.targets)
	c.aggs = make([]*probe.Aggregator, n)
	c.stats = make([]targetStats, n)

	// Label names: fixed ones, then the union of user label keys, so every
	// series of a family has the same label names (absent ones are "").
	keySet := map[string]bool{}
	for _, t := range cfg.Targets {
		for k := range t.Labels {
			keySet[k] = true
		}
	}
	var userKeys []string
	for k := range keySet {
		userKeys = append(userKeys, k)
	}
	sort.Strings(userKeys)
	c.labels = append([]string{"target", "protocol"}, userKeys...)
	c.values = make([][]string, n)
	started := time.Now()
	for i, t := range c.targets {
		v := []string{t.Name, string(t.Protocol)}
		for _, k := range userKeys {
			v = append(v, cfg.Targets[i].Labels[k])
		}
		c.values[i] = v
		c.aggs[i] = probe.NewAggregator(cfg.targetPeriod(i), t.Timeout+time.Second)
		c.aggs[i].SkipBefore(started)
	}
	c.hist = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:                            "netsight_probe_rtt_seconds",
		Help:                            "Round-trip time of answered probes (ICMP echo, or TCP SYN to SYN-ACK/RST).",
		Buckets:                         rttBuckets,
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: time.Hour,
	}, c.labels)
	c.obs = make([]prometheus.Observer, n)
	for i := range c.targets {
		c.obs[i] = c.hist.WithLabelValues(c.values[i]...)
	}
	d := func(name, help string, extra ...string) *prometheus.Desc {
		return prometheus.NewDesc("netsight_probe_"+name, help, append(append([]string(nil), c.labels...), extra...), nil)
	}
	c.sent = d("packets_sent_total", "Probe packets sent: ICMP echo requests, TCP SYNs including retransmitted ones.")
	c.received = d("packets_received_total", "Probe packets answered: echo replies, SYN-ACKs or RSTs. sent - received were lost.")
	c.results = d("results_total", "Probes by outcome: ok, refused (TCP RST), timeout, unreachable, error (not sent).", "outcome")
	c.resolveErrs = d("resolve_errors_total", "Failed resolutions of the target's name (the last good address stays in use).")
	c.pSent = d("period_packets_sent", "Packets sent during the last complete aggregation period.")
	c.pReceived = d("period_packets_received", "Packets answered during the last complete aggregation period.")
	c.pLoss = d("period_loss_ratio", "Lost fraction of the packets of the last complete period (1 for a dead target).")
	c.pMin = d("period_rtt_min_seconds", "Smallest RTT of the last complete period; absent when nothing answered.")
	c.pAvg = d("period_rtt_avg_seconds", "Mean RTT of the last complete period; absent when nothing answered.")
	c.pMax = d("period_rtt_max_seconds", "Largest RTT of the last complete period; absent when nothing answered.")
	c.pJit = d("period_jitter_seconds", "Mean absolute difference of consecutive RTTs in the last complete period.")
	c.pEnd = d("period_end_timestamp_seconds", "Unix time at which the last complete period ended.")
	c.info = d("target_info", "Configured target: the address currently probed, its port and period.", "address", "port", "period_seconds")
	c.skipped = prometheus.NewDesc("netsight_probe_skipped_total",
		"Probes skipped because the prober fell behind its schedule or hit max_in_flight.", nil, nil)
	c.socket = prometheus.NewDesc("netsight_probe_icmp_socket_info",
		"Open shared ICMP sockets: family, mode (datagram or raw) and DF.", []string{"family", "mode", "df"}, nil)

	if n == 0 { // idle (see Idle): the manager logs it once
		return c, nil
	}
	if err := checkICMP(c.targets, probe.ICMPMode(cfg.ICMPMode), opts.Socket); err != nil {
		return nil, err
	}
	resolveEvery := cfg.ResolveInterval
	if opts.ResolveInterval > 0 {
		resolveEvery = opts.ResolveInterval
	}
	eng, err := probe.New(c.targets, probe.Options{
		Logger: c.log, Socket: opts.Socket, Resolver: opts.Resolver, ResolveInterval: resolveEvery,
		ICMPMode: probe.ICMPMode(cfg.ICMPMode), MaxInFlight: cfg.MaxInFlight,
		OnResult: c.onResult,
		OnResolve: func(i int, _ netip.Addr, err error) {
			if err != nil {
				c.stats[i].resolveErrs.Add(1)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	c.eng = eng
	return c, nil
}

// checkICMP fails with ErrNotSupported when every target is ICMP and no
// ICMP socket can be opened; with TCP targets too it only warns later.
func checkICMP(ts []probe.Target, mode probe.ICMPMode, sock probe.SocketFunc) error {
	if len(ts) == 0 {
		return nil // idle: nothing to probe, no socket needed
	}
	for _, t := range ts {
		if t.Protocol != probe.ICMP {
			return nil
		}
	}
	if sock == nil {
		sock = unix.Socket
	}
	var errs []error
	if mode != probe.ICMPRaw {
		fd, err := sock(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		if err == nil {
			unix.Close(fd)
			return nil
		}
		errs = append(errs, fmt.Errorf("datagram: %w", err))
	}
	if mode != probe.ICMPDatagram {
		fd, err := sock(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		if err == nil {
			unix.Close(fd)
			return nil
		}
		errs = append(errs, fmt.Errorf("raw: %w", err))
	}
	return collector.NotSupported("ICMP sockets (CAP_NET_RAW, or net.ipv4.ping_group_range covering our gid)",
		fmt.Errorf("%v", errs))
}

func (c *Collector) onResult(r probe.Result) {
	s := &c.stats[r.Target]
	s.sent.Add(uint64(r.Sent))
	s.received.Add(uint64(r.Received))
	if int(r.Outcome) < len(s.outcomes) {
		s.outcomes[r.Outcome].Add(1)
	}
	if r.HasRTT {
		c.obs[r.Target].Observe(r.RTT.Seconds())
	}
	c.aggs[r.Target].Add(r)
	if r.Err != nil && r.Outcome == probe.Error {
		c.log.Debug("probe error", "target", c.targets[r.Target].Name, "err", r.Err)
	}
}

// Run probes until ctx ends.
func (c *Collector) Run(ctx context.Context) error {
	if c.eng == nil {
		<-ctx.Done()
		return nil
	}
	return c.eng.Run(ctx)
}

// Update exports the counters, the histogram and the last complete period
// of every target.
func (c *Collector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	now := time.Now()
	for i := range c.targets {
		lv := c.values[i]
		s := &c.stats[i]
		ch <- prometheus.MustNewConstMetric(c.sent, prometheus.CounterValue, float64(s.sent.Load()), lv...)
		ch <- prometheus.MustNewConstMetric(c.received, prometheus.CounterValue, float64(s.received.Load()), lv...)
		for _, o := range probe.Outcomes {
			ch <- prometheus.MustNewConstMetric(c.results, prometheus.CounterValue, float64(s.outcomes[o].Load()), append(lv, o.String())...)
		}
		if c.targets[i].Host != "" && !isLiteral(c.targets[i].Host) {
			ch <- prometheus.MustNewConstMetric(c.resolveErrs, prometheus.CounterValue, float64(s.resolveErrs.Load()), lv...)
		}
		addr := ""
		if c.eng != nil {
			if a := c.eng.Addr(i); a.IsValid() {
				addr = a.String()
			}
		}
		port := ""
		if c.targets[i].Protocol == probe.TCP {
			port = strconv.Itoa(int(c.targets[i].Port))
		}
		ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1,
			append(lv, addr, port, strconv.Itoa(int(c.cfg.targetPeriod(i)/time.Second)))...)

		p, ok := c.aggs[i].Last(now)
		if !ok {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.pSent, prometheus.GaugeValue, float64(p.Sent), lv...)
		ch <- prometheus.MustNewConstMetric(c.pReceived, prometheus.GaugeValue, float64(p.Received), lv...)
		ch <- prometheus.MustNewConstMetric(c.pEnd, prometheus.GaugeValue, float64(p.End.UnixNano())/1e9, lv...)
		if loss, ok := p.Loss(); ok {
			ch <- prometheus.MustNewConstMetric(c.pLoss, prometheus.GaugeValue, loss, lv...)
		}
		if avg, ok := p.RTTAvg(); ok {
			ch <- prometheus.MustNewConstMetric(c.pMin, prometheus.GaugeValue, p.RTTMin.Seconds(), lv...)
			ch <- prometheus.MustNewConstMetric(c.pAvg, prometheus.GaugeValue, avg.Seconds(), lv...)
			ch <- prometheus.MustNewConstMetric(c.pMax, prometheus.GaugeValue, p.RTTMax.Seconds(), lv...)
		}
		if j, ok := p.Jitter(); ok {
			ch <- prometheus.MustNewConstMetric(c.pJit, prometheus.GaugeValue, j.Seconds(), lv...)
		}
	}
	if len(c.targets) > 0 {
		c.hist.Collect(ch)
	}
	if c.eng != nil {
		ch <- prometheus.MustNewConstMetric(c.skipped, prometheus.CounterValue, float64(c.eng.Skipped()))
		for _, s := range c.eng.Sockets() {
			ch <- prometheus.MustNewConstMetric(c.socket, prometheus.GaugeValue, 1, s.Family, string(s.Mode), strconv.FormatBool(s.DF))
		}
	}
	return nil
}

var (
	_ collector.Collector = (*Collector)(nil)
	_ collector.Runner    = (*Collector)(nil)
)
