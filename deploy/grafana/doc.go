// Package grafana tests the Grafana dashboards in deploy/grafana/dashboards:
// each decodes strictly with the Grafana Foundation SDK and validates, has
// the ${datasource} and instance variables, every query parses as PromQL and
// names only metrics documented in docs/metrics.md, and (lab test) every
// query returns data from a running agent's /api/v1/query_range.
package grafana
