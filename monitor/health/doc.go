// Package health turns the monitors' windows and the host's own counters
// into one verdict per monitor: is it the path, a remote host, the remote
// application, this host (conntrack, network stack, NIC allowance) or the
// local application, with the numbers behind it.
//
// Engine.Evaluate is called every evaluate_every with the monitors'
// []monitor.Window and one Host sample (cumulative counters of the
// monitored network namespace: conntrack statistics, NIC allowance
// counters, /proc/net/netstat, kernel drops by reason, full listeners).
// Each rule (rules.go) reads the window's Stats and the host counters'
// deltas over the window; the first rule that fires in priority order is
// the primary verdict, the others are findings. Hysteresis (state.go)
// enters a degraded verdict after EnterAfter consecutive evaluations and
// leaves it after LeaveAfter healthy ones, judging a held verdict by its
// exit thresholds, which sit below the entry ones. docs/health.md states
// every rule and threshold.
//
// Handler serves GET /api/v1/health, Collector exports
// netsight_monitor_verdict and netsight_monitor_health_indicator; the
// agent mounts and registers them.
package health
