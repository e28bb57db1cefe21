// Package store is netsight's embedded history: a Prometheus TSDB
// (github.com/prometheus/prometheus/tsdb) in <data_dir>/tsdb, fed by
// gathering the agent's own registry every store.scrape_interval, and a
// Prometheus-compatible HTTP query API over it (/api/v1/query, query_range,
// series, labels, label/<name>/values, metadata, status/buildinfo) evaluated
// by the upstream PromQL engine.
//
// Each ingest round is one TSDB transaction and therefore one WAL write, so a
// kill -9 loses at most the round in flight; the WAL is replayed on the next
// start. Series that disappear from the registry get a staleness marker, as
// in a Prometheus scrape. Retention is by time and by size (blocks + WAL +
// head chunks). Self-metrics are netsight_store_*.
//
// The query API bounds what a request can cost (limits.go, cost.go): each
// query's cost is estimated from its syntax tree and the series its
// selectors match before it runs; a subquery over store.query.max_subquery_steps
// or one that would hold more than store.query.max_samples is refused; cheap
// queries run in a light lane of their own, the rest in a heavy lane with a
// bounded queue and queue timeout; evaluation is bounded by a timeout and the
// request's context; answers are capped in size and, while being written, in
// total bytes.
//
// The agent builds the store with NewAgentHandle: a Handle that never fails
// the agent (a store that cannot open is reported down, with a hint, and
// retried) and whose Register mounts the query API, buildinfo and
// /api/v1/status/store once, answering "unavailable" while the store is
// down or disabled.
package store
