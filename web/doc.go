// Package web serves netsight's HTTP endpoints: /metrics (Prometheus text or
// OpenMetrics), /healthz, /readyz, the JSON APIs that collectors and the
// store register, and the dashboard. TLS and basic auth come from a
// Prometheus exporter-toolkit web config file.
package web
