package sockets

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type adapter struct{ c *Collector }

func (a adapter) Describe(chan<- *prometheus.Desc) {}
func (a adapter) Collect(ch chan<- prometheus.Metric) {
	_ = a.c.Update(context.Background(), ch)
}

// TestMetricsLint lints the exposition of the host's own sockets (sock_diag
// needs no privilege).
func TestMetricsLint(t *testing.T) {
	c := New(&Config{Backend: BackendSockDiag}, nil)
	defer c.Close()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(adapter{c})
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if n := testutil.CollectAndCount(adapter{c}, "netsight_sockets"); n != 26 {
		t.Errorf("netsight_sockets has %d series, want 26", n)
	}
}
