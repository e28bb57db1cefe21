package nic

import (
	"testing"

	"github.com/netsight/netsight/internal/metrictest"
)

func TestMetricsLint(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PerQueue = true
	c := newFixture(t, cfg, map[string][]string{"ens5": {"ena_ens5.txt"}, "veth0": {"veth.txt"}}, map[string]string{"ens5": "ena"})
	metrictest.Lint(t, c)
}
