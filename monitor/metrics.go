package monitor

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	monBytesDesc = prometheus.NewDesc("netsight_monitor_bytes_total",
		"Bytes the monitor's connections sent (acknowledged by the peer) and received (in order).", []string{"monitor", "direction"}, nil)
	monRetransDesc = prometheus.NewDesc("netsight_monitor_retransmits_total",
		"Segments the monitor's connections retransmitted, by phase (handshake: SYN or SYN-ACK; established: the rest).", []string{"monitor", "phase"}, nil)
	monRTODesc = prometheus.NewDesc("netsight_monitor_rtos_total",
		"Retransmission timeouts of the monitor's connections.", []string{"monitor"}, nil)
	monConnDesc = prometheus.NewDesc("netsight_monitor_connections_total",
		"Connects this host made in the monitor, by result (ok, refused, timeout, reset).", []string{"monitor", "result"}, nil)
	monRTTDesc = prometheus.NewDesc("netsight_monitor_rtt_seconds",
		"Smoothed RTT of the monitor's connections: at most one observation per connection per monitors.window.", []string{"monitor"}, nil)
	monHSDesc = prometheus.NewDesc("netsight_monitor_handshake_seconds",
		"Connect latency (SYN to ESTABLISHED) of the monitor's successful connects.", []string{"monitor"}, nil)
	trafficBytesDesc = prometheus.NewDesc("netsight_traffic_bytes_total",
		"Bytes by traffic category (each connection once: see docs/monitors.md).", []string{"category", "direction"}, nil)
	trafficRetransDesc = prometheus.NewDesc("netsight_traffic_retransmits_total",
		"Retransmitted segments by traffic category.", []string{"category"}, nil)
	groupsDesc = prometheus.NewDesc("netsight_monitor_groups",
		"Groups (local address, remote address, server port, direction, process) the monitors engine keeps slots for.", nil, nil)
	evictedDesc = prometheus.NewDesc("netsight_monitor_groups_evicted_total",
		"Groups evicted (least recently updated first) to keep at most 2048.", nil, nil)
)

// Describe sends the engine's families.
func (e *Engine) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{monBytesDesc, monRetransDesc, monRTODesc, monConnDesc, monRTTDesc, monHSDesc,
		trafficBytesDesc, trafficRetransDesc, groupsDesc, evictedDesc} {
		ch <- d
	}
}

// Collect exports every monitor's and category's lifetime counters.
func (e *Engine) Collect(ch chan<- prometheus.Metric) {
	type row struct {
		name string
		c    cumulative
	}
	e.mu.Lock()
	mons := make([]row, len(e.scopes))
	for i, s := range e.scopes {
		mons[i] = row{s.name, s.cum}
	}
	cats := make([]row, len(e.cats))
	for i, s := range e.cats {
		cats[i] = row{s.name, s.cum}
	}
	groups, evicted := len(e.groups), e.evicted
	e.mu.Unlock()

	counter := func(d *prometheus.Desc, v uint64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
	}
	for _, m := range mons {
		c := &m.c
		counter(monBytesDesc, c.sent, m.name, "sent")
		counter(monBytesDesc, c.recv, m.name, "received")
		counter(monRetransDesc, c.retransHS, m.name, "handshake")
		counter(monRetransDesc, c.retransEst, m.name, "established")
		counter(monRTODesc, c.rtos, m.name)
		counter(monConnDesc, c.ok, m.name, "ok")
		counter(monConnDesc, c.refused, m.name, "refused")
		counter(monConnDesc, c.timeout, m.name, "timeout")
		counter(monConnDesc, c.reset, m.name, "reset")
		for _, h := range []struct {
			d *prometheus.Desc
			h *hist
		}{{monRTTDesc, &c.rtt}, {monHSDesc, &c.hs}} {
			fh := h.h.histogram()
			ch <- prometheus.MustNewConstHistogram(h.d, fh.Count, fh.Sum, fh.Cumulative(), m.name)
		}
	}
	for _, c := range cats {
		counter(trafficBytesDesc, c.c.sent, c.name, "sent")
		counter(trafficBytesDesc, c.c.recv, c.name, "received")
		counter(trafficRetransDesc, c.c.retransHS+c.c.retransEst, c.name)
	}
	ch <- prometheus.MustNewConstMetric(groupsDesc, prometheus.GaugeValue, float64(groups))
	counter(evictedDesc, evicted)
}

var _ prometheus.Collector = (*Engine)(nil)
