package probe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netsight/netsight/config"
)

func TestInvalidConfigs(t *testing.T) {
	cases := map[string]string{
		"invalid-protocol.yaml": `collectors.probe.targets[1].protocol: must be icmp or tcp, got "udp" (line 6)`,
		"invalid-address.yaml": `collectors.probe.targets[0].address: must not be empty (line 4)
collectors.probe.targets[1].address: must be an address or a name without port; use port: 443 for "example.com" (line 5)
collectors.probe.targets[2].address: must be an address or a name, not a URL: "http://example.com/" (line 6)`,
		"invalid-duplicate.yaml": `collectors.probe.targets[1].name: duplicate target name "10.0.0.1" (also targets[0]); set distinct names`,
		"invalid-icmp-mode.yaml": `collectors.probe.icmp_mode: must be auto, datagram or raw; got "magic" (line 3)
collectors.probe.resolve_interval: must be at least 10s, got 1s (line 4)`,
		"invalid-interval.yaml": `collectors.probe.targets[2].interval: must be between 10ms and 1h0m0s, got 1ms (line 7)
collectors.probe.targets[3].interval: must not exceed the aggregation period (30s), got 2m0s (line 9)`,
		"invalid-labels.yaml": `collectors.probe.targets[0].labels.__meta: invalid label name (line 5)
collectors.probe.targets[0].labels.bad-name: invalid label name (line 5)
collectors.probe.targets[0].labels.target: reserved label name (set by the collector) (line 5)`,
		"invalid-period.yaml": `collectors.probe.period: must be a whole number of seconds, got 1.5s (line 3)
collectors.probe.targets[0].period: must be between 1s and 1h0m0s (30s or 60s in production), got 2h0m0s (line 6)`,
		"invalid-size.yaml": `collectors.probe.targets[0].size: must be 56 to 8500 bytes of ICMP payload, got 9000 (line 5)
collectors.probe.targets[1].size: must be 56 to 8500 bytes of ICMP payload, got 20 (line 8)`,
		"invalid-tcp-port.yaml": `collectors.probe.targets[0].port: must be 1 to 65535 for tcp probes, got 0
collectors.probe.targets[1].port: applies to tcp probes only (line 7)`,
		"invalid-tcp-size.yaml": `collectors.probe.targets[0].size: applies to icmp probes only (line 7)
collectors.probe.targets[0].df: applies to icmp probes only (line 8)`,
		"invalid-timeout.yaml": `collectors.probe.targets[0].timeout: must not exceed the aggregation period (5s), got 10s (line 6)
collectors.probe.targets[1].timeout: must be between 0 (default 2s) and 1m0s, got -1s (line 8)`,
		"invalid-unknown-field.yaml": `collectors.probe.targets[0].intervall: unknown field (known: address, df, interval, ipv6, labels, name, period, port, protocol, size, timeout) (line 5)`,
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
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = config.Load(data, nil)
			if err == nil {
				t.Fatal("config accepted")
			}
			if want, ok := cases[name]; !ok || err.Error() != want {
				t.Errorf("error:\n%s\nwant:\n%s", err, want)
			}
		})
	}
}

func TestValidConfig(t *testing.T) {
	data, err := os.ReadFile("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Collectors[Type].(*Config)
	ts := c.engineTargets()
	if len(ts) != 3 {
		t.Fatalf("%d targets", len(ts))
	}
	if ts[0].Name != "gateway" || ts[0].Size != 1400 || !ts[0].DF || ts[0].Interval != time.Second || ts[0].Timeout != 2*time.Second {
		t.Errorf("target 0: %+v", ts[0])
	}
	if ts[1].Name != "api.example.internal:443" || ts[1].Port != 443 || ts[1].Protocol != "tcp" || c.targetPeriod(1) != 30*time.Second {
		t.Errorf("target 1: %+v", ts[1])
	}
	if ts[2].Name != "2001:db8::1" || c.targetPeriod(2) != 60*time.Second {
		t.Errorf("target 2: %+v period %s", ts[2], c.targetPeriod(2))
	}
}

func FuzzConfig(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Load(data, nil)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty error")
			}
			return
		}
		if c, ok := cfg.Collectors[Type].(*Config); ok {
			if err := c.Validate(); err != nil {
				t.Fatalf("loaded config fails Validate: %v", err)
			}
			_ = c.engineTargets()
		}
	})
}
