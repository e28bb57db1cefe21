package probe

import (
	"syscall"
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

// TestCheckWithoutTargets: without targets the collector needs no ICMP
// socket, so `netsight check` does not call it unsupported.
func TestCheckWithoutTargets(t *testing.T) {
	deny := func(int, int, int) (int, error) { return -1, errPerm }
	if err := checkICMP(nil, "auto", deny); err != nil {
		t.Errorf("no targets: %v", err)
	}
	if err := checkICMP(DefaultConfig().engineTargets(), "auto", deny); err != nil {
		t.Errorf("default config: %v", err)
	}
}

var errPerm = syscall.EPERM
