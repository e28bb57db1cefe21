package main

import (
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"time"

	commoncfg "github.com/prometheus/common/config"

	"github.com/netsight/netsight/internal/buildinfo"
)

// agentFlags are the options of a command that talks to a running agent
// (`top --agent`): its URL, the agent's TLS (server.web_config_file) and
// basic auth, or a bearer token for a proxy in front of it. The names follow
// the outputs' tls/basic_auth/bearer_token_file keys.
type agentFlags struct {
	url                string
	caFile             string
	certFile, keyFile  string
	serverName         string
	insecureSkipVerify bool
	basicAuthUser      string
	basicAuthPassFile  string
	bearerTokenFile    string
	timeout            time.Duration
}

func addAgentFlags(fs *flag.FlagSet, what string) *agentFlags {
	f := &agentFlags{}
	fs.StringVar(&f.url, "agent", "", "read a running agent at this `URL` (e.g. http://127.0.0.1:19977) instead of "+what)
	fs.StringVar(&f.caFile, "agent-ca-file", "", "CA certificate `file` to verify an https agent")
	fs.StringVar(&f.certFile, "agent-cert-file", "", "client certificate `file` (TLS client auth)")
	fs.StringVar(&f.keyFile, "agent-key-file", "", "client key `file` (with --agent-cert-file)")
	fs.StringVar(&f.serverName, "agent-server-name", "", "`name` expected in the agent's certificate (default: the URL's host)")
	fs.BoolVar(&f.insecureSkipVerify, "agent-insecure-skip-verify", false, "do not verify the agent's certificate")
	fs.StringVar(&f.basicAuthUser, "agent-basic-auth-user", "", "basic auth `user` (the agent's web config basic_auth_users)")
	fs.StringVar(&f.basicAuthPassFile, "agent-basic-auth-password-file", "", "`file` holding the basic auth password")
	fs.StringVar(&f.bearerTokenFile, "agent-bearer-token-file", "", "`file` holding a bearer token (re-read on every request)")
	fs.DurationVar(&f.timeout, "agent-timeout", 10*time.Second, "`timeout` of one request to the agent")
	return f
}

// client validates the flags and builds the agent's URL and HTTP client.
func (f *agentFlags) client() (*url.URL, *http.Client, error) {
	u, err := url.Parse(f.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, nil, fmt.Errorf("%w: --agent must be an http:// or https:// URL, got %q", errUsage, f.url)
	}
	switch {
	case f.basicAuthUser != "" && f.bearerTokenFile != "":
		return nil, nil, fmt.Errorf("%w: set --agent-basic-auth-user or --agent-bearer-token-file, not both", errUsage)
	case f.basicAuthPassFile != "" && f.basicAuthUser == "":
		return nil, nil, fmt.Errorf("%w: --agent-basic-auth-password-file needs --agent-basic-auth-user", errUsage)
	case (f.certFile == "") != (f.keyFile == ""):
		return nil, nil, fmt.Errorf("%w: --agent-cert-file and --agent-key-file go together", errUsage)
	case f.timeout <= 0 || f.timeout > 5*time.Minute:
		return nil, nil, fmt.Errorf("%w: --agent-timeout must be between 0 and 5m, got %s", errUsage, f.timeout)
	}
	c := commoncfg.HTTPClientConfig{
		TLSConfig: commoncfg.TLSConfig{CAFile: f.caFile, CertFile: f.certFile, KeyFile: f.keyFile,
			ServerName: f.serverName, InsecureSkipVerify: f.insecureSkipVerify},
		FollowRedirects: true,
		EnableHTTP2:     true,
	}
	if f.basicAuthUser != "" {
		c.BasicAuth = &commoncfg.BasicAuth{Username: f.basicAuthUser, PasswordFile: f.basicAuthPassFile}
	}
	if f.bearerTokenFile != "" {
		c.Authorization = &commoncfg.Authorization{Type: "Bearer", CredentialsFile: f.bearerTokenFile}
	}
	if err := c.Validate(); err != nil {
		return nil, nil, fmt.Errorf("agent client: %w", err)
	}
	cl, err := commoncfg.NewClientFromConfig(c, "agent", commoncfg.WithUserAgent("netsight/"+buildinfo.Version))
	if err != nil {
		return nil, nil, fmt.Errorf("agent client: %w", err)
	}
	cl.Timeout = f.timeout
	return u, cl, nil
}
