// netsight dashboard panels. This file is the ONLY place to edit to add a
// health card or a chart for a collector (see docs/dashboard.md).
//
// cards[]: one tile each in the health overview.
//   id, title, section (id of the chart section it links to)
//   family:  metric name prefix (or a list: any of them); when no series name
//            starts with it the card says "no data" with `absent` as the
//            reason (collector not running, hardware without the counters).
//   value:   { expr, unit, label?, labelTitle? }  instant PromQL; the first
//            sample is shown; label names one of its labels to show too
//            (e.g. the worst probe target).
//   status:  { expr?, warn, crit, below? }  thresholds on value (or on expr);
//            below: true means low values are bad.
//   details: [{ label, expr, unit }]  small lines under the value.
//
// sections[]: a titled group of charts.
//   id, title, family (as above), absent (text when the family is missing)
//   table:   optional name of a table app.js fills under the charts
//            ("probe-targets": outcomes, failures, loss and RTT per target)
//   panels[]: { title, unit, stack?, max?, series: [{ expr, legend?, dash?, color? }] }
//     expr   PromQL range query; the step follows the chosen time range.
//     legend "{{label}}" templates; default: the labels that differ.
//
// In chart expressions $__rate_interval (as in Grafana) becomes a range that
// always spans at least four samples and one step: use it in rate(),
// increase() and histogram_quantile(rate()) so long ranges stay correct.
//
// Units: percent (0-1 ratio), bytes, bps (bits/s from bytes/s), seconds, ops
// (per second), count, duration (seconds shown as "3h 5m").
window.NETSIGHT_PANELS = {
  cards: [
    {
      id: "collectors", title: "Collectors", section: "agent", special: "collectors",
    },
    {
      id: "conntrack", title: "Conntrack table", section: "conntrack", family: "netsight_conntrack_",
      absent: "conntrack collector not running",
      value: { expr: "max(netsight_conntrack_entries / netsight_conntrack_entries_limit)", unit: "percent" },
      status: { warn: 0.7, crit: 0.9 },
      details: [
        { label: "entries", expr: "sum(netsight_conntrack_entries)", unit: "count" },
        { label: "full in", expr: "min(netsight_conntrack_exhaustion_seconds)", unit: "duration" },
        { label: "drops 5m", expr: "sum(increase(netsight_conntrack_drop_total[5m])) + sum(increase(netsight_conntrack_insert_failed_total[5m]))", unit: "count" },
      ],
    },
    {
      id: "nic", title: "NIC allowances", section: "nic",
      family: ["netsight_nic_bw_in_allowance", "netsight_nic_conntrack_allowance"],
      absent: "no ENA allowance counters on this host",
      value: { expr: 'sum(increase({__name__=~"netsight_nic_.+_allowance_exceeded_total"}[5m]))', unit: "count", suffix: " in 5m" },
      status: { warn: 1, crit: 1000 },
      details: [
        { label: "conntrack allowance used", expr: "max(netsight_nic_conntrack_utilisation_ratio)", unit: "percent" },
        { label: "conntrack allowance left", expr: "min(netsight_nic_conntrack_allowance_available)", unit: "count" },
        { label: "interfaces", expr: "count(netsight_nic_info)", unit: "count" },
      ],
    },
    {
      id: "sockets", title: "Sockets", section: "sockets", family: "netsight_sockets",
      absent: "sockets collector not running",
      value: { expr: "sum(netsight_sockets_tracked_connections)", unit: "count", suffix: " tracked" },
      details: [
        { label: "established", expr: 'sum(netsight_sockets{protocol="tcp",state="established"})', unit: "count" },
        { label: "time-wait", expr: 'sum(netsight_sockets{protocol="tcp",state="time_wait"})', unit: "count" },
        { label: "listening", expr: 'sum(netsight_sockets{protocol="tcp",state="listen"})', unit: "count" },
      ],
    },
    {
      // The worst target by packet loss or by failed probes, whichever is
      // higher: a refused TCP connect is a failed probe even though its
      // packet loss is 0%.
      id: "probes", title: "Probe failures", section: "probes", family: "netsight_probe_period_",
      absent: "no probes configured",
      value: {
        expr: 'topk(1, max by (target) (label_replace(netsight_probe_period_loss_ratio, "k", "loss", "", "") or label_replace(1 - sum by (target) (rate(netsight_probe_results_total{outcome="ok"}[5m])) / sum by (target) (rate(netsight_probe_results_total[5m])), "k", "failed", "", "")))',
        unit: "percent", label: "target", labelTitle: "worst target",
      },
      status: { warn: 0.01, crit: 0.05 },
      details: [
        { label: "failed probes 5m", expr: 'sum(increase(netsight_probe_results_total{outcome!="ok"}[5m]))', unit: "count" },
        { label: "worst avg RTT", expr: "max(netsight_probe_period_rtt_avg_seconds)", unit: "seconds" },
        { label: "worst jitter", expr: "max(netsight_probe_period_jitter_seconds)", unit: "seconds" },
        { label: "targets", expr: "count(netsight_probe_target_info)", unit: "count" },
      ],
    },
    {
      id: "flows", title: "Flow retransmits", section: "flows", family: "netsight_flow_",
      absent: "flows collector not running",
      value: { expr: 'sum(rate(netsight_flow_retransmits_total[5m])) / clamp_min(sum(rate(netsight_flow_data_segments_total{traffic="sent"}[5m])), 1)', unit: "percent" },
      status: { warn: 0.01, crit: 0.05 },
      details: [
        { label: "retransmits", expr: "sum(rate(netsight_flow_retransmits_total[5m]))", unit: "ops" },
        { label: "RTT p50", expr: "histogram_quantile(0.5, sum by (le) (rate(netsight_flow_rtt_seconds_bucket[5m])))", unit: "seconds" },
        { label: "RTT p99", expr: "histogram_quantile(0.99, sum by (le) (rate(netsight_flow_rtt_seconds_bucket[5m])))", unit: "seconds" },
        { label: "failed connects 5m", expr: "sum(increase(netsight_flow_connect_failures_total[5m]))", unit: "count" },
      ],
    },
    {
      id: "store", title: "History", section: "agent", family: "netsight_store_",
      absent: "store disabled",
      value: { expr: "time() - min(netsight_store_oldest_sample_timestamp_seconds > 0)", unit: "duration" },
      details: [
        { label: "on disk", expr: "sum(netsight_store_disk_bytes)", unit: "bytes" },
        { label: "series", expr: "sum(netsight_store_head_series)", unit: "count" },
      ],
    },
  ],

  sections: [
    {
      id: "conntrack", title: "Conntrack", family: "netsight_conntrack_", absent: "The conntrack collector is not running on this host.",
      panels: [
        {
          title: "Table usage and 1 h forecast", unit: "count", series: [
            { expr: "sum(netsight_conntrack_entries)", legend: "entries" },
            { expr: "sum(netsight_conntrack_entries_limit)", legend: "limit", color: "#e5484d", dash: [2, 4] },
            { expr: "clamp_min(sum(predict_linear(netsight_conntrack_entries[30m], 3600)), 0)", legend: "forecast +1h", dash: [6, 4] },
          ],
        },
        { title: "Entries by state", unit: "count", stack: true, series: [{ expr: "topk(8, sum by (protocol, state) (netsight_conntrack_entries_by_state))", legend: "{{protocol}} {{state}}" }] },
        {
          title: "Drops and insert failures", unit: "ops", series: [
            { expr: "sum(rate(netsight_conntrack_drop_total[$__rate_interval]))", legend: "drop" },
            { expr: "sum(rate(netsight_conntrack_early_drop_total[$__rate_interval]))", legend: "early drop" },
            { expr: "sum(rate(netsight_conntrack_insert_failed_total[$__rate_interval]))", legend: "insert failed" },
          ],
        },
      ],
    },
    {
      id: "nic", title: "NIC and cloud allowances",
      family: ["netsight_nic_bw_in_allowance", "netsight_nic_conntrack_allowance"],
      absent: "No ENA allowance statistics on this host: the nic collector reads them with ethtool -S from AWS ENA interfaces (driver 2.8.1 or later).",
      panels: [
        {
          title: "Allowance exceeded (packets shaped or dropped)", unit: "ops", series: [
            { expr: "sum by (device) (rate(netsight_nic_bw_in_allowance_exceeded_total[$__rate_interval]))", legend: "{{device}} bw_in" },
            { expr: "sum by (device) (rate(netsight_nic_bw_out_allowance_exceeded_total[$__rate_interval]))", legend: "{{device}} bw_out" },
            { expr: "sum by (device) (rate(netsight_nic_pps_allowance_exceeded_total[$__rate_interval]))", legend: "{{device}} pps" },
            { expr: "sum by (device) (rate(netsight_nic_conntrack_allowance_exceeded_total[$__rate_interval]))", legend: "{{device}} conntrack" },
            { expr: "sum by (device) (rate(netsight_nic_linklocal_allowance_exceeded_total[$__rate_interval]))", legend: "{{device}} linklocal" },
          ],
        },
        { title: "Conntrack allowance used", unit: "percent", series: [{ expr: "netsight_nic_conntrack_utilisation_ratio", legend: "used" }] },
        { title: "Conntrack allowance available", unit: "count", series: [{ expr: "netsight_nic_conntrack_allowance_available", legend: "{{device}}" }] },
      ],
    },
    {
      id: "sockets", title: "Sockets", family: "netsight_sockets", absent: "The sockets collector is not running on this host.",
      panels: [
        { title: "TCP sockets by state", unit: "count", stack: true, series: [{ expr: 'sum by (state) (netsight_sockets{protocol="tcp"}) > 0', legend: "{{state}}" }] },
        { title: "Tracked connections (EC2 conntrack view)", unit: "count", series: [{ expr: "sum(netsight_sockets_tracked_connections)", legend: "tracked" }] },
        { title: "UDP sockets", unit: "count", series: [{ expr: 'sum by (state) (netsight_sockets{protocol="udp"})', legend: "{{state}}" }] },
      ],
    },
    {
      id: "probes", title: "Probes", family: "netsight_probe_period_", absent: "No probes are configured (collectors.probe.targets).",
      table: "probe-targets", // per target: outcomes, failed share, loss, RTT
      panels: [
        {
          title: "Failed probes by target", unit: "ops", series: [
            { expr: 'sum by (target, outcome) (rate(netsight_probe_results_total{outcome!="ok"}[$__rate_interval])) > 0', legend: "{{target}} {{outcome}}" },
          ],
        },
        { title: "Loss", unit: "percent", series: [{ expr: "netsight_probe_period_loss_ratio", legend: "{{target}} {{protocol}}" }] },
        { title: "Round-trip time (period average)", unit: "seconds", series: [{ expr: "netsight_probe_period_rtt_avg_seconds", legend: "{{target}} {{protocol}}" }] },
        { title: "Jitter", unit: "seconds", series: [{ expr: "netsight_probe_period_jitter_seconds", legend: "{{target}} {{protocol}}" }] },
        {
          title: "Outcomes", unit: "ops", stack: true, series: [
            { expr: 'sum by (outcome) (rate(netsight_probe_results_total[$__rate_interval]))', legend: "{{outcome}}" },
          ],
        },
      ],
    },
    {
      id: "flows", title: "Flows", family: "netsight_flow_", absent: "The flows collector is not running on this host.",
      panels: [
        { title: "Retransmissions", unit: "ops", series: [{ expr: "sum by (direction, phase) (rate(netsight_flow_retransmits_total[$__rate_interval]))", legend: "{{direction}} {{phase}}" }] },
        {
          title: "Round-trip time", unit: "seconds", series: [
            { expr: "histogram_quantile(0.5, sum by (le) (rate(netsight_flow_rtt_seconds_bucket[$__rate_interval])))", legend: "p50" },
            { expr: "histogram_quantile(0.9, sum by (le) (rate(netsight_flow_rtt_seconds_bucket[$__rate_interval])))", legend: "p90" },
            { expr: "histogram_quantile(0.99, sum by (le) (rate(netsight_flow_rtt_seconds_bucket[$__rate_interval])))", legend: "p99" },
          ],
        },
        {
          title: "Connections", unit: "ops", series: [
            { expr: "sum by (direction) (rate(netsight_flow_connections_opened_total[$__rate_interval]))", legend: "opened {{direction}}" },
            { expr: "sum by (direction) (rate(netsight_flow_connect_failures_total[$__rate_interval]))", legend: "failed {{direction}}", color: "#e5484d" },
          ],
        },
        { title: "Throughput", unit: "bps", series: [{ expr: "sum by (traffic) (rate(netsight_flow_bytes_total[$__rate_interval]))", legend: "{{traffic}}" }] },
        { title: "Top retransmitting peers", unit: "count", series: [{ expr: 'topk(5, netsight_flow_top_retransmits{remote_addr!="other"} > 0)', legend: "{{remote_addr}}:{{server_port}}" }] },
      ],
    },
    {
      id: "nftables", title: "nftables conntrack states", family: "netsight_nftables_", absent: "The nftables collector is not running (collectors.nftables.enabled).",
      panels: [
        { title: "Packets by conntrack state", unit: "ops", series: [{ expr: "sum by (state) (rate(netsight_nftables_ct_packets_total[$__rate_interval]))", legend: "{{state}}" }] },
        { title: "Invalid packets by hook", unit: "ops", series: [{ expr: 'sum by (hook, protocol) (rate(netsight_nftables_ct_packets_total{state="invalid"}[$__rate_interval]))', legend: "{{hook}} {{protocol}}" }] },
        { title: "Bytes by conntrack state", unit: "bps", series: [{ expr: "sum by (state) (rate(netsight_nftables_ct_bytes_total[$__rate_interval]))", legend: "{{state}}" }] },
      ],
    },
    {
      id: "capture", title: "Packet capture (TCP analysis)", family: "netsight_capture_", absent: "The capture collector is not running (collectors.capture.enabled).",
      panels: [
        { title: "TCP analysis events", unit: "ops", series: [{ expr: "topk(8, sum by (event) (rate(netsight_capture_tcp_events_total[$__rate_interval])))", legend: "{{event}}" }] },
        {
          title: "RTT seen on the wire", unit: "seconds", series: [
            { expr: "histogram_quantile(0.5, sum by (le) (rate(netsight_capture_tcp_rtt_seconds_bucket[$__rate_interval])))", legend: "p50" },
            { expr: "histogram_quantile(0.99, sum by (le) (rate(netsight_capture_tcp_rtt_seconds_bucket[$__rate_interval])))", legend: "p99" },
          ],
        },
        {
          title: "Capture health", unit: "ops", series: [
            { expr: "sum(rate(netsight_capture_kernel_packets_total[$__rate_interval]))", legend: "packets" },
            { expr: "sum(rate(netsight_capture_kernel_drops_total[$__rate_interval]))", legend: "kernel drops", color: "#e5484d" },
          ],
        },
      ],
    },
    {
      id: "agent", title: "Agent", family: "netsight_",
      panels: [
        { title: "Collector update duration", unit: "seconds", series: [{ expr: "netsight_collector_duration_seconds", legend: "{{collector}}" }] },
        { title: "Collector errors", unit: "ops", series: [{ expr: "sum by (collector) (rate(netsight_collector_errors_total[$__rate_interval]))", legend: "{{collector}}" }] },
        {
          title: "Agent memory", unit: "bytes", series: [
            { expr: "netsight_process_resident_memory_bytes", legend: "resident memory" },
            { expr: "go_memstats_heap_inuse_bytes", legend: "Go heap in use" },
          ],
        },
        { title: "Agent CPU", unit: "percent", series: [{ expr: "rate(netsight_process_cpu_seconds_total[$__rate_interval])", legend: "CPU (1 core = 100%)" }] },
        {
          title: "Store", unit: "count", series: [
            { expr: "sum(netsight_store_head_series)", legend: "series" },
            { expr: "sum(rate(netsight_store_samples_appended_total[$__rate_interval]))", legend: "samples/s" },
            { expr: "sum(increase(netsight_store_ingest_failures_total[$__rate_interval]))", legend: "failed ingest rounds", color: "#e5484d" },
          ],
        },
        { title: "Store on disk", unit: "bytes", series: [{ expr: "sum(netsight_store_disk_bytes)", legend: "disk" }] },
      ],
    },
  ],
};
