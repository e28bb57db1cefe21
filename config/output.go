package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Output types.
const (
	OutputRemoteWrite = "remote_write"
	OutputOTLP        = "otlp"
	OutputInfluxDB    = "influxdb"
	OutputCollectd    = "collectd"
)

// OutputTypes are the known output types.
var OutputTypes = []string{OutputRemoteWrite, OutputOTLP, OutputInfluxDB, OutputCollectd}

// Defaults of an output entry.
const (
	DefaultOutputMaxAge     = 2 * time.Hour
	DefaultOutputBatch      = 2000
	DefaultOutputTimeout    = 30 * time.Second
	DefaultCollectdPort     = "25826"
	DefaultCollectdMaxBytes = 1452
)

// Outputs is the top-level `outputs:` list: where netsight pushes the
// samples of its embedded store.
type Outputs []Output

// Output is one push destination. Every type shares the first block of
// keys; HTTP types use url, tls, basic_auth, bearer_token_file and headers;
// the rest is type specific.
// Compression values of influxdb and otlp outputs.
const (
	CompressionGzip = "gzip"
	CompressionNone = "none"
)

type Output struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"`
	// Interval between two deliveries (default: store.scrape_interval).
	Interval time.Duration `yaml:"interval"`
	// Match keeps the metric names matching any of these regexes (fully
	// anchored, as PromQL's =~); empty means every metric.
	Match []string `yaml:"match"`
	// MaxAge: samples older than this are dropped (and counted) instead of
	// sent (default 2h).
	MaxAge time.Duration `yaml:"max_age"`
	// MaxSamplesPerSend caps one request (default 2000).
	MaxSamplesPerSend int `yaml:"max_samples_per_send"`
	// Timeout of one request (default 30s).
	Timeout time.Duration `yaml:"timeout"`

	URL             string            `yaml:"url"`
	TLS             OutputTLS         `yaml:"tls"`
	BasicAuth       *OutputBasicAuth  `yaml:"basic_auth"`
	BearerTokenFile string            `yaml:"bearer_token_file"`
	Headers         map[string]string `yaml:"headers"`

	// remote_write: protocol version (1 or 2; default 1).
	Version int `yaml:"version"`
	// otlp: http or grpc (default http).
	Protocol string `yaml:"protocol"`
	// influxdb, otlp: gzip (default) or none: request bodies compressed
	// (Content-Encoding: gzip; gRPC's gzip compressor).
	Compression string `yaml:"compression"`
	// influxdb v1: database and retention_policy; v2: org, bucket, token_file.
	Database        string `yaml:"database"`
	RetentionPolicy string `yaml:"retention_policy"`
	Org             string `yaml:"org"`
	Bucket          string `yaml:"bucket"`
	TokenFile       string `yaml:"token_file"`
	// collectd: host:port (default port 25826), security_level none, sign
	// or encrypt, username and password_file.
	Address       string `yaml:"address"`
	SecurityLevel string `yaml:"security_level"`
	Username      string `yaml:"username"`
	PasswordFile  string `yaml:"password_file"`
}

// OutputTLS is the client side of TLS, named like exporter-toolkit's
// tls_server_config keys.
type OutputTLS struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// OutputBasicAuth is HTTP basic authentication.
type OutputBasicAuth struct {
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

var outputNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,64}$`)

// WithDefaults returns the entry with zero fields filled; scrape is the
// store's scrape interval.
func (o Output) WithDefaults(scrape time.Duration) Output {
	if o.Interval <= 0 {
		o.Interval = scrape
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultOutputMaxAge
	}
	if o.MaxSamplesPerSend <= 0 {
		o.MaxSamplesPerSend = DefaultOutputBatch
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultOutputTimeout
	}
	switch o.Type {
	case OutputRemoteWrite:
		if o.Version == 0 {
			o.Version = 1
		}
	case OutputOTLP:
		if o.Protocol == "" {
			o.Protocol = "http"
		}
		if o.Compression == "" {
			o.Compression = CompressionGzip
		}
	case OutputInfluxDB:
		if o.Compression == "" {
			o.Compression = CompressionGzip
		}
	case OutputCollectd:
		if o.SecurityLevel == "" {
			o.SecurityLevel = "none"
		}
		if o.Address != "" {
			if _, _, err := net.SplitHostPort(o.Address); err != nil {
				o.Address = net.JoinHostPort(o.Address, DefaultCollectdPort)
			}
		}
	}
	return o
}

// Validate checks the list: names unique, each entry valid.
func (os Outputs) Validate() error {
	var errs []error
	seen := map[string]int{}
	for i, o := range os {
		p := Index("", i)
		if j, dup := seen[o.Name]; dup && o.Name != "" {
			errs = append(errs, Errorf(joinPath(p, "name"), "duplicate output name %q (also outputs[%d])", o.Name, j))
		}
		seen[o.Name] = i
		errs = append(errs, Within(p, o.Validate()))
	}
	return errors.Join(errs...)
}

// Validate checks one entry; errors name the key.
func (o *Output) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, Errorf(path, format, args...)) }
	if !outputNameRE.MatchString(o.Name) {
		add("name", "must be 1-64 characters of [a-zA-Z0-9_.-], got %q", o.Name)
	}
	if !slices.Contains(OutputTypes, o.Type) {
		add("type", "must be one of %s; got %q", strings.Join(OutputTypes, ", "), o.Type)
	}
	if o.Interval != 0 && o.Interval < time.Second {
		add("interval", "must be at least 1s, got %s", o.Interval)
	}
	if o.MaxAge < 0 {
		add("max_age", "must not be negative")
	}
	if o.MaxSamplesPerSend < 0 {
		add("max_samples_per_send", "must not be negative")
	}
	if o.Timeout < 0 {
		add("timeout", "must not be negative")
	}
	for i, m := range o.Match {
		if _, err := regexp.Compile(m); err != nil {
			add(Index("match", i), "invalid regex: %v", err)
		}
	}
	http := o.Type == OutputRemoteWrite || o.Type == OutputInfluxDB || (o.Type == OutputOTLP)
	if http {
		if o.URL == "" {
			add("url", "required for type %s", o.Type)
		} else if u, err := url.Parse(o.URL); err != nil {
			add("url", "%v", err)
		} else if (u.Scheme != "http" && u.Scheme != "https" && !(o.Type == OutputOTLP && o.Protocol == "grpc")) || u.Host == "" {
			add("url", "must be an absolute http(s) URL, got %q", o.URL)
		}
		if o.BasicAuth != nil {
			if o.BasicAuth.Username == "" {
				add("basic_auth.username", "required")
			}
			if o.BasicAuth.Password != "" && o.BasicAuth.PasswordFile != "" {
				add("basic_auth", "set password or password_file, not both")
			}
			if o.BearerTokenFile != "" {
				add("bearer_token_file", "set basic_auth or bearer_token_file, not both")
			}
		}
		errs = append(errs, fileExists("bearer_token_file", o.BearerTokenFile))
		errs = append(errs, fileExists("tls.ca_file", o.TLS.CAFile))
		errs = append(errs, fileExists("tls.cert_file", o.TLS.CertFile))
		errs = append(errs, fileExists("tls.key_file", o.TLS.KeyFile))
		if (o.TLS.CertFile == "") != (o.TLS.KeyFile == "") {
			add("tls", "cert_file and key_file go together")
		}
	} else {
		for _, k := range []struct {
			key string
			set bool
		}{{"url", o.URL != ""}, {"tls", o.TLS != (OutputTLS{})}, {"basic_auth", o.BasicAuth != nil},
			{"bearer_token_file", o.BearerTokenFile != ""}, {"headers", len(o.Headers) > 0}} {
			if k.set && o.Type != "" && slices.Contains(OutputTypes, o.Type) {
				add(k.key, "not used by type %s", o.Type)
			}
		}
	}
	typed := map[string][]string{
		OutputRemoteWrite: {"version"},
		OutputOTLP:        {"protocol", "compression"},
		OutputInfluxDB:    {"database", "retention_policy", "org", "bucket", "token_file", "compression"},
		OutputCollectd:    {"address", "security_level", "username", "password_file"},
	}
	set := map[string]bool{
		"version": o.Version != 0, "protocol": o.Protocol != "", "compression": o.Compression != "",
		"database": o.Database != "", "retention_policy": o.RetentionPolicy != "", "org": o.Org != "",
		"bucket": o.Bucket != "", "token_file": o.TokenFile != "",
		"address": o.Address != "", "security_level": o.SecurityLevel != "", "username": o.Username != "",
		"password_file": o.PasswordFile != "",
	}
	if own, ok := typed[o.Type]; ok {
		for _, t := range OutputTypes {
			for _, k := range typed[t] {
				if set[k] && !slices.Contains(own, k) {
					add(k, "not used by type %s", o.Type)
				}
			}
		}
	}
	if c := o.Compression; c != "" && c != CompressionGzip && c != CompressionNone {
		add("compression", "must be gzip or none, got %q", c)
	}
	switch o.Type {
	case OutputRemoteWrite:
		if o.Version != 0 && o.Version != 1 && o.Version != 2 {
			add("version", "must be 1 or 2, got %d", o.Version)
		}
	case OutputOTLP:
		if o.Protocol != "" && o.Protocol != "http" && o.Protocol != "grpc" {
			add("protocol", "must be http or grpc, got %q", o.Protocol)
		}
	case OutputInfluxDB:
		v1 := o.Database != "" || o.RetentionPolicy != ""
		v2 := o.Org != "" || o.Bucket != "" || o.TokenFile != ""
		switch {
		case v1 && v2:
			add("database", "set database/retention_policy (InfluxDB v1) or org/bucket/token_file (v2), not both")
		case v2 && (o.Org == "" || o.Bucket == ""):
			add("bucket", "org and bucket are both required for InfluxDB v2")
		case !v1 && !v2:
			add("database", "required (InfluxDB v1), or org and bucket (v2)")
		}
		errs = append(errs, fileExists("token_file", o.TokenFile))
	case OutputCollectd:
		if o.Address == "" {
			add("address", "required (host:port, default port %s)", DefaultCollectdPort)
		}
		switch o.SecurityLevel {
		case "", "none":
		case "sign", "encrypt":
			if o.Username == "" {
				add("username", "required with security_level %s", o.SecurityLevel)
			}
			if o.PasswordFile == "" {
				add("password_file", "required with security_level %s", o.SecurityLevel)
			}
		default:
			add("security_level", "must be none, sign or encrypt, got %q", o.SecurityLevel)
		}
		errs = append(errs, fileExists("password_file", o.PasswordFile))
	}
	return errors.Join(errs...)
}

func fileExists(path, name string) error {
	if name == "" {
		return nil
	}
	if _, err := os.Stat(name); err != nil {
		return Errorf(path, "%v", err)
	}
	return nil
}

// String names the output for logs: "name (type)".
func (o *Output) String() string { return fmt.Sprintf("%s (%s)", o.Name, o.Type) }
