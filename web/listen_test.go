package web

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"
)

// Broken web configs are refused by Listen, before anything serves, with
// every problem named by its field and line.
func TestCheckWebConfigInvalid(t *testing.T) {
	cases := map[string]string{
		"testdata/webconfig-bad-bcrypt.yml": "testdata/webconfig-bad-bcrypt.yml: " +
			"basic_auth_users.alice: invalid bcrypt hash: crypto/bcrypt: hashedSecret too short to be a bcrypted password (make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n') (line 2)\n" +
			"basic_auth_users.bob: invalid bcrypt hash: crypto/bcrypt: hashedSecret too short to be a bcrypted password (make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n') (line 3)",
		"testdata/webconfig-missing-cert.yml": "testdata/webconfig-missing-cert.yml: " +
			"tls_server_config.cert_file: stat testdata/missing.crt: no such file or directory (line 2)\n" +
			"tls_server_config.key_file: stat testdata/missing.key: no such file or directory (line 3)",
		"testdata/webconfig-unknown-key.yml": "testdata/webconfig-unknown-key.yml: " +
			"tls_server_config.cert_fille: unknown field (known: cert, cert_file, cipher_suites, client_allowed_sans, client_auth_type, client_ca, client_ca_file, curve_preferences, key, key_file, max_version, min_version, prefer_server_cipher_suites) (line 2)\n" +
			"basic_auth_user: unknown field (known: basic_auth_users, http_server_config, rate_limit, tls_server_config) (line 3)",
		"testdata/does-not-exist.yml": "read web config: open testdata/does-not-exist.yml: no such file or directory",
	}
	for file, want := range cases {
		t.Run(filepath.Base(file), func(t *testing.T) {
			_, err := CheckWebConfig(file)
			if err == nil || err.Error() != want {
				t.Errorf("error mismatch\n got: %v\nwant: %s", err, want)
			}
			s := New(Options{Listen: "127.0.0.1:0", WebConfigFile: file, Gatherer: prometheus.NewRegistry()})
			if err := s.Listen(); err == nil || !strings.HasPrefix(err.Error(), "server.web_config_file: ") {
				t.Errorf("Listen: %v", err)
			}
			if s.Addr() != nil {
				t.Error("bound a socket with a broken web config")
			}
		})
	}
}

// selfSigned writes a certificate and key for 127.0.0.1 into dir.
func selfSigned(t *testing.T, dir string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "netsight-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certPath, keyPath = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	_ = os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certPath, keyPath
}

// With TLS on, the printed URL is https and the server answers TLS.
func TestListenTLSURL(t *testing.T) {
	dir := t.TempDir()
	selfSigned(t, dir)
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	cfg := filepath.Join(dir, "web.yml")
	_ = os.WriteFile(cfg, []byte("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  alice: "+string(hash)+"\n"), 0o600)
	info, err := CheckWebConfig(cfg)
	if err != nil || !info.TLS || !info.BasicAuth {
		t.Fatalf("info %+v, err %v", info, err)
	}
	s := New(Options{Listen: "127.0.0.1:0", WebConfigFile: cfg, Gatherer: prometheus.NewRegistry()})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(t.Context())
	if !strings.HasPrefix(s.URL(), "https://127.0.0.1:") {
		t.Errorf("URL %s", s.URL())
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, _ := http.NewRequest("GET", s.URL()+"healthz", nil)
	req.SetBasicAuth("alice", "pw")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz over TLS: %d", resp.StatusCode)
	}
	plain := New(Options{Listen: "127.0.0.1:0", Gatherer: prometheus.NewRegistry()})
	if err := plain.Listen(); err != nil {
		t.Fatal(err)
	}
	defer plain.Shutdown(t.Context())
	if !strings.HasPrefix(plain.URL(), "http://127.0.0.1:") {
		t.Errorf("plain URL %s", plain.URL())
	}
}

// A port in use is reported by Listen, naming the field.
func TestListenPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := New(Options{Listen: ln.Addr().String(), Gatherer: prometheus.NewRegistry()})
	err = s.Listen()
	if err == nil || !strings.HasPrefix(err.Error(), "server.listen: listen on "+ln.Addr().String()) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("err = %v", err)
	}
}

// Listening beyond loopback without auth warns; 0.0.0.0 binds IPv4 only
// (not Go's default dual-stack [::]); loopback and authenticated listeners
// do not warn.
func TestListenExposureWarning(t *testing.T) {
	dir := t.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	auth := filepath.Join(dir, "web.yml")
	_ = os.WriteFile(auth, []byte("basic_auth_users:\n  alice: "+string(hash)+"\n"), 0o600)
	tests := []struct {
		listen, webCfg string
		warn           string
		network        string
	}{
		{"127.0.0.1:0", "", "", "tcp4"},
		{"0.0.0.0:0", "", "reachable_on=\"every IPv4 address of this host\"", "tcp4"},
		{"[::]:0", "", "dual-stack [::]", "tcp6"},
		{":0", "", "dual-stack [::]", "tcp6"},
		{"0.0.0.0:0", auth, "", "tcp4"},
	}
	for _, tt := range tests {
		t.Run(tt.listen+" "+filepath.Base(tt.webCfg), func(t *testing.T) {
			var buf bytes.Buffer
			s := New(Options{Listen: tt.listen, WebConfigFile: tt.webCfg, Gatherer: prometheus.NewRegistry(),
				Logger: slog.New(slog.NewTextHandler(&buf, nil))})
			if err := s.Listen(); err != nil {
				t.Skipf("cannot bind %s here: %v", tt.listen, err)
			}
			defer s.Shutdown(t.Context())
			got := buf.String()
			if tt.warn == "" && strings.Contains(got, "without authentication") {
				t.Errorf("unexpected warning: %s", got)
			}
			if tt.warn != "" && (!strings.Contains(got, "level=WARN") || !strings.Contains(got, tt.warn)) {
				t.Errorf("warning lacks %q: %s", tt.warn, got)
			}
			ip := s.Addr().(*net.TCPAddr).IP
			if (ip.To4() != nil) != (tt.network == "tcp4") {
				t.Errorf("bound %s, want %s", s.Addr(), tt.network)
			}
		})
	}
}
