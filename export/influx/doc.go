// Package influx is the influxdb output: InfluxDB line protocol, v1
// (/write?db=&rp=&precision=ms) or v2 (/api/v2/write?org=&bucket=, with
// Authorization: Token), encoded with github.com/influxdata/line-protocol/v2
// and fed by the delivery core.
//
// Mapping: the metric name is the measurement, every other label a tag
// (escaped by the encoder: spaces, commas and = round-trip), and the sample
// one float field named "value", whose type therefore never changes. NaN
// and ±Inf cannot be written in line protocol: they are dropped and counted
// (reason "unsupported"), as are staleness markers (not sent at all).
package influx
