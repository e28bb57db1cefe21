// Package metrictest holds the test helpers that collector packages share to
// look at what a collector.Collector exports: Gather runs one Update and
// returns "name{labels}" -> value, Key turns one metric into that pair,
// AsPrometheus adapts a collector to a prometheus.Collector (unchecked, like
// the agent registers it), and Lint runs promlint on a pedantic registry.
//
// It is imported only from _test.go files.
package metrictest
