package store

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's self-metrics. They are registered in the agent's
// registry, so they are stored too. Worst case: 22 series (the query
// metrics have a lane or reason label with fixed values).
type metrics struct {
	s *Store

	samples        prometheus.Counter
	rejected       prometheus.Counter
	gatherErrors   prometheus.Counter
	ingestFailures prometheus.Counter
	lastIngest     prometheus.Gauge
	ingestDuration prometheus.Gauge
	queryRunning   *prometheus.GaugeVec
	queryRejected  *prometheus.CounterVec

	written writtenTracker

	headSeries, blocks, diskBytes, bytesWritten, oldest *prometheus.Desc
	retention, retentionBytes, interval                 *prometheus.Desc
}

func newMetrics(s *Store) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "netsight_store_" + name, Help: help})
	}
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: "netsight_store_" + name, Help: help})
	}
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("netsight_store_"+name, help, nil, nil)
	}
	m := &metrics{
		s: s,
		queryRunning: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "netsight_store_queries_running",
			Help: "PromQL queries being evaluated, by lane (light: estimated cheap, heavy: the rest)."}, []string{"lane"}),
		queryRejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netsight_store_queries_rejected_total",
			Help: "Queries refused by a limit, by reason: max_subquery_steps, max_samples, queue_full, queue_timeout, max_response_bytes, response_budget."}, []string{"reason"}),
		samples:        c("samples_appended_total", "Samples written to the embedded store (staleness markers included)."),
		rejected:       c("samples_rejected_total", "Samples the store refused: out of order, duplicate timestamp or too old."),
		gatherErrors:   c("gather_errors_total", "Gathers of the agent's registry that returned an error (the partial result is still stored)."),
		ingestFailures: c("ingest_failures_total", "Ingest rounds that failed to append or commit (nothing of that round is stored)."),
		lastIngest:     g("last_ingest_timestamp_seconds", "Time of the last successful ingest round."),
		ingestDuration: g("ingest_duration_seconds", "Duration of the last ingest round (gather, append and WAL write)."),
		headSeries:     d("head_series", "Series in the in-memory head block (the last ~2-3 hours)."),
		blocks:         d("blocks", "Persisted blocks on disk."),
		diskBytes:      d("disk_bytes", "Bytes the store uses on disk: blocks, WAL and head chunks."),
		bytesWritten: prometheus.NewDesc("netsight_store_bytes_written_total",
			"Bytes the store wrote to disk since start (WAL segments and checkpoints, head chunks, compacted blocks), measured from file growth in its directory.", nil, nil),
		oldest:         d("oldest_sample_timestamp_seconds", "Timestamp of the oldest sample kept (0 when empty): how far back history goes."),
		retention:      d("retention_seconds", "Configured time-based retention."),
		retentionBytes: d("retention_bytes", "Configured size-based retention (0: no size limit)."),
		interval:       d("scrape_interval_seconds", "Interval between two ingest rounds."),
	}
	m.written.start(s.opts.Dir)
	for _, l := range []string{"light", "heavy"} {
		m.queryRunning.WithLabelValues(l)
	}
	for _, r := range []string{"max_subquery_steps", "max_samples", "queue_full", "queue_timeout", "max_response_bytes", "response_budget"} {
		m.queryRejected.WithLabelValues(r)
	}
	return m
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range []prometheus.Collector{m.samples, m.rejected, m.gatherErrors, m.ingestFailures, m.lastIngest, m.ingestDuration, m.queryRunning, m.queryRejected} {
		c.Describe(ch)
	}
	for _, d := range []*prometheus.Desc{m.headSeries, m.blocks, m.diskBytes, m.bytesWritten, m.oldest, m.retention, m.retentionBytes, m.interval} {
		ch <- d
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range []prometheus.Collector{m.samples, m.rejected, m.gatherErrors, m.ingestFailures, m.lastIngest, m.ingestDuration, m.queryRunning, m.queryRejected} {
		c.Collect(ch)
	}
	s := m.s
	head := s.db.Head()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	gauge(m.headSeries, float64(head.NumSeries()))
	gauge(m.blocks, float64(len(s.db.Blocks())))
	used, written := m.written.walk(s.opts.Dir)
	gauge(m.diskBytes, float64(used))
	ch <- prometheus.MustNewConstMetric(m.bytesWritten, prometheus.CounterValue, float64(written))
	oldest := 0.0
	if mint := s.MinTime(); mint != math.MaxInt64 {
		oldest = float64(mint) / 1000
	}
	gauge(m.oldest, oldest)
	gauge(m.retention, s.opts.Retention.Seconds())
	gauge(m.retentionBytes, float64(s.opts.RetentionBytes))
	gauge(m.interval, s.opts.Interval.Seconds())
}
