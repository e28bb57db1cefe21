package probe

import (
	"testing"

	"github.com/netsight/netsight/collector"
)

// TestIdleWithoutTargets: a probe collector without targets is idle (the
// manager's status says so instead of "up"); with a target it is busy.
func TestIdleWithoutTargets(t *testing.T) {
	c, err := New(DefaultConfig(), collector.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	var _ collector.Idler = c
	if why := c.Idle(); why != "no targets configured (collectors.probe.targets)" {
		t.Errorf("Idle() = %q", why)
	}
	cfg := DefaultConfig()
	cfg.Targets = []Target{{Name: "lo", Address: "127.0.0.1", Protocol: "icmp"}}
	c, err = New(cfg, collector.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if why := c.Idle(); why != "" {
		t.Errorf("with a target: Idle() = %q", why)
	}
}
