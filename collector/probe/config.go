package probe

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/probe"
)

// Limits of the configuration.
const (
	// MaxTargets bounds the targets of one agent (and so the series count).
	MaxTargets = 20000
	// MinPeriod and MaxPeriod bound the aggregation period. Production
	// periods are 30 s (default) or 60 s; short ones exist for tests.
	MinPeriod = time.Second
	MaxPeriod = time.Hour
	// MaxTimeout bounds one probe's timeout.
	MaxTimeout = time.Minute
	// MaxLabels bounds the user labels of a target.
	MaxLabels = 8
)

// Config is the `collectors.probe` section.
type Config struct {
	config.CollectorCommon `yaml:",inline"`
	// Period is the default aggregation period of the targets.
	Period time.Duration `yaml:"period"`
	// ICMPMode: auto (datagram socket, then raw), datagram or raw.
	ICMPMode string `yaml:"icmp_mode"`
	// ResolveInterval is how often target names are re-resolved.
	ResolveInterval time.Duration `yaml:"resolve_interval"`
	// MaxInFlight bounds concurrent TCP probes.
	MaxInFlight int `yaml:"max_in_flight"`
	// Targets to probe.
	Targets []Target `yaml:"targets"`
}

// Target is one configured destination. Zero values take the defaults.
type Target struct {
	// Name labels the target's series; default: address, or address:port.
	Name string `yaml:"name"`
	// Address is an IP address or a DNS name.
	Address string `yaml:"address"`
	// Protocol is icmp (default) or tcp.
	Protocol string `yaml:"protocol"`
	// Port is the TCP port (tcp only, required).
	Port int `yaml:"port"`
	// Size is the ICMP payload size in bytes, 56..8500 (icmp only).
	Size int `yaml:"size"`
	// DF sets don't-fragment (icmp only).
	DF bool `yaml:"df"`
	// IPv6 resolves a name to its AAAA record.
	IPv6 bool `yaml:"ipv6"`
	// Interval between probes (default 1s).
	Interval time.Duration `yaml:"interval"`
	// Timeout of one probe (default 2s).
	Timeout time.Duration `yaml:"timeout"`
	// Period overrides the section's aggregation period.
	Period time.Duration `yaml:"period"`
	// Labels are added to every series of the target.
	Labels map[string]string `yaml:"labels"`
}

// DefaultConfig returns the section's defaults: enabled when targets are
// configured, 30 s periods, no targets.
func DefaultConfig() *Config {
	return &Config{
		CollectorCommon: config.CollectorCommon{Interval: 5 * time.Second},
		Period:          probe.DefaultPeriod,
		ICMPMode:        string(probe.ICMPAuto),
		ResolveInterval: 5 * time.Minute,
		MaxInFlight:     16384,
	}
}

var (
	labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	hostName  = regexp.MustCompile(`^([a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?\.)*[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?\.?$`)
)

// reservedLabels are the labels the collector sets itself.
var reservedLabels = []string{"target", "protocol", "outcome", "address", "port", "le", "family", "mode", "df", "instance", "job"}

// Validate checks the section; errors name paths such as targets[2].interval.
func (c *Config) Validate() error {
	errs := []error{c.ValidateCommon()}
	if c.Period != 0 {
		errs = append(errs, validatePeriod("period", c.Period))
	}
	switch probe.ICMPMode(c.ICMPMode) {
	case probe.ICMPAuto, probe.ICMPDatagram, probe.ICMPRaw:
	default:
		errs = append(errs, config.Errorf("icmp_mode", "must be auto, datagram or raw; got %q", c.ICMPMode))
	}
	if c.ResolveInterval < 10*time.Second && c.ResolveInterval != 0 {
		errs = append(errs, config.Errorf("resolve_interval", "must be at least 10s, got %s", c.ResolveInterval))
	} else if c.ResolveInterval > 24*time.Hour {
		errs = append(errs, config.Errorf("resolve_interval", "must be at most 24h, got %s", config.FormatDuration(c.ResolveInterval)))
	}
	if c.MaxInFlight < 0 || c.MaxInFlight > 1<<20 {
		errs = append(errs, config.Errorf("max_in_flight", "must be 0 (default) to %d, got %d", 1<<20, c.MaxInFlight))
	}
	if len(c.Targets) > MaxTargets {
		errs = append(errs, config.Errorf("targets", "at most %d targets per agent, got %d", MaxTargets, len(c.Targets)))
	}
	names := map[string]int{}
	for i := range c.Targets {
		t := &c.Targets[i]
		p := config.Index("targets", i)
		errs = append(errs, config.Within(p, t.validate(c.period())))
		name := t.name()
		if j, dup := names[name]; dup {
			errs = append(errs, config.Errorf(p+".name", "duplicate target name %q (also targets[%d]); set distinct names", name, j))
		} else {
			names[name] = i
		}
	}
	return errors.Join(errs...)
}

func (c *Config) period() time.Duration {
	if c.Period == 0 {
		return probe.DefaultPeriod
	}
	return c.Period
}

func validatePeriod(field string, p time.Duration) error {
	switch {
	case p < MinPeriod || p > MaxPeriod:
		return config.Errorf(field, "must be between %s and %s (30s or 60s in production), got %s", MinPeriod, MaxPeriod, p)
	case p%time.Second != 0:
		return config.Errorf(field, "must be a whole number of seconds, got %s", p)
	}
	return nil
}

func (t *Target) validate(defPeriod time.Duration) error {
	var errs []error
	switch {
	case strings.TrimSpace(t.Address) == "":
		errs = append(errs, config.Errorf("address", "must not be empty"))
	default:
		if _, err := netip.ParseAddr(t.Address); err != nil {
			if strings.Contains(t.Address, "://") {
				errs = append(errs, config.Errorf("address", "must be an address or a name, not a URL: %q", t.Address))
			} else if h, port, err := net.SplitHostPort(t.Address); err == nil {
				errs = append(errs, config.Errorf("address", "must be an address or a name without port; use port: %s for %q", port, h))
			} else if !hostName.MatchString(t.Address) {
				errs = append(errs, config.Errorf("address", "%q is neither an IP address nor a DNS name", t.Address))
			}
		}
	}
	proto := t.protocol()
	switch proto {
	case probe.ICMP:
		if t.Port != 0 {
			errs = append(errs, config.Errorf("port", "applies to tcp probes only"))
		}
		if t.Size != 0 && (t.Size < probe.MinSize || t.Size > probe.MaxSize) {
			errs = append(errs, config.Errorf("size", "must be %d to %d bytes of ICMP payload, got %d", probe.MinSize, probe.MaxSize, t.Size))
		}
	case probe.TCP:
		if t.Port < 1 || t.Port > 65535 {
			errs = append(errs, config.Errorf("port", "must be 1 to 65535 for tcp probes, got %d", t.Port))
		}
		if t.Size != 0 {
			errs = append(errs, config.Errorf("size", "applies to icmp probes only"))
		}
		if t.DF {
			errs = append(errs, config.Errorf("df", "applies to icmp probes only"))
		}
	default:
		errs = append(errs, config.Errorf("protocol", "must be icmp or tcp, got %q", t.Protocol))
	}
	iv := t.interval()
	if t.Interval != 0 && (t.Interval < probe.MinInterval || t.Interval > probe.MaxInterval) {
		errs = append(errs, config.Errorf("interval", "must be between %s and %s, got %s", probe.MinInterval, probe.MaxInterval, t.Interval))
	}
	period := defPeriod
	if t.Period != 0 {
		period = t.Period
		errs = append(errs, validatePeriod("period", t.Period))
	}
	if iv > period && t.Interval != 0 {
		errs = append(errs, config.Errorf("interval", "must not exceed the aggregation period (%s), got %s", period, iv))
	}
	if t.Timeout < 0 || t.Timeout > MaxTimeout {
		errs = append(errs, config.Errorf("timeout", "must be between 0 (default %s) and %s, got %s", probe.DefaultTimeout, MaxTimeout, t.Timeout))
	} else if to := t.timeout(); to > period {
		errs = append(errs, config.Errorf("timeout", "must not exceed the aggregation period (%s), got %s", period, to))
	}
	if len(t.Labels) > MaxLabels {
		errs = append(errs, config.Errorf("labels", "at most %d labels, got %d", MaxLabels, len(t.Labels)))
	}
	keys := make([]string, 0, len(t.Labels))
	for k := range t.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case !labelName.MatchString(k) || strings.HasPrefix(k, "__"):
			errs = append(errs, config.Errorf("labels."+k, "invalid label name"))
		case slices.Contains(reservedLabels, k):
			errs = append(errs, config.Errorf("labels."+k, "reserved label name (set by the collector)"))
		case len(t.Labels[k]) > 128:
			errs = append(errs, config.Errorf("labels."+k, "value longer than 128 bytes"))
		}
	}
	return errors.Join(errs...)
}

func (t *Target) protocol() probe.Protocol {
	if t.Protocol == "" {
		return probe.ICMP
	}
	return probe.Protocol(strings.ToLower(t.Protocol))
}

func (t *Target) interval() time.Duration {
	if t.Interval == 0 {
		return probe.DefaultInterval
	}
	return t.Interval
}

func (t *Target) timeout() time.Duration {
	if t.Timeout == 0 {
		return min(probe.DefaultTimeout, t.interval()*10)
	}
	return t.Timeout
}

func (t *Target) name() string {
	switch {
	case t.Name != "":
		return t.Name
	case t.protocol() == probe.TCP:
		return net.JoinHostPort(t.Address, fmt.Sprint(t.Port))
	default:
		return t.Address
	}
}

// engineTargets converts the validated section to engine targets.
func (c *Config) engineTargets() []probe.Target {
	out := make([]probe.Target, len(c.Targets))
	for i := range c.Targets {
		t := &c.Targets[i]
		out[i] = probe.Target{
			Name: t.name(), Host: t.Address, Port: uint16(t.Port), Protocol: t.protocol(),
			Size: t.Size, DF: t.DF, IPv6: t.IPv6, Interval: t.interval(), Timeout: t.timeout(),
		}
	}
	return out
}

func (c *Config) targetPeriod(i int) time.Duration {
	if p := c.Targets[i].Period; p != 0 {
		return p
	}
	return c.period()
}
