// Package compose tests the docker-compose demo (netsight, Prometheus,
// Grafana): the Prometheus config passes `promtool check config` with the
// shipped rules, and every file the compose file mounts exists.
package compose
