package main

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/netsight/netsight/config"
)

const shippedConfig = "../../deploy/config/netsight.yaml"

// The shipped, commented config file (installed as /etc/netsight/netsight.yaml)
// is exactly the defaults, and names every key.
func TestShippedConfigIsDefaults(t *testing.T) {
	cfg, err := config.LoadFile(shippedConfig, nil)
	if err != nil {
		t.Fatalf("shipped config does not load: %v", err)
	}
	got, _ := yaml.Marshal(cfg)
	want, _ := yaml.Marshal(config.Defaults())
	if string(got) != string(want) {
		t.Errorf("shipped config differs from the defaults\n got:\n%s\nwant:\n%s", got, want)
	}
	data, err := os.ReadFile(shippedConfig)
	if err != nil {
		t.Fatal(err)
	}
	var file, def yaml.Node
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(want, &def); err != nil {
		t.Fatal(err)
	}
	for _, p := range leafPaths(def.Content[0], "") {
		if !hasPath(file.Content[0], strings.Split(p, ".")) {
			t.Errorf("shipped config lacks %s: add it with its default and range", p)
		}
	}
}

func leafPaths(n *yaml.Node, prefix string) []string {
	if n.Kind != yaml.MappingNode {
		return []string{prefix}
	}
	var out []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		p := n.Content[i].Value
		if prefix != "" {
			p = prefix + "." + p
		}
		out = append(out, leafPaths(n.Content[i+1], p)...)
	}
	return out
}

func hasPath(n *yaml.Node, path []string) bool {
	if len(path) == 0 {
		return true
	}
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == path[0] {
			return hasPath(n.Content[i+1], path[1:])
		}
	}
	return false
}

// With no --config, a missing /etc/netsight/netsight.yaml means the
// defaults; an explicit --config that does not exist is an error.
func TestConfigDefaultPathOptional(t *testing.T) {
	cfg, found, err := config.LoadOptionalFile(t.TempDir()+"/netsight.yaml", nil)
	if err != nil || found || cfg.Server.Listen != config.DefaultListen {
		t.Fatalf("missing optional file: %v %v %+v", err, found, cfg)
	}
	cfg, found, err = config.LoadOptionalFile(shippedConfig, nil)
	if err != nil || !found || cfg == nil {
		t.Fatalf("existing optional file: %v %v", err, found)
	}
	if _, err := config.LoadFile(t.TempDir()+"/nope.yaml", nil); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("explicit missing file: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// Every collector duration and size has an upper bound too; each error
// names the field and its line.
func TestCollectorUpperBounds(t *testing.T) {
	data := `collectors:
  flows:
    poll_interval: 2m
    idle_timeout: 48h
    retention: 2h
  capture:
    flow_idle_timeout: 25h
  conntrack:
    max_dump_entries: 20000000
    forecast_window: 48h
  probe:
    resolve_interval: 25h
  nic:
    max_stats_per_device: 1000000
  sockets:
    interval: 2h
`
	want := []string{
		"collectors.capture.flow_idle_timeout: must be at most 24h, got 25h (line 7)",
		"collectors.conntrack.max_dump_entries: must be at most 10000000, got 20000000 (line 9)",
		"collectors.conntrack.forecast_window: must be at most 24h, got 48h (line 10)",
		"collectors.flows.poll_interval: must be at most 1m, got 2m (line 3)",
		"collectors.flows.idle_timeout: must be at most 24h, got 48h (line 4)",
		"collectors.flows.retention: must be at most 1h, got 2h (line 5)",
		"collectors.nic.max_stats_per_device: must be at most 100000, got 1000000 (line 14)",
		"collectors.probe.resolve_interval: must be at most 24h, got 25h (line 12)",
		"collectors.sockets.interval: must be at most 1h, got 2h (line 16)",
	}
	_, err := config.Load([]byte(data), nil)
	if err == nil {
		t.Fatal("accepted")
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}
