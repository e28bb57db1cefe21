package netstat

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/internal/kernel"
)

// Name is the collector type and config section.
const Name = "netstat"

// Config is the collectors.netstat section.
type Config struct {
	config.CollectorCommon `yaml:",inline"`
}

// Validate checks the section.
func (c *Config) Validate() error { return c.ValidateCommon() }

// DefaultConfig returns the defaults: on, every 15s.
func DefaultConfig() *Config {
	return &Config{CollectorCommon: config.CollectorCommon{Interval: 15 * time.Second}}
}

func init() { collector.Register(collector.NewFactory(Name, DefaultConfig, New, check)) }

// check reports whether <procfs>/net/netstat and snmp can be read.
func check(_ context.Context, _ *Config, deps collector.Deps) error {
	if _, err := kernel.ReadNetStat(deps.Paths.ProcFS, 0); err != nil {
		return collector.NotSupported("/proc/net/netstat and /proc/net/snmp", err)
	}
	return nil
}

// Counter is one exported counter: its kernel name ("TcpExt.ListenOverflows",
// as kernel.NetStat keys it), the metric name and help.
type Counter struct {
	Key, Metric, Help string
}

// NodeExporterName is node_exporter's name for the same counter (its netstat
// collector exports node_netstat_<Group>_<Name>, several of them by default).
func (c Counter) NodeExporterName() string {
	return "node_netstat_" + strings.Replace(c.Key, ".", "_", 1)
}

// Counters are the exported counters, in order. Counters the running kernel
// does not print are left out (no series).
var Counters = []Counter{
	{"TcpExt.ListenOverflows", "netsight_netstat_tcp_listen_overflows_total", "Connections dropped because a listener's accept queue was full (the application does not accept fast enough)."},
	{"TcpExt.ListenDrops", "netsight_netstat_tcp_listen_drops_total", "Incoming SYNs or handshake completions dropped at a listener for any reason (overflows included)."},
	{"TcpExt.TCPRcvQDrop", "netsight_netstat_tcp_receive_queue_drops_total", "Segments dropped because a socket's receive buffer was full (the application does not read fast enough)."},
	{"TcpExt.TCPBacklogDrop", "netsight_netstat_tcp_backlog_drops_total", "Segments dropped because a socket's backlog was full while the socket was owned by the application."},
	{"TcpExt.TCPZeroWindowDrop", "netsight_netstat_tcp_zero_window_drops_total", "Segments dropped because this host's advertised receive window was zero."},
	{"TcpExt.TCPOFODrop", "netsight_netstat_tcp_out_of_order_drops_total", "Out-of-order segments dropped for lack of receive memory."},
	{"TcpExt.PruneCalled", "netsight_netstat_tcp_prune_called_total", "Times a socket's receive queue was pruned under memory pressure."},
	{"TcpExt.TCPToZeroWindowAdv", "netsight_netstat_tcp_to_zero_window_adverts_total", "Times this host advertised a zero receive window after a non-zero one (a local reader stalls)."},
	{"TcpExt.TCPFromZeroWindowAdv", "netsight_netstat_tcp_from_zero_window_adverts_total", "Times this host reopened a zero receive window."},
	{"TcpExt.TCPWantZeroWindowAdv", "netsight_netstat_tcp_want_zero_window_adverts_total", "Times this host wanted to advertise a zero window (may not have been sent)."},
	{"TcpExt.TCPDSACKRecv", "netsight_netstat_tcp_dsack_received_total", "DSACKs received: the peer got a segment twice (a spurious retransmission or duplication on the path)."},
	{"TcpExt.TCPSpuriousRTOs", "netsight_netstat_tcp_spurious_rtos_total", "Retransmission timeouts detected as spurious by F-RTO."},
	{"TcpExt.TCPTimeouts", "netsight_netstat_tcp_timeouts_total", "Retransmission timeouts (RTO fired, not in fast recovery)."},
	{"TcpExt.TCPSynRetrans", "netsight_netstat_tcp_syn_retransmits_total", "SYN and SYN-ACK retransmissions."},
	{"TcpExt.TCPLostRetransmit", "netsight_netstat_tcp_lost_retransmits_total", "Retransmitted segments that were lost again."},
	{"TcpExt.TCPAbortOnData", "netsight_netstat_tcp_aborts_on_data_total", "Connections reset because data arrived after the application closed."},
	{"TcpExt.TCPAbortOnClose", "netsight_netstat_tcp_aborts_on_close_total", "Connections reset because the application closed with unread data."},
	{"TcpExt.TCPAbortOnMemory", "netsight_netstat_tcp_aborts_on_memory_total", "Connections reset for lack of memory (too many orphans or TCP memory pressure)."},
	{"TcpExt.TCPAbortOnTimeout", "netsight_netstat_tcp_aborts_on_timeout_total", "Connections reset after too many retransmission timeouts (keepalive, SYN or data)."},
	{"TcpExt.TCPMemoryPressures", "netsight_netstat_tcp_memory_pressures_total", "Times TCP entered memory pressure (net.ipv4.tcp_mem)."},
	{"Tcp.ActiveOpens", "netsight_netstat_tcp_active_opens_total", "Connections opened by this host (connect)."},
	{"Tcp.PassiveOpens", "netsight_netstat_tcp_passive_opens_total", "Connections accepted by this host."},
	{"Tcp.AttemptFails", "netsight_netstat_tcp_attempt_fails_total", "Connection attempts that failed (SYN-SENT or SYN-RECV to CLOSED or LISTEN)."},
	{"Tcp.EstabResets", "netsight_netstat_tcp_established_resets_total", "Established connections reset."},
	{"Tcp.InSegs", "netsight_netstat_tcp_in_segments_total", "TCP segments received, errors included."},
	{"Tcp.OutSegs", "netsight_netstat_tcp_out_segments_total", "TCP segments sent, retransmissions excluded."},
	{"Tcp.RetransSegs", "netsight_netstat_tcp_retransmitted_segments_total", "TCP segments retransmitted."},
	{"Tcp.InErrs", "netsight_netstat_tcp_in_errors_total", "TCP segments received in error (bad checksum, bad header)."},
	{"Tcp.OutRsts", "netsight_netstat_tcp_out_resets_total", "TCP segments sent with RST."},
	{"Udp.NoPorts", "netsight_netstat_udp_no_ports_total", "UDP datagrams to a port nothing listens on."},
	{"Udp.InErrors", "netsight_netstat_udp_in_errors_total", "UDP datagrams that could not be delivered (receive buffer full included)."},
	{"Udp.RcvbufErrors", "netsight_netstat_udp_receive_buffer_errors_total", "UDP datagrams dropped because a socket's receive buffer was full."},
	{"Udp.SndbufErrors", "netsight_netstat_udp_send_buffer_errors_total", "UDP datagrams not sent because the send buffer was full."},
}

var (
	descs     = map[string]*prometheus.Desc{}
	errorDesc = prometheus.NewDesc("netsight_netstat_read_errors_total",
		"Reads of /proc/net/netstat or /proc/net/snmp that failed.", nil, nil)
)

func init() {
	for _, c := range Counters {
		descs[c.Key] = prometheus.NewDesc(c.Metric, c.Help+" ("+c.Key+")", nil, nil)
	}
}

// Collector exports the counters of the agent's network namespace.
type Collector struct {
	procfs string
	now    func() time.Time

	mu     sync.Mutex
	last   kernel.NetStat
	lastAt time.Time
	errs   uint64
}

// New builds the collector; it reads <deps.Paths.ProcFS>/net/{netstat,snmp}.
func New(_ *Config, deps collector.Deps) (*Collector, error) {
	deps = deps.WithDefaults()
	return &Collector{procfs: deps.Paths.ProcFS, now: deps.Now}, nil
}

// Update reads the counters and exports those in Counters.
func (c *Collector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	ns, err := kernel.ReadNetStat(c.procfs, 0)
	c.mu.Lock()
	if err != nil {
		c.errs++
	} else {
		c.last, c.lastAt = ns, c.now()
	}
	errs := c.errs
	c.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(errorDesc, prometheus.CounterValue, float64(errs))
	if err != nil {
		return fmt.Errorf("netstat: %w", err)
	}
	for _, k := range Counters {
		if v, ok := ns[k.Key]; ok {
			ch <- prometheus.MustNewConstMetric(descs[k.Key], prometheus.CounterValue, float64(v))
		}
	}
	return nil
}

// HostNetStat returns every counter of the agent's network namespace
// (keyed "TcpExt.ListenOverflows", "Tcp.RetransSegs", ...) from the last
// Update and when it was read; nil and the zero time before the first.
// The map is shared: callers must not modify it.
func (c *Collector) HostNetStat() (map[string]uint64, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last, c.lastAt
}

// NetStat reads, now, every counter of the network namespace process pid
// lives in (pid 0: the agent's own), keyed as HostNetStat. It enters no
// namespace: it reads <procfs>/<pid>/net/{netstat,snmp}.
func (c *Collector) NetStat(pid int) (map[string]uint64, error) {
	return kernel.ReadNetStat(c.procfs, pid)
}

var _ collector.Collector = (*Collector)(nil)
