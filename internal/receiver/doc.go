// Package receiver starts the real back ends the export tests deliver to
// (Debian's victoria-metrics, prometheus, influxd, collectd), each on
// 127.0.0.1 with a temporary directory, stopped by t.Cleanup, and reads back
// what they stored. Test support only.
package receiver
