package nic

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

func TestMetricsLint(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PerQueue = true
	c := newFixture(t, cfg, map[string][]string{"ens5": {"ena_ens5.txt"}, "veth0": {"veth.txt"}}, map[string]string{"ens5": "ena"})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(adapter{c})
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}
