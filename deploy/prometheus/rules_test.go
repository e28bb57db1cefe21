package prometheus

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/netsight/netsight/deploy/internal/agenttest"
)

// TestRules runs `promtool check rules` on every rule file and `promtool
// test rules` on every unit-test file beside them.
func TestRules(t *testing.T) {
	p := agenttest.RequireTool(t, "promtool")
	if p == "" {
		return
	}
	rules, _ := filepath.Glob("*.rules.yml")
	tests, _ := filepath.Glob("*.rules.test.yml")
	if len(rules) == 0 || len(tests) == 0 {
		t.Fatalf("rules %v, tests %v: want both", rules, tests)
	}
	for _, f := range rules {
		t.Run("check/"+f, func(t *testing.T) {
			if out, err := exec.Command(p, "check", "rules", f).CombinedOutput(); err != nil {
				t.Errorf("promtool check rules %s: %v\n%s", f, err, out)
			}
		})
	}
	for _, f := range tests {
		t.Run("test/"+f, func(t *testing.T) {
			if out, err := exec.Command(p, "test", "rules", f).CombinedOutput(); err != nil {
				t.Errorf("promtool test rules %s: %v\n%s", f, err, out)
			}
		})
	}
}
