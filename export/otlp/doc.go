// Package otlp is the otlp output: OpenTelemetry metrics over HTTP
// (protobuf, POST /v1/metrics) or gRPC (MetricsService/Export), built from
// the delivery core's batches (the SDK exporters drop data after their
// retry budget; the core does not).
//
// Mapping, by metric name since the store keeps no types: classic
// histograms (name_bucket{le}, name_sum, name_count of one label set at one
// timestamp) become OTLP Histograms with explicit bounds; *_total, *_count
// and *_sum outside a histogram become monotonic cumulative Sums; everything
// else a Gauge. Resource attributes: service.name=netsight,
// service.instance.id and host.name (the hostname).
package otlp
