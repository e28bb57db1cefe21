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
