// Package prometheus holds netsight's Prometheus alert and recording rules
// (*.rules.yml) and their promtool unit tests (*.rules.test.yml), which
// rules_test.go runs.
package prometheus
