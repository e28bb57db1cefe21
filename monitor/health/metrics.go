package health

import "github.com/prometheus/client_golang/prometheus"

var (
	verdictDesc = prometheus.NewDesc("netsight_monitor_verdict",
		"The health verdict of each monitor as a state set: 1 for the current verdict, 0 for the others (docs/health.md).",
		[]string{"monitor", "verdict"}, nil)
	indicatorDesc = prometheus.NewDesc("netsight_monitor_health_indicator",
		"1 when the monitor's verdict places the trouble outside this host (path_degraded, remote_degraded, remote_application), else 0: Network Flow Monitor's HealthIndicator.",
		[]string{"monitor"}, nil)
)

// Collector exports the verdicts of a Reporter: at most 9 series per
// monitor for the state set and one for the indicator (65 monitors: 650).
type Collector struct{ r Reporter }

// NewCollector returns the verdict metrics of r.
func NewCollector(r Reporter) *Collector { return &Collector{r: r} }

// Describe sends the two families.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- verdictDesc
	ch <- indicatorDesc
}

// Collect sends the last evaluation's verdicts (nothing before the first).
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if c.r == nil {
		return
	}
	for _, m := range c.r.Report().Monitors {
		for _, v := range Verdicts {
			val := 0.0
			if v == m.Verdict {
				val = 1
			}
			ch <- prometheus.MustNewConstMetric(verdictDesc, prometheus.GaugeValue, val, m.Name, string(v))
		}
		ind := 0.0
		if m.Verdict.Outside() {
			ind = 1
		}
		ch <- prometheus.MustNewConstMetric(indicatorDesc, prometheus.GaugeValue, ind, m.Name)
	}
}

var _ prometheus.Collector = (*Collector)(nil)
