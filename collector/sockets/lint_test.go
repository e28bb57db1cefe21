package sockets

import (
	"github.com/netsight/netsight/collector"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netsight/netsight/internal/metrictest"
)

// TestMetricsLint lints the exposition of the host's own sockets (sock_diag
// needs no privilege).
func TestMetricsLint(t *testing.T) {
	c, _ := New(&Config{Backend: BackendSockDiag}, collector.Deps{})
	defer c.Close()
	metrictest.Lint(t, c)
	if n := testutil.CollectAndCount(metrictest.AsPrometheus(c), "netsight_sockets"); n != 26 {
		t.Errorf("netsight_sockets has %d series, want 26", n)
	}
}
