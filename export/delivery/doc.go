// Package delivery is the durable core shared by netsight's push outputs
// (remote_write, influxdb, collectd, otlp).
//
// Per destination it persists "acknowledged up to T" in a small file under
// the data directory (written to a temporary file, fsync'd, renamed, and the
// directory fsync'd). Every interval it reads the samples in (T, now-lag]
// from the embedded store's querier, cuts them into time-ordered batches,
// hands each batch to the output's Sender, and advances T only once a batch
// is delivered (or deliberately dropped). Delivery is therefore
// at-least-once across receiver outages and agent restarts, for as long as
// the store's retention holds the data; the batch in flight when the agent
// dies may be sent twice.
//
// A Sender's error says what to do with the batch (see Classify for the
// HTTP status rules): retry with capped exponential backoff and jitter,
// wait for Retry-After, split it (413), or drop it and count it (other
// 4xx). Samples older than max_age are dropped and counted instead of sent,
// which ends a retry loop against a receiver that refuses old samples.
package delivery
