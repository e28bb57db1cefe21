// Package collector is the seam between sources and outputs.
//
// A collector package registers one Factory from init. The Manager builds the
// enabled collectors from config, runs each on its own interval with a
// timeout taken from ctx, keeps the metrics of its last update as a snapshot,
// and exposes the snapshots plus self-metrics (netsight_collector_up,
// netsight_collector_duration_seconds, netsight_collector_errors_total) as
// one prometheus.Collector. Scrapes never trigger kernel work: they read the
// snapshots, so a scrape storm cannot poll a driver faster than configured.
//
// A collector that needs a kernel feature or capability the host lacks
// returns an error wrapping ErrNotSupported (see NotSupported): the manager
// logs it once, exports netsight_collector_up 0 and keeps the agent running.
package collector
