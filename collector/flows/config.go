package flows

import (
	"errors"
	"slices"
	"time"

	"github.com/netsight/netsight/config"
)

// Back ends.
const (
	BackendAuto     = "auto"
	BackendEBPF     = "ebpf"
	BackendSockDiag = "sockdiag"
)

// Config is the collectors.flows section.
type Config struct {
	config.CollectorCommon `yaml:",inline"`
	// Backend is auto (eBPF, else sock_diag), ebpf or sockdiag.
	Backend string `yaml:"backend"`
	// MaxConnections bounds the connection table (and the in-kernel map of
	// the eBPF back end).
	MaxConnections int `yaml:"max_connections"`
	// RingBufferBytes sizes the eBPF ring of closed connections
	// (power of two, at least 4096).
	RingBufferBytes int `yaml:"ring_buffer_bytes"`
	// PollInterval is how often the sock_diag back end dumps sockets.
	PollInterval time.Duration `yaml:"poll_interval"`
	// IdleTimeout forgets an open connection no back end reported for
	// this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// Retention keeps closed connections visible in /api/v1/flows.
	Retention time.Duration `yaml:"retention"`
	// TopK is the number of (local IP, remote IP, server port) groups
	// exported per interval; the rest are summed as "other".
	TopK int `yaml:"top_k"`
	// CgroupPath is the cgroup v2 directory the sock_ops program attaches
	// to; empty finds the v2 root in /proc/self/mountinfo.
	CgroupPath string `yaml:"cgroup_path"`
	// ProcessAttribution lets the sock_diag back end scan /proc/*/fd to
	// find the process of new connections (the eBPF back end always knows).
	ProcessAttribution *bool `yaml:"process_attribution"`
}

// DefaultConfig returns the defaults of collectors.flows.
func DefaultConfig() *Config {
	return &Config{
		CollectorCommon: config.CollectorCommon{Interval: 10 * time.Second},
		Backend:         BackendAuto,
		MaxConnections:  65536,
		RingBufferBytes: 1 << 20,
		PollInterval:    time.Second,
		IdleTimeout:     2 * time.Minute,
		Retention:       30 * time.Second,
		TopK:            10,
	}
}

// Attribution reports whether the sock_diag back end scans /proc.
func (c *Config) Attribution() bool { return c.ProcessAttribution == nil || *c.ProcessAttribution }

// Validate checks the section; errors name the field.
func (c *Config) Validate() error {
	errs := []error{c.ValidateCommon()}
	if !slices.Contains([]string{BackendAuto, BackendEBPF, BackendSockDiag}, c.Backend) {
		errs = append(errs, config.Errorf("backend", "must be auto, ebpf or sockdiag; got %q", c.Backend))
	}
	if c.MaxConnections < 16 || c.MaxConnections > 1<<22 {
		errs = append(errs, config.Errorf("max_connections", "must be between 16 and 4194304, got %d", c.MaxConnections))
	}
	if n := c.RingBufferBytes; n < 4096 || n > 1<<30 || n&(n-1) != 0 {
		errs = append(errs, config.Errorf("ring_buffer_bytes", "must be a power of two between 4096 and 1073741824, got %d", n))
	}
	if c.PollInterval < 10*time.Millisecond {
		errs = append(errs, config.Errorf("poll_interval", "must be at least 10ms, got %s", c.PollInterval))
	} else if c.PollInterval > time.Minute {
		errs = append(errs, config.Errorf("poll_interval", "must be at most 1m, got %s", config.FormatDuration(c.PollInterval)))
	}
	if c.IdleTimeout < time.Second {
		errs = append(errs, config.Errorf("idle_timeout", "must be at least 1s, got %s", c.IdleTimeout))
	} else if c.IdleTimeout > 24*time.Hour {
		errs = append(errs, config.Errorf("idle_timeout", "must be at most 24h, got %s", config.FormatDuration(c.IdleTimeout)))
	}
	if c.Retention < 0 {
		errs = append(errs, config.Errorf("retention", "must not be negative, got %s", c.Retention))
	} else if c.Retention > time.Hour {
		errs = append(errs, config.Errorf("retention", "must be at most 1h, got %s", config.FormatDuration(c.Retention)))
	}
	if c.TopK < 1 || c.TopK > 1000 {
		errs = append(errs, config.Errorf("top_k", "must be between 1 and 1000, got %d", c.TopK))
	}
	return errors.Join(errs...)
}

var _ config.CollectorConfig = (*Config)(nil)
