package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netsight/netsight/config"
)

// testColl is a collector section registered only in this test binary so
// the collector-section decoding can be tested without real collectors.
type testColl struct {
	config.CollectorCommon `yaml:",inline"`
	Threshold              int `yaml:"threshold"`
}

func (c *testColl) Validate() error {
	var errs []error
	errs = append(errs, c.ValidateCommon())
	if c.Threshold < 0 {
		errs = append(errs, config.Errorf("threshold", "must not be negative, got %d", c.Threshold))
	}
	return errors.Join(errs...)
}

func init() {
	config.RegisterCollector("testcoll", func() config.CollectorConfig {
		return &testColl{CollectorCommon: config.CollectorCommon{Interval: 15 * time.Second}, Threshold: 1}
	})
}

func TestInvalidConfigs(t *testing.T) {
	cases := map[string]string{
		"invalid-unknown-key.yaml":       "server.lisen: unknown field (known: listen, read_timeout, web_config_file, write_timeout) (line 2)",
		"invalid-unknown-top.yaml":       "colectors: unknown field (known: collectors, data_dir, limits, log, monitors, outputs, paths, server, store, topology) (line 1)",
		"invalid-listen.yaml":            `server.listen: must be host:port, got "localhost" (line 2)`,
		"invalid-duration.yaml":          `store.scrape_interval: invalid duration "fast" (use e.g. 500ms, 15s, 1m) (line 2)`,
		"invalid-log-level.yaml":         `log.level: must be one of debug, info, warn, error; got "verbose" (line 2)`,
		"invalid-unknown-collector.yaml": "collectors.conntrak: unknown collector (known: testcoll) (line 2)",
		"invalid-collector-field.yaml":   "collectors.testcoll.treshold: unknown field (known: enabled, interval, threshold, timeout) (line 3)",
		"invalid-collector-value.yaml": "collectors.testcoll.interval: must be at least 100ms, got 10ms (line 3)\n" +
			"collectors.testcoll.threshold: must not be negative, got -1 (line 4)",
		"invalid-type.yaml":        "server: must be a mapping, not a list (line 1)",
		"invalid-not-mapping.yaml": "config must be a mapping at the top level (line 1)",
		"invalid-timeout.yaml":     "collectors.testcoll.timeout: must not exceed interval (1s), got 5s (line 4)",
		"invalid-yaml-syntax.yaml": "parse config: yaml: line 2: found unexpected end of stream",
		// yaml.v3 says "line 1" for these parser errors (0-based lines).
		"invalid-yaml-syntax-line2.yaml": "parse config: yaml: line 2: did not find expected ',' or ']'",
		"invalid-yaml-indent.yaml":       "parse config: yaml: line 3: did not find expected key",
		// Every duration and size has a range; all errors at once, in line order.
		"invalid-ranges.yaml": `server.listen: port must be a number from 0 to 65535, got "99999" (line 2)` + "\n" +
			"server.read_timeout: must be between 1s and 10m, got 0s (line 3)\n" +
			"store.scrape_interval: must be between 1s and 2m, got 100000h (line 5)\n" +
			"store.retention: must be between 1h and 87600h, got 90000h (line 6)\n" +
			"store.retention_bytes: must be 0 (no size limit) or between 67108864 (64 MiB) and 1125899906842624 (1 PiB), got 1 (line 7)",
		// Type errors do not hide range errors: decode errors first, then
		// validation errors.
		"invalid-type-and-range.yaml": `server.read_timeout: invalid duration "soon" (use e.g. 500ms, 15s, 1m) (line 2)` + "\n" +
			"collectors.testcoll.threshold: cannot unmarshal !!str `many` into int (line 8)\n" +
			"store.retention_bytes: must be 0 (no size limit) or between 67108864 (64 MiB) and 1125899906842624 (1 PiB), got 1 (line 4)\n" +
			"collectors.testcoll.interval: must be at most 1h, got 2h (line 7)",
		"invalid-store-query.yaml": "store.query.timeout: must be between 1s and 10m0s, got 0s (line 4)\n" +
			"store.query.max_subquery_steps: must be between 100 and 1000000, got 10 (line 5)\n" +
			"store.query.max_queued: must be between 0 and 1024, got -1 (line 6)\n" +
			"limits.memory: must be 0 (derive from the cgroup) or at least 67108864 (64 MiB), got 1000 (line 8)",
		"invalid-monitor-network.yaml":   `monitors.items[0].remote.networks[0]: unknown network "zone-b" (known: zone-a) (line 12)`,
		"invalid-monitor-duplicate.yaml": `monitors.items[1].name: duplicate monitor name "db" (line 6)`,
		"invalid-monitors-count.yaml":    "monitors.items: at most 64 monitors, got 65 (line 3)",
		"invalid-topology-cidr.yaml": `topology.networks[0].cidrs[1]: invalid CIDR "10.2.0.0/33" (want e.g. 10.0.0.0/16 or 10.0.0.1) (line 4)` + "\n" +
			`monitors.items[0].remote.cidrs[0]: invalid CIDR "not-a-cidr" (want e.g. 10.0.0.0/16 or 10.0.0.1) (line 9)` + "\n" +
			`monitors.items[0].remote.categories[0]: unknown category "cross_zone" (known: host, intra_zone, inter_zone, same_vpc, inter_vpc, inter_region, internet, unclassified) (line 10)`,
		"invalid-topology-imds.yaml": `topology.imds: must be off, on or auto; got "maybe" (line 2)` + "\n" +
			`topology.imds_endpoint: must be an http:// or https:// URL, got "169.254.169.254" (line 3)` + "\n" +
			`topology.kubernetes: must be off, api or file:PATH; got "file:" (line 4)`,
		"invalid-write-timeout.yaml": "server.write_timeout: must exceed store.query.timeout + store.query.queue_timeout (35s), got 20s (line 3)",
		"invalid-output.yaml": "outputs[0].url: parse \"127.0.0.1:8428/api/v1/write\": first path segment in URL cannot contain colon (line 4)\n" +
			"outputs[0].database: not used by type remote_write (line 6)\n" +
			"outputs[0].version: must be 1 or 2, got 3 (line 5)\n" +
			"outputs[1].name: duplicate output name \"vm\" (also outputs[0]) (line 7)\n" +
			"outputs[1].type: must be one of remote_write, otlp, influxdb, collectd; got \"carrier_pigeon\" (line 8)\n" +
			"outputs[2].interval: must be at least 1s, got 10ms (line 13)\n" +
			"outputs[2].match[0]: invalid regex: error parsing regexp: missing closing ): `netsight_(` (line 14)\n" +
			"outputs[2].url: not used by type collectd (line 11)\n" +
			"outputs[2].address: required (host:port, default port 25826)\n" +
			"outputs[2].username: required with security_level sign\n" +
			"outputs[2].password_file: required with security_level sign\n" +
			"outputs[3].compression: must be gzip or none, got \"zstd\" (line 18)",
		"invalid-output-field.yaml": "outputs[0].urls: unknown field (known: address, basic_auth, bearer_token_file, bucket, compression, " +
			"database, headers, interval, match, max_age, max_samples_per_send, name, org, password_file, protocol, " +
			"retention_policy, security_level, timeout, tls, token_file, type, url, username, version) (line 5)",
	}
	files, err := filepath.Glob("testdata/invalid-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(cases) {
		t.Errorf("%d invalid-*.yaml files but %d table rows: every file needs a row", len(files), len(cases))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			want, ok := cases[name]
			if !ok {
				t.Fatalf("no expected message for %s", name)
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = config.Load(data, nil)
			if err == nil {
				t.Fatalf("Load accepted %s", name)
			}
			if got := err.Error(); got != want {
				t.Errorf("error mismatch\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

func TestValidFull(t *testing.T) {
	data, err := os.ReadFile("testdata/valid-full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.ReadTimeout != 20*time.Second || cfg.Log.Format != "json" || cfg.Store.RetentionSize != 100<<20 {
		t.Errorf("values not decoded: %+v", cfg)
	}
	tc := cfg.Collectors["testcoll"].(*testColl)
	if tc.Interval != 2*time.Second || tc.Threshold != 5 {
		t.Errorf("collector section: %+v", tc)
	}
	if len(cfg.Topology.Networks) != 2 || cfg.Topology.Networks[0].Zone != "use1-az1" || cfg.Topology.IMDS != "off" ||
		cfg.Monitors.Window != 2*time.Minute || len(cfg.Monitors.Items) != 2 || cfg.Monitors.Items[0].Remote.Ports[0] != 5432 {
		t.Errorf("topology / monitors not decoded: %+v %+v", cfg.Topology, cfg.Monitors)
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := config.Load(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Listen != "127.0.0.1:19977" {
		t.Errorf("default listen %q: must be loopback", cfg.Server.Listen)
	}
	tc := cfg.Collectors["testcoll"].(*testColl)
	if tc.Interval != 15*time.Second || tc.Threshold != 1 || !tc.IsEnabled() || tc.Explicit() {
		t.Errorf("collector defaults not filled: %+v", tc)
	}
	if !cfg.Store.StoreEnabled() {
		t.Error("store must be enabled by default")
	}
}

func TestOverrides(t *testing.T) {
	data := []byte("server:\n  listen: 127.0.0.1:1000\ncollectors:\n  testcoll:\n    threshold: 3\n")
	tests := []struct {
		name      string
		overrides map[string]string
		check     func(*config.Config) bool
		wantErr   string
		exact     bool // wantErr is the whole message, not a prefix
	}{
		{"flag wins over file", map[string]string{"server.listen": "0.0.0.0:2000"},
			func(c *config.Config) bool { return c.Server.Listen == "0.0.0.0:2000" }, "", false},
		{"nested new path", map[string]string{"collectors.testcoll.enabled": "false"},
			func(c *config.Config) bool {
				tc := c.Collectors["testcoll"].(*testColl)
				return !tc.IsEnabled() && tc.Threshold == 3
			}, "", false},
		{"typed scalar", map[string]string{"store.retention": "72h"},
			func(c *config.Config) bool { return c.Store.Retention == 72*time.Hour }, "", false},
		{"bad override named", map[string]string{"collectors.testcoll.threshold": "many"},
			nil, "collectors.testcoll.threshold: cannot unmarshal !!str `many` into int", false},
		// A flag's value has no line in the file: none is printed.
		{"listen port out of range", map[string]string{"server.listen": "127.0.0.1:99999"},
			nil, `server.listen: port must be a number from 0 to 65535, got "99999"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Load(data, tt.overrides)
			if tt.wantErr != "" {
				if tt.exact {
					if err == nil || err.Error() != tt.wantErr {
						t.Fatalf("err = %v, want exactly %q", err, tt.wantErr)
					}
					return
				}
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("override not applied: %+v", cfg)
			}
		})
	}
}

func TestLoadFileNamesFile(t *testing.T) {
	_, err := config.LoadFile("testdata/invalid-listen.yaml", nil)
	if err == nil || !strings.HasPrefix(err.Error(), "testdata/invalid-listen.yaml: server.listen:") {
		t.Fatalf("err = %v", err)
	}
	var fe *config.FieldError
	if !errors.As(err, &fe) || fe.Path != "server.listen" {
		t.Errorf("not a FieldError with the path: %#v", err)
	}
	if _, err := config.LoadFile("testdata/does-not-exist.yaml", nil); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Load(data, nil)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		if err == nil {
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("Load returned a config that does not validate: %v", verr)
			}
		}
	})
}
