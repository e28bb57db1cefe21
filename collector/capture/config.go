package capture

import (
	"errors"
	"path"
	"time"

	"github.com/netsight/netsight/config"
)

// Config is the `collectors.capture` section.
type Config struct {
	config.CollectorCommon `yaml:",inline"`

	// Interfaces are shell patterns (path.Match) of interface names to
	// capture on. Interfaces appearing later (pods, VMs) are picked up as
	// they come. Default: every interface.
	Interfaces []string `yaml:"interfaces"`
	// Exclude patterns win over Interfaces. Default: none.
	Exclude []string `yaml:"exclude"`
	// Ports restricts the capture to TCP segments with one of these source
	// or destination ports (at most 32). Empty: all TCP.
	Ports []uint16 `yaml:"ports"`
	// SnapLen is the number of bytes kept per packet; headers only.
	SnapLen int `yaml:"snaplen"`
	// RingSizeMB is the AF_PACKET ring size per interface, in MiB.
	RingSizeMB int `yaml:"ring_size_mb"`
	// MaxInterfaces caps the interfaces captured at once; more are skipped
	// and counted.
	MaxInterfaces int `yaml:"max_interfaces"`
	// MaxFlows is the flow table capacity per interface.
	MaxFlows int `yaml:"max_flows"`
	// FlowIdleTimeout evicts idle flows.
	FlowIdleTimeout time.Duration `yaml:"flow_idle_timeout"`
	// TopPeers, when > 0, exports retransmissions per remote IP for the
	// top N peers per interface plus an "other" bucket (opt-in: adds
	// interfaces x (N+1) series).
	TopPeers int `yaml:"top_peers"`
	// NetNS is the path of a network namespace to capture in (e.g.
	// /var/run/netns/blue or /proc/<pid>/ns/net); empty: the agent's own.
	NetNS string `yaml:"netns"`
}

// Defaults.
const (
	defaultSnapLen       = 128
	defaultRingSizeMB    = 4
	defaultMaxInterfaces = 64
	defaultMaxFlows      = 16384
	defaultIdle          = 2 * time.Minute
	maxTopPeers          = 100
	maxPeersTracked      = 4096
)

// DefaultConfig returns the defaults. Capture is opt-in: it costs CPU in
// proportion to the traffic, so enabled is false unless set.
func DefaultConfig() *Config {
	off := false
	return &Config{
		CollectorCommon: config.CollectorCommon{Enabled: &off, Interval: 15 * time.Second},
		Interfaces:      []string{"*"},
		SnapLen:         defaultSnapLen,
		RingSizeMB:      defaultRingSizeMB,
		MaxInterfaces:   defaultMaxInterfaces,
		MaxFlows:        defaultMaxFlows,
		FlowIdleTimeout: defaultIdle,
	}
}

// Validate checks the section; paths are relative to it.
func (c *Config) Validate() error {
	errs := []error{c.ValidateCommon()}
	for i, p := range c.Interfaces {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			errs = append(errs, config.Errorf(config.Index("interfaces", i), "invalid pattern %q", p))
		}
	}
	for i, p := range c.Exclude {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			errs = append(errs, config.Errorf(config.Index("exclude", i), "invalid pattern %q", p))
		}
	}
	if len(c.Ports) > maxFilterPorts {
		errs = append(errs, config.Errorf("ports", "at most %d ports, got %d", maxFilterPorts, len(c.Ports)))
	}
	for i, p := range c.Ports {
		if p == 0 {
			errs = append(errs, config.Errorf(config.Index("ports", i), "port must be 1-65535"))
		}
	}
	if c.SnapLen < 64 || c.SnapLen > 65535 {
		errs = append(errs, config.Errorf("snaplen", "must be between 64 and 65535, got %d", c.SnapLen))
	}
	if c.RingSizeMB < 1 || c.RingSizeMB > 1024 {
		errs = append(errs, config.Errorf("ring_size_mb", "must be between 1 and 1024, got %d", c.RingSizeMB))
	}
	if c.MaxInterfaces < 1 || c.MaxInterfaces > 4096 {
		errs = append(errs, config.Errorf("max_interfaces", "must be between 1 and 4096, got %d", c.MaxInterfaces))
	}
	if c.MaxFlows < 1 || c.MaxFlows > 1<<22 {
		errs = append(errs, config.Errorf("max_flows", "must be between 1 and %d, got %d", 1<<22, c.MaxFlows))
	}
	if c.FlowIdleTimeout < time.Second {
		errs = append(errs, config.Errorf("flow_idle_timeout", "must be at least 1s, got %s", c.FlowIdleTimeout))
	} else if c.FlowIdleTimeout > 24*time.Hour {
		errs = append(errs, config.Errorf("flow_idle_timeout", "must be at most 24h, got %s", config.FormatDuration(c.FlowIdleTimeout)))
	}
	if c.TopPeers < 0 || c.TopPeers > maxTopPeers {
		errs = append(errs, config.Errorf("top_peers", "must be between 0 and %d, got %d", maxTopPeers, c.TopPeers))
	}
	return errors.Join(errs...)
}

// matches reports whether the interface name is selected.
func (c *Config) matches(name string) bool {
	for _, p := range c.Exclude {
		if ok, _ := path.Match(p, name); ok {
			return false
		}
	}
	for _, p := range c.Interfaces {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}
