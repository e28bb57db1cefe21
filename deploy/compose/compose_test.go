package compose

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/netsight/netsight/deploy/internal/agenttest"
)

// TestPrometheusConfig lays the config out as the compose file mounts it
// (rules/ = deploy/prometheus) and runs promtool check config on it.
func TestPrometheusConfig(t *testing.T) {
	promtool := agenttest.RequireTool(t, "promtool")
	dir := t.TempDir()
	raw, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	rules, _ := filepath.Glob("../prometheus/*.rules.yml")
	if len(rules) == 0 {
		t.Fatal("no rules in deploy/prometheus")
	}
	if err := os.Mkdir(filepath.Join(dir, "rules"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		b, err := os.ReadFile(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "rules", filepath.Base(r)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(promtool, "check", "config", filepath.Join(dir, "prometheus.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	for _, r := range rules {
		if !strings.Contains(string(out), filepath.Base(r)) {
			t.Errorf("promtool did not load %s:\n%s", filepath.Base(r), out)
		}
	}
}

// TestComposeMounts: every relative bind mount and build context of the
// compose file exists in the repository, and the agent runs with exactly
// the chart's capabilities.
func TestComposeMounts(t *testing.T) {
	raw, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Build *struct {
				Context    string `json:"context"`
				Dockerfile string `json:"dockerfile"`
			} `json:"build"`
			Volumes []string `json:"volumes"`
			CapDrop []string `json:"cap_drop"`
			CapAdd  []string `json:"cap_add"`
		} `json:"services"`
	}
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(src); err != nil {
					t.Errorf("service %s mounts %s: %v", name, src, err)
				}
			}
		}
		if s.Build != nil {
			if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("service %s: dockerfile: %v", name, err)
			}
		}
	}
	ns := c.Services["netsight"]
	if strings.Join(ns.CapDrop, ",") != "ALL" || strings.Join(ns.CapAdd, ",") != "NET_ADMIN,NET_RAW,BPF,PERFMON" {
		t.Errorf("netsight capabilities drop %v add %v", ns.CapDrop, ns.CapAdd)
	}
}
