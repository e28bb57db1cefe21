// Package conntrack exports the netfilter connection-tracking table of the
// network namespace it runs in: entries and limit (procfs), the per-CPU
// statistics summed into monotonic counters, per-protocol per-state entry
// counts from a bounded ctnetlink dump, and a forecast of the time until the
// table is full at the recent growth rate.
//
// Reader holds the logic without Prometheus so `netsight conntrack` can
// share it.
package conntrack
