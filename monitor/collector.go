package monitor

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The read interfaces the sources implement (the agent finds them among
// the running collectors by name).
type (
	// AllowanceReader is the nic collector: the sum of
	// conntrack_allowance_available over its interfaces, ok false when no
	// interface reports it (not ENA >= 2.8.1) or before its first read.
	AllowanceReader interface {
		ConntrackAllowanceAvailable() (available uint64, ok bool)
	}
	// TrackedReader is the sockets collector: the tracked connections of
	// its last count (netsight_sockets_tracked_connections), ok false before.
	TrackedReader interface {
		TrackedConnections() (tracked uint64, ok bool)
	}
	// ConntrackReader is the conntrack collector: its last read of the
	// entry count and limit (at zero before the first) and the forecast
	// window of its config.
	ConntrackReader interface {
		ConntrackReading() (at time.Time, entries, limit uint64, window time.Duration)
	}
)

// Sources returns the running source of a collector type ("nic",
// "sockets", "conntrack"), or nil when it does not run.
type Sources func(name string) any

var (
	capacityDesc = prometheus.NewDesc("netsight_nic_conntrack_capacity",
		"Connections the instance supports: sum of conntrack_allowance_available over interfaces + tracked connections (the EC2 connection-tracking guide's \"total connections supported\").",
		nil, nil)
	utilisationDesc = prometheus.NewDesc("netsight_nic_conntrack_utilisation_ratio",
		"Tracked connections / netsight_nic_conntrack_capacity.", nil, nil)
	trackedDesc = prometheus.NewDesc("netsight_nic_conntrack_tracked_connections",
		"Tracked connections used for the capacity (netsight_sockets_tracked_connections of the same moment).", nil, nil)
	exhaustionDesc = prometheus.NewDesc("netsight_conntrack_exhaustion_seconds",
		"Seconds until the table is full at the growth rate over forecast_window; 0 when full, +Inf when not growing.", nil, nil)
	growthDesc = prometheus.NewDesc("netsight_conntrack_entries_growth_per_second",
		"Growth rate of the entry count over forecast_window (least squares).", nil, nil)
)

// Collector exports the derived views of the running sources. It keeps
// the forecast's samples across reloads (one per conntrack read it sees:
// the forecast samples at the conntrack collector's interval as long as
// /metrics or the store gathers at least that often).
type Collector struct {
	sources Sources

	mu       sync.Mutex
	forecast Forecast
	lastAt   time.Time
}

// NewCollector returns the monitor collector over sources.
func NewCollector(sources Sources) *Collector { return &Collector{sources: sources} }

// Describe sends the families the collector may export.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{capacityDesc, utilisationDesc, trackedDesc, exhaustionDesc, growthDesc} {
		ch <- d
	}
}

// Collect computes the views from the sources' last reads.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if r, ok := c.sources("conntrack").(ConntrackReader); ok {
		c.collectForecast(ch, r)
	}
	nic, ok1 := c.sources("nic").(AllowanceReader)
	sockets, ok2 := c.sources("sockets").(TrackedReader)
	if !ok1 || !ok2 {
		return
	}
	available, ok1 := nic.ConntrackAllowanceAvailable()
	tracked, ok2 := sockets.TrackedConnections()
	if !ok1 || !ok2 {
		return
	}
	capa := NICCapacity(available, tracked)
	ch <- prometheus.MustNewConstMetric(trackedDesc, prometheus.GaugeValue, float64(capa.Tracked))
	ch <- prometheus.MustNewConstMetric(capacityDesc, prometheus.GaugeValue, float64(capa.Supported))
	if capa.Supported > 0 {
		ch <- prometheus.MustNewConstMetric(utilisationDesc, prometheus.GaugeValue, capa.Utilisation)
	}
}

func (c *Collector) collectForecast(ch chan<- prometheus.Metric, r ConntrackReader) {
	at, entries, limit, window := r.ConntrackReading()
	if at.IsZero() {
		return
	}
	c.mu.Lock()
	if window != c.forecast.Window {
		c.forecast = Forecast{Window: window} // a reload changed forecast_window
	}
	if at.After(c.lastAt) {
		c.forecast.Add(at, entries)
		c.lastAt = at
	}
	ex := c.forecast.Exhaustion(entries, limit)
	rate, ok := c.forecast.Rate()
	c.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(exhaustionDesc, prometheus.GaugeValue, ex)
	if ok {
		ch <- prometheus.MustNewConstMetric(growthDesc, prometheus.GaugeValue, rate)
	}
}
