package conntrack

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/netsight/netsight/internal/testlab"
)

// adapter exposes a netsight collector to a prometheus registry.
type adapter struct {
	u interface {
		Update(context.Context, chan<- prometheus.Metric) error
	}
}

func (a adapter) Describe(chan<- *prometheus.Desc) {}
func (a adapter) Collect(ch chan<- prometheus.Metric) {
	_ = a.u.Update(context.Background(), ch)
}

// TestMetricsLint runs promlint and `promtool check metrics` on the
// fixture's exposition.
func TestMetricsLint(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxDumpEntries = 0
	c := New(cfg, nil)
	c.SetProcRoot("testdata/proc")
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(adapter{c})
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&sb, mf); err != nil {
			t.Fatal(err)
		}
	}
	p := testlab.RequireBinary(t, "promtool")
	if p == "" {
		return
	}
	cmd := exec.Command(p, "check", "metrics")
	cmd.Stdin = strings.NewReader(sb.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestAlertRules runs the promtool unit tests of deploy/prometheus/host.rules.yml.
func TestAlertRules(t *testing.T) {
	p := testlab.RequireBinary(t, "promtool")
	if p == "" {
		return
	}
	out, err := exec.Command(p, "test", "rules", "../../deploy/prometheus/host.rules.test.yml").CombinedOutput()
	if err != nil {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
}
