package config_test

import (
	"os"
	"testing"
	"time"

	"github.com/netsight/netsight/config"
)

func TestOutputsValid(t *testing.T) {
	data, err := os.ReadFile("testdata/valid-full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Outputs) != 3 {
		t.Fatalf("got %d outputs, want 3", len(cfg.Outputs))
	}
	vm := cfg.Outputs[0].WithDefaults(5 * time.Second)
	if vm.Interval != 5*time.Second || vm.MaxAge != time.Hour || vm.Version != 1 || vm.Headers["X-Scope-OrgID"] != "lab" ||
		vm.MaxSamplesPerSend != config.DefaultOutputBatch {
		t.Errorf("remote_write defaults: %+v", vm)
	}
	cd := cfg.Outputs[2].WithDefaults(5 * time.Second)
	if cd.Address != "127.0.0.1:25826" || cd.SecurityLevel != "none" || cd.MaxAge != config.DefaultOutputMaxAge {
		t.Errorf("collectd defaults: %+v", cd)
	}
}

func TestOutputValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  config.Output
		want string
	}{
		{"ok", config.Output{Name: "a", Type: "remote_write", URL: "https://x.example/api/v1/write"}, ""},
		{"no url", config.Output{Name: "a", Type: "influxdb", Database: "d"}, "url: required for type influxdb"},
		{"influx v1 and v2", config.Output{Name: "a", Type: "influxdb", URL: "http://127.0.0.1:8086", Database: "d", Org: "o"},
			"database: set database/retention_policy (InfluxDB v1) or org/bucket/token_file (v2), not both"},
		{"influx v2 needs bucket", config.Output{Name: "a", Type: "influxdb", URL: "http://127.0.0.1:8086", Org: "o"},
			"bucket: org and bucket are both required for InfluxDB v2"},
		{"otlp grpc", config.Output{Name: "a", Type: "otlp", Protocol: "grpc", URL: "grpc://127.0.0.1:4317"}, ""},
		{"otlp protocol", config.Output{Name: "a", Type: "otlp", Protocol: "thrift", URL: "http://127.0.0.1:4318"},
			`protocol: must be http or grpc, got "thrift"`},
		{"basic and bearer", config.Output{Name: "a", Type: "remote_write", URL: "http://127.0.0.1/",
			BasicAuth: &config.OutputBasicAuth{Username: "u"}, BearerTokenFile: "/nonexistent/token"},
			"bearer_token_file: set basic_auth or bearer_token_file, not both\n" +
				"bearer_token_file: stat /nonexistent/token: no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.out.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got:  %s\nwant: %s", got, tc.want)
			}
		})
	}
}
