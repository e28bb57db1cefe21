package conntrack

import (
	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/internal/kernel"
	"os/exec"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"

	"github.com/netsight/netsight/internal/metrictest"
	"github.com/netsight/netsight/internal/testlab"
)

// TestMetricsLint runs promlint and `promtool check metrics` on the
// fixture's exposition.
func TestMetricsLint(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxDumpEntries = 0
	c, err := New(cfg, collector.Deps{Paths: kernel.Paths{ProcFS: "testdata/proc"}})
	if err != nil {
		t.Fatal(err)
	}
	mfs := metrictest.Lint(t, c)
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
