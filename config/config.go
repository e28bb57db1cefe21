package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// DefaultPort is netsight's default HTTP port. The Prometheus "default port
// allocations" list has handed out every port from 9100 to 9999 and continues
// sequentially from 10000; 19977 is clear of that list and of Linux's
// ephemeral range (32768-60999), so it collides with no other exporter.
const DefaultPort = 19977

// DefaultListen is the default listen address: loopback only.
var DefaultListen = fmt.Sprintf("127.0.0.1:%d", DefaultPort)

// DefaultDataDir is the default data_dir (an unprivileged agent that cannot
// write it uses a per-user state directory instead).
const DefaultDataDir = "/var/lib/netsight"

// Config is the root configuration.
type Config struct {
	Server     Server     `yaml:"server"`
	Log        Log        `yaml:"log"`
	DataDir    string     `yaml:"data_dir"`
	Paths      Paths      `yaml:"paths"`
	Store      Store      `yaml:"store"`
	Limits     Limits     `yaml:"limits"`
	Collectors Collectors `yaml:"collectors"`
	Outputs    Outputs    `yaml:"outputs"`
	Topology   Topology   `yaml:"topology"`
	Monitors   Monitors   `yaml:"monitors"`
}

// Server configures the HTTP endpoint (/metrics, API, dashboard).
type Server struct {
	// Listen is host:port. Default 127.0.0.1:19977.
	Listen string `yaml:"listen"`
	// WebConfigFile is a Prometheus exporter-toolkit web config (TLS, basic auth).
	WebConfigFile string `yaml:"web_config_file"`
	// ReadTimeout bounds reading a request.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds handling a request and writing its answer.
	WriteTimeout time.Duration `yaml:"write_timeout"`
}

// Log configures the slog handler.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text, json
}

// Store configures the embedded time-series store.
type Store struct {
	Enabled        *bool         `yaml:"enabled"`
	ScrapeInterval time.Duration `yaml:"scrape_interval"`
	Retention      time.Duration `yaml:"retention"`
	RetentionSize  int64         `yaml:"retention_bytes"`
	Query          StoreQuery    `yaml:"query"`
}

// Defaults returns the configuration used when no file is given.
func Defaults() *Config {
	return &Config{
		Server:  Server{Listen: DefaultListen, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second},
		Log:     Log{Level: "info", Format: "text"},
		DataDir: DefaultDataDir,
		Paths:   DefaultPaths(),
		Store: Store{
			ScrapeInterval: 5 * time.Second,
			Retention:      15 * 24 * time.Hour,
			RetentionSize:  1 << 30,
			Query:          DefaultStoreQuery(),
		},
		Collectors: defaultCollectors(),
		Topology:   DefaultTopology(),
		Monitors:   DefaultMonitors(),
	}
}

// Validate checks the whole configuration; errors name the field path.
func (c *Config) Validate() error {
	return errors.Join(
		Within("server", c.Server.Validate()),
		Within("log", c.Log.Validate()),
		Within("store", c.Store.Validate()),
		Within("store.query", c.Store.Query.Validate()),
		Within("limits", c.Limits.Validate()),
		c.writeTimeoutValidate(),
		c.dataDirValidate(),
		Within("paths", c.Paths.Validate()),
		Within("collectors", c.Collectors.Validate()),
		Within("outputs", c.Outputs.Validate()),
		Within("topology", c.Topology.Validate()),
		Within("monitors", c.Monitors.Validate(c.Topology.Networks)),
	)
}

func (c *Config) dataDirValidate() error {
	if strings.TrimSpace(c.DataDir) == "" {
		return Errorf("data_dir", "must not be empty")
	}
	return nil
}

// Validate checks the server section.
func (s *Server) Validate() error {
	var errs []error
	if _, port, err := net.SplitHostPort(s.Listen); err != nil {
		errs = append(errs, Errorf("listen", "must be host:port, got %q", s.Listen))
	} else if port == "" {
		errs = append(errs, Errorf("listen", "missing port in %q", s.Listen))
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		errs = append(errs, Errorf("listen", "port must be a number from 0 to 65535, got %q", port))
	}
	errs = append(errs, durationIn("read_timeout", s.ReadTimeout, MinReadTimeout, MaxReadTimeout))
	if s.WebConfigFile != "" {
		if _, err := os.Stat(s.WebConfigFile); err != nil {
			errs = append(errs, Errorf("web_config_file", "%v", err))
		}
	}
	return errors.Join(errs...)
}

// Validate checks the log section.
func (l *Log) Validate() error {
	var errs []error
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, l.Level) {
		errs = append(errs, Errorf("level", "must be one of debug, info, warn, error; got %q", l.Level))
	}
	if !slices.Contains([]string{"text", "json"}, l.Format) {
		errs = append(errs, Errorf("format", "must be text or json; got %q", l.Format))
	}
	return errors.Join(errs...)
}

// Validate checks the store section.
func (s *Store) Validate() error {
	errs := []error{
		durationIn("scrape_interval", s.ScrapeInterval, MinScrapeInterval, MaxScrapeInterval),
		durationIn("retention", s.Retention, MinRetention, MaxRetention),
	}
	if s.RetentionSize != 0 && (s.RetentionSize < MinRetentionBytes || s.RetentionSize > MaxRetentionBytes) {
		errs = append(errs, Errorf("retention_bytes", "must be 0 (no size limit) or between %d (64 MiB) and %d (1 PiB), got %d",
			MinRetentionBytes, MaxRetentionBytes, s.RetentionSize))
	}
	return errors.Join(errs...)
}

// StoreEnabled reports whether the embedded store runs (default true).
func (s *Store) StoreEnabled() bool { return s.Enabled == nil || *s.Enabled }

// ---- collector sections ----

// CollectorCommon holds the settings every collector has. Collector configs
// embed it with `yaml:",inline"`.
type CollectorCommon struct {
	// Enabled: nil means "auto": run when the host supports it.
	Enabled *bool `yaml:"enabled"`
	// Interval between updates.
	Interval time.Duration `yaml:"interval"`
	// Timeout of one update; defaults to the interval.
	Timeout time.Duration `yaml:"timeout"`
}

// Common returns the embedded common settings.
func (c *CollectorCommon) Common() *CollectorCommon { return c }

// IsEnabled reports whether the collector should be started (auto counts as yes).
func (c *CollectorCommon) IsEnabled() bool { return c.Enabled == nil || *c.Enabled }

// Explicit reports whether the user enabled the collector explicitly.
func (c *CollectorCommon) Explicit() bool { return c.Enabled != nil && *c.Enabled }

// ValidateCommon checks interval and timeout.
func (c *CollectorCommon) ValidateCommon() error {
	var errs []error
	if c.Interval < MinCollectorPeriod {
		errs = append(errs, Errorf("interval", "must be at least 100ms, got %s", c.Interval))
	} else if c.Interval > MaxCollectorPeriod {
		errs = append(errs, Errorf("interval", "must be at most %s, got %s", FormatDuration(MaxCollectorPeriod), FormatDuration(c.Interval)))
	}
	if c.Timeout < 0 {
		errs = append(errs, Errorf("timeout", "must not be negative"))
	} else if c.Timeout > c.Interval && c.Interval > 0 {
		errs = append(errs, Errorf("timeout", "must not exceed interval (%s), got %s", c.Interval, c.Timeout))
	}
	return errors.Join(errs...)
}

// CollectorConfig is a collector's typed configuration.
type CollectorConfig interface {
	Common() *CollectorCommon
	// Validate checks the whole section, common part included; errors name
	// paths relative to the section.
	Validate() error
}

var (
	regMu      sync.RWMutex
	registered = map[string]func() CollectorConfig{}
)

// RegisterCollector makes "collectors.<name>" a known section whose default
// value is made by def. Collector packages call it from init (through
// collector.Register).
func RegisterCollector(name string, def func() CollectorConfig) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registered[name]; dup {
		panic("config: collector section registered twice: " + name)
	}
	registered[name] = def
}

// CollectorNames returns the registered collector sections, sorted.
func CollectorNames() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	names := make([]string, 0, len(registered))
	for n := range registered {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Collectors maps a collector type to its typed configuration.
type Collectors map[string]CollectorConfig

func defaultCollectors() Collectors {
	regMu.RLock()
	defer regMu.RUnlock()
	out := Collectors{}
	for n, def := range registered {
		out[n] = def()
	}
	return out
}

// UnmarshalYAML decodes each section strictly into its registered type.
func (cs *Collectors) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return lineErr(n, "collectors", "must be a mapping, not %s", kindName(n))
	}
	if *cs == nil {
		*cs = defaultCollectors()
	}
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		cfg, ok := (*cs)[k.Value]
		if !ok {
			errs = append(errs, lineErr(k, "collectors."+k.Value, "unknown collector (known: %s)", strings.Join(CollectorNames(), ", ")))
			continue
		}
		if err := Decode(v, cfg, "collectors."+k.Value); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Validate checks every section.
func (cs Collectors) Validate() error {
	names := make([]string, 0, len(cs))
	for n := range cs {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		errs = append(errs, Within(n, cs[n].Validate()))
	}
	return errors.Join(errs...)
}

// ---- loading ----

// Load parses YAML data (which may be empty) over the defaults, applies
// overrides ("dotted.path" -> YAML scalar, e.g. flags), and validates.
func Load(data []byte, overrides map[string]string) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("parse config: %w", fixYAMLLine(err))
	}
	if root.Kind == 0 {
		root = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, &FieldError{Msg: fmt.Sprintf("config must be a mapping at the top level (line %d)", doc.Line)}
	}
	keys := make([]string, 0, len(overrides))
	for k := range overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		setPath(doc, strings.Split(k, "."), overrides[k])
	}
	// Type errors do not hide range errors: a field that fails to decode
	// keeps its default, the rest is validated, and every error is
	// reported at once, in line order, with its line.
	cfg := Defaults()
	derr := Decode(doc, cfg, "")
	if err := withLines(doc, errors.Join(derr, cfg.Validate())); err != nil {
		return nil, err
	}
	return cfg, nil
}

// LoadFile reads path (empty means no file) and calls Load.
func LoadFile(path string, overrides map[string]string) (*Config, error) {
	var data []byte
	if path != "" {
		var err error
		data, err = os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
	}
	cfg, err := Load(data, overrides)
	if err != nil && path != "" {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, err
}

// setPath sets a scalar at the dotted path inside mapping m, creating
// intermediate mappings.
func setPath(m *yaml.Node, path []string, value string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == path[0] {
			if len(path) == 1 {
				m.Content[i+1] = scalar(value)
				return
			}
			if m.Content[i+1].Kind != yaml.MappingNode {
				m.Content[i+1] = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			}
			setPath(m.Content[i+1], path[1:], value)
			return
		}
	}
	key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: path[0]}
	if len(path) == 1 {
		m.Content = append(m.Content, key, scalar(value))
		return
	}
	child := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	m.Content = append(m.Content, key, child)
	setPath(child, path[1:], value)
}

func scalar(v string) *yaml.Node {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(v), &n); err == nil && len(n.Content) == 1 && n.Content[0].Kind == yaml.ScalarNode {
		// Not from the file: no line, so errors do not point into it.
		n.Content[0].Line, n.Content[0].Column = 0, 0
		return n.Content[0]
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
}
