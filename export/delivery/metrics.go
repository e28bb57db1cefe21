package delivery

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a sample is dropped (label "reason" of netsight_export_samples_dropped_total).
const (
	reasonTooOld      = "too_old"     // older than max_age
	reasonRejected    = "rejected"    // the receiver answered 4xx (not 413/429)
	reasonTooLarge    = "too_large"   // 413 for a single sample
	reasonUnsupported = "unsupported" // sample type the output cannot carry
)

// metrics are one output's self-metrics; every family carries the constant
// label output="<name>". Worst case per output: 14 series.
type metrics struct {
	d            *Delivery
	sent         prometheus.Counter
	failed       prometheus.Counter
	dropped      *prometheus.CounterVec
	batches      *prometheus.CounterVec
	lastSuccess  prometheus.Gauge
	pending      prometheus.Gauge
	up           prometheus.Gauge
	sendDuration prometheus.Histogram
	lag          *prometheus.Desc
	acked        *prometheus.Desc
}

func newMetrics(d *Delivery) *metrics {
	cl := prometheus.Labels{"output": d.o.Name}
	m := &metrics{
		d: d,
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "netsight_export_samples_sent_total",
			Help: "Samples the receiver acknowledged.", ConstLabels: cl}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "netsight_export_samples_failed_total",
			Help: "Samples in send attempts that failed and are retried (one sample counts once per failed attempt).", ConstLabels: cl}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netsight_export_samples_dropped_total",
			Help: "Samples given up: too_old (older than max_age), rejected (4xx), too_large (413 for one sample), unsupported.", ConstLabels: cl},
			[]string{"reason"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netsight_export_batches_total",
			Help: "Send attempts by result: sent, retried, dropped, split (413).", ConstLabels: cl}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "netsight_export_last_success_timestamp_seconds",
			Help: "When the receiver last acknowledged a batch.", ConstLabels: cl}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "netsight_export_pending_samples",
			Help: "Samples in the store not yet delivered (exact for the window in flight, estimated from the series count beyond it).", ConstLabels: cl}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: "netsight_export_up",
			Help: "1 when the output's last attempt reached its receiver, 0 while it fails (the log says why).", ConstLabels: cl}),
		sendDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "netsight_export_send_duration_seconds",
			Help: "Duration of one send attempt.", ConstLabels: cl, Buckets: []float64{.005, .025, .1, .5, 2, 10}}),
		lag: prometheus.NewDesc("netsight_export_lag_seconds",
			"Now minus the timestamp up to which every sample is delivered (or dropped).", nil, cl),
		acked: prometheus.NewDesc("netsight_export_acked_timestamp_seconds",
			"The persisted cursor: every sample up to this timestamp is delivered or dropped.", nil, cl),
	}
	m.up.Set(1)
	for _, r := range []string{reasonTooOld, reasonRejected, reasonTooLarge, reasonUnsupported} {
		m.dropped.WithLabelValues(r)
	}
	for _, r := range []string{"sent", "retried", "dropped", "split"} {
		m.batches.WithLabelValues(r)
	}
	return m
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(m, ch) }

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.sent.Collect(ch)
	m.failed.Collect(ch)
	m.dropped.Collect(ch)
	m.batches.Collect(ch)
	m.lastSuccess.Collect(ch)
	m.pending.Collect(ch)
	m.up.Collect(ch)
	m.sendDuration.Collect(ch)
	acked := m.d.Acked()
	now := m.d.o.Now()
	ch <- prometheus.MustNewConstMetric(m.lag, prometheus.GaugeValue, now.Sub(time.UnixMilli(acked)).Seconds())
	ch <- prometheus.MustNewConstMetric(m.acked, prometheus.GaugeValue, float64(acked)/1000)
}
