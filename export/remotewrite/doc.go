// Package remotewrite is the remote_write output: Prometheus remote write
// 1.0 (snappy-compressed prompb.WriteRequest) or, with version: 2, remote
// write 2.0 (io.prometheus.write.v2.Request with a symbol table), fed by the
// delivery core so no sample is lost across receiver outages and agent
// restarts. Receivers: Prometheus (--web.enable-remote-write-receiver),
// VictoriaMetrics, Mimir, Thanos receive, vmagent.
package remotewrite
