package web

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"

	"github.com/prometheus/exporter-toolkit/web"
	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"github.com/netsight/netsight/config"
)

// WebConfigInfo summarizes a checked exporter-toolkit web config.
type WebConfigInfo struct {
	TLS        bool // serving HTTPS
	BasicAuth  bool // basic_auth_users is not empty
	ClientCert bool // TLS client certificates are required
}

// Authenticated reports whether every request must authenticate.
func (i WebConfigInfo) Authenticated() bool { return i.BasicAuth || i.ClientCert }

// CheckWebConfig reads an exporter-toolkit web config file the way the
// server will and reports every problem at once, naming the field and its
// line: unknown keys, bad values, invalid bcrypt hashes, missing or
// unloadable certificates. An empty path means plain HTTP, no auth.
func CheckWebConfig(path string) (WebConfigInfo, error) {
	var info WebConfigInfo
	if path == "" {
		return info, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return info, fmt.Errorf("read web config: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return info, fmt.Errorf("%s: parse: %w", path, err)
	}
	var c web.Config
	var errs []error
	if err := config.Decode(&root, &c, ""); err != nil {
		errs = append(errs, err)
	}
	users := nodeAt(&root, "basic_auth_users")
	names := make([]string, 0, len(c.Users))
	for u := range c.Users {
		names = append(names, u)
	}
	sort.Strings(names)
	for _, u := range names {
		if _, err := bcrypt.Cost([]byte(c.Users[u])); err != nil {
			errs = append(errs, lineErr(valueNode(users, u), "basic_auth_users."+u, "invalid bcrypt hash: %v (make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n')", err))
		}
	}
	tc := c.TLSConfig
	tc.SetDirectory(filepath.Dir(path))
	tlsNode := nodeAt(&root, "tls_server_config")
	for _, f := range []struct{ key, path string }{
		{"cert_file", tc.TLSCertPath}, {"key_file", tc.TLSKeyPath}, {"client_ca_file", tc.ClientCAs},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, lineErr(valueNode(tlsNode, f.key), "tls_server_config."+f.key, "%v", err))
		}
	}
	if len(errs) == 0 && tc.IsEnabled() {
		if _, err := web.ConfigToTLSConfig(&tc); err != nil {
			errs = append(errs, lineErr(tlsNode, "tls_server_config", "%v", err))
		}
	}
	if len(errs) == 0 {
		// The toolkit's own check, in case it knows more than we do.
		if err := web.Validate(path); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return info, fmt.Errorf("%s: %w", path, err)
	}
	info.TLS = tc.IsEnabled()
	info.BasicAuth = len(c.Users) > 0
	info.ClientCert = tc.ClientAuth == "RequireAndVerifyClientCert" || tc.ClientAuth == "RequireAnyClientCert"
	return info, nil
}

func nodeAt(root *yaml.Node, key string) *yaml.Node {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	return valueNode(n, key)
}

func valueNode(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func lineErr(n *yaml.Node, path, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if n != nil && n.Line > 0 {
		msg = fmt.Sprintf("%s (line %d)", msg, n.Line)
	}
	return config.Errorf(path, "%s", msg)
}

// Listen checks the web config (TLS certificates, bcrypt hashes) and binds
// the listen address, so that every mistake is found before the agent starts
// collectors and the store. Start serves on the bound socket. A host given
// as an IPv4 literal (0.0.0.0) binds IPv4 only; an empty host or [::]
// binds every IPv4 and IPv6 address. Listening beyond loopback without
// authentication logs a warning.
func (s *Server) Listen() error {
	if s.ln != nil {
		return nil
	}
	info, err := CheckWebConfig(s.opts.WebConfigFile)
	if err != nil {
		return fmt.Errorf("server.web_config_file: %w", err)
	}
	s.info = info
	network := "tcp"
	if host, _, err := net.SplitHostPort(s.opts.Listen); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.To4() != nil {
			network = "tcp4"
		}
	}
	ln, err := net.Listen(network, s.opts.Listen)
	if err != nil {
		return fmt.Errorf("server.listen: listen on %s: %w", s.opts.Listen, err)
	}
	s.ln = ln
	if exp := exposure(ln.Addr()); exp != "" && !info.Authenticated() {
		s.opts.Logger.Warn("listening beyond loopback without authentication: metrics, flows and the query API are readable by anyone who can reach this port; add basic_auth_users to server.web_config_file or listen on 127.0.0.1",
			"address", ln.Addr().String(), "reachable_on", exp)
	}
	return nil
}

// exposure says who can reach addr: "" for loopback only.
func exposure(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || ta.IP.IsLoopback() {
		return ""
	}
	if ta.IP.IsUnspecified() {
		if ta.IP.To4() != nil {
			return "every IPv4 address of this host"
		}
		return "every IPv4 and IPv6 address of this host (dual-stack [::])"
	}
	return ta.IP.String()
}

// URL is the dashboard's base URL: https when the web config enables TLS.
func (s *Server) URL() string {
	scheme := "http"
	if s.info.TLS {
		scheme = "https"
	}
	if s.ln == nil {
		return scheme + "://" + s.opts.Listen + "/"
	}
	return scheme + "://" + s.ln.Addr().String() + "/"
}
