package flows

import (
	"net/netip"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netsight/netsight/flow"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("netsight_flow_"+name, help, labels, nil)
}

var (
	openedDesc   = desc("connections_opened_total", "TCP connections that reached ESTABLISHED.", "direction")
	closedDesc   = desc("connections_closed_total", "Established TCP connections that closed.", "direction")
	failDesc     = desc("connect_failures_total", "Connection attempts that never reached ESTABLISHED (refused, timed out, reset).", "direction")
	retransDesc  = desc("retransmits_total", "Retransmitted TCP segments, by handshake or established phase.", "direction", "phase")
	rtoDesc      = desc("rtos_total", "TCP retransmission timeouts.", "direction")
	bytesDesc    = desc("bytes_total", "TCP bytes: sent counts bytes acknowledged by the peer, received counts bytes received in order (each includes one for SYN/FIN as the kernel counts them).", "direction", "traffic")
	segsDesc     = desc("data_segments_total", "TCP segments carrying data.", "direction", "traffic")
	rstDesc      = desc("resets_total", "TCP RSTs sent and received on tracked connections (eBPF back end only).", "direction", "traffic")
	rttDesc      = desc("rtt_seconds", "Smoothed RTT of connections: one observation per connection per interval in which it was active.", "direction")
	connLatDesc  = desc("connect_duration_seconds", "Time from connect() to ESTABLISHED (eBPF back end only).")
	entriesDesc  = desc("table_entries", "Connections held in the flow table (open, and closed within the retention).")
	maxDesc      = desc("table_max_entries", "Capacity of the flow table.")
	evictDesc    = desc("table_evictions_total", "Connections dropped from the flow table: full (least recently updated evicted) or idle (no report within idle_timeout).", "reason")
	topRetrDesc  = desc("top_retransmits", "Retransmits in the last interval of the top-K (local, remote, server port) groups by loss/latency score; other sums the rest.", "direction", "local_addr", "remote_addr", "server_port")
	topRTTDesc   = desc("top_srtt_seconds", "Largest smoothed RTT in the last interval of the top-K groups.", "direction", "local_addr", "remote_addr", "server_port")
	topBytesDesc = desc("top_bytes", "Bytes (sent plus received) in the last interval of the top-K groups.", "direction", "local_addr", "remote_addr", "server_port")
	topConnsDesc = desc("top_connections", "Connections active in the last interval of the top-K groups.", "direction", "local_addr", "remote_addr", "server_port")
	backendDesc  = desc("backend_info", "The flow back end in use (1).", "backend")

	progsDesc     = desc("ebpf_programs_attached", "eBPF programs attached by the flows collector.")
	ringLostDesc  = desc("ebpf_ringbuf_lost_total", "Closed connections lost: overwritten in the eBPF ring of closed connections before user space read them.")
	mapFullDesc   = desc("ebpf_map_full_total", "Connections (conns) or listeners not tracked because the eBPF map was full.", "map")
	eventsDesc    = desc("ebpf_ringbuf_events_total", "Closed-connection records read from the eBPF programs (hot window and ring of closed connections).")
	seededDesc    = desc("ebpf_seeded_total", "Connections opened before the eBPF programs were attached, tracked from a socket iterator pass.")
	hotFullDesc   = desc("ebpf_hot_window_full_total", "New connections tracked in the eBPF conns hash map because their bucket of the hot window was full (long-lived connections there, or user space behind).")
	untrackedDesc = desc("ebpf_untracked_closes_total", "Closes of sockets the eBPF programs did not track (opened before the agent attached).")

	sdPollErrDesc = desc("sockdiag_poll_errors_total", "sock_diag dumps that failed.")
	sdLostDesc    = desc("sockdiag_destroy_lost_total", "Overruns of the sock_diag destroy notification socket (closes then come from the last poll).")
	sdClosedDesc  = desc("sockdiag_closes_total", "Closed connections seen by the sock_diag back end, by how.", "source")
	sdSkippedDesc = desc("sockdiag_untracked_total", "Sockets not tracked by the sock_diag back end because max_connections were tracked.")
)

var dirs = []flow.Direction{flow.DirClient, flow.DirServer}

func (c *Collector) emit(ch chan<- prometheus.Metric, t flow.Totals, iv flow.Interval) {
	counter := func(d *prometheus.Desc, v uint64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
	}
	for _, d := range dirs {
		ds := d.String()
		counter(openedDesc, t.Opened[d], ds)
		counter(closedDesc, t.Closed[d], ds)
		counter(failDesc, t.ConnectFailures[d], ds)
		syn := min(t.SynRetransmits[d], t.Retransmits[d])
		counter(retransDesc, syn, ds, "handshake")
		counter(retransDesc, t.Retransmits[d]-syn, ds, "established")
		counter(rtoDesc, t.RTOs[d], ds)
		counter(bytesDesc, t.BytesSent[d], ds, "sent")
		counter(bytesDesc, t.BytesReceived[d], ds, "received")
		counter(segsDesc, t.SegsOut[d], ds, "sent")
		counter(segsDesc, t.SegsIn[d], ds, "received")
		counter(rstDesc, t.RSTSent[d], ds, "sent")
		counter(rstDesc, t.RSTReceived[d], ds, "received")
		h := t.RTT[d]
		ch <- prometheus.MustNewConstHistogram(rttDesc, h.Count, h.Sum, h.Cumulative(), ds)
	}
	h := t.ConnectLatency
	ch <- prometheus.MustNewConstHistogram(connLatDesc, h.Count, h.Sum, h.Cumulative())
	ch <- prometheus.MustNewConstMetric(entriesDesc, prometheus.GaugeValue, float64(t.Entries))
	ch <- prometheus.MustNewConstMetric(maxDesc, prometheus.GaugeValue, float64(c.table.Config().MaxEntries))
	counter(evictDesc, t.Evicted, "full")
	counter(evictDesc, t.IdleExpired, "idle")

	top := func(g *flow.Group, lv []string) {
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
		}
		gauge(topRetrDesc, float64(g.Retransmits))
		gauge(topRTTDesc, g.MaxSRTT.Seconds())
		gauge(topBytesDesc, float64(g.BytesSent+g.BytesReceived))
		gauge(topConnsDesc, float64(g.Connections))
	}
	for i := range iv.Top {
		g := &iv.Top[i]
		top(g, []string{g.Key.Direction.String(), addrLabel(g.Key.Local), addrLabel(g.Key.Remote), strconv.Itoa(int(g.Key.ServerPort))})
	}
	top(&iv.Other, []string{"other", "other", "other", "other"})
}

func addrLabel(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
