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
		"invalid-unknown-key.yaml":       "server.lisen: unknown field (known: listen, read_timeout, web_config_file) (line 2)",
		"invalid-unknown-top.yaml":       "colectors: unknown field (known: collectors, data_dir, log, paths, server, store) (line 1)",
		"invalid-listen.yaml":            `server.listen: must be host:port, got "localhost"`,
		"invalid-duration.yaml":          `store.scrape_interval: invalid duration "fast" (use e.g. 500ms, 15s, 1m) (line 2)`,
		"invalid-log-level.yaml":         `log.level: must be one of debug, info, warn, error; got "verbose"`,
		"invalid-unknown-collector.yaml": "collectors.conntrak: unknown collector (known: testcoll) (line 2)",
		"invalid-collector-field.yaml":   "collectors.testcoll.treshold: unknown field (known: enabled, interval, threshold, timeout) (line 3)",
		"invalid-collector-value.yaml": "collectors.testcoll.interval: must be at least 100ms, got 10ms\n" +
			"collectors.testcoll.threshold: must not be negative, got -1",
		"invalid-type.yaml":        "server: must be a mapping, not a list (line 1)",
		"invalid-not-mapping.yaml": "config must be a mapping at the top level (line 1)",
		"invalid-timeout.yaml":     "collectors.testcoll.timeout: must not exceed interval (1s), got 5s",
		"invalid-yaml-syntax.yaml": "parse config: yaml: line 2: found unexpected end of stream",
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
	}{
		{"flag wins over file", map[string]string{"server.listen": "0.0.0.0:2000"},
			func(c *config.Config) bool { return c.Server.Listen == "0.0.0.0:2000" }, ""},
		{"nested new path", map[string]string{"collectors.testcoll.enabled": "false"},
			func(c *config.Config) bool {
				tc := c.Collectors["testcoll"].(*testColl)
				return !tc.IsEnabled() && tc.Threshold == 3
			}, ""},
		{"typed scalar", map[string]string{"store.retention": "72h"},
			func(c *config.Config) bool { return c.Store.Retention == 72*time.Hour }, ""},
		{"bad override named", map[string]string{"collectors.testcoll.threshold": "many"},
			nil, "collectors.testcoll.threshold: cannot unmarshal !!str `many` into int"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Load(data, tt.overrides)
			if tt.wantErr != "" {
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
