// Package top is the live terminal view of `netsight top` (a bubbletea
// model) and its one-shot JSON report: connections ranked by
// retransmissions, RTT, throughput or connect failures, a per-remote
// aggregation, and a host pane (collectors, conntrack, NIC allowances,
// probes).
//
// Data comes from a Source: the command's local collectors or a running
// agent's HTTP API (AgentSource). The package renders and ranks; it never
// collects.
package top
