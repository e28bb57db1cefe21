// Package probe is the `probe` collector: it runs the active-probe engine
// (package github.com/netsight/netsight/probe) over the configured ICMP and
// TCP targets and exports netsight_probe_* metrics: packet counters, probe
// outcomes, an RTT histogram (classic buckets plus a native histogram) and
// the statistics of each target's last complete aggregation period (loss
// ratio, RTT min/avg/max, jitter). Series are bounded by the configured
// targets; see docs/collectors/probe.md.
package probe
