package delivery

import (
	"fmt"
	"net/http"

	commoncfg "github.com/prometheus/common/config"

	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/internal/buildinfo"
)

// UserAgent is sent by every HTTP output.
var UserAgent = "netsight/" + buildinfo.Version

// HTTPClient builds the client of an HTTP output from its tls, basic_auth,
// bearer_token_file and headers keys (with prometheus/common's round
// trippers: files are re-read, so rotated tokens and certificates apply).
func HTTPClient(o config.Output) (*http.Client, error) {
	c := commoncfg.HTTPClientConfig{
		TLSConfig: commoncfg.TLSConfig{
			CAFile: o.TLS.CAFile, CertFile: o.TLS.CertFile, KeyFile: o.TLS.KeyFile,
			ServerName: o.TLS.ServerName, InsecureSkipVerify: o.TLS.InsecureSkipVerify,
		},
		FollowRedirects: true,
		EnableHTTP2:     true,
	}
	if o.BasicAuth != nil {
		c.BasicAuth = &commoncfg.BasicAuth{Username: o.BasicAuth.Username,
			Password: commoncfg.Secret(o.BasicAuth.Password), PasswordFile: o.BasicAuth.PasswordFile}
	}
	if o.BearerTokenFile != "" {
		c.Authorization = &commoncfg.Authorization{Type: "Bearer", CredentialsFile: o.BearerTokenFile}
	}
	if len(o.Headers) > 0 {
		h := &commoncfg.Headers{Headers: map[string]commoncfg.Header{}}
		for k, v := range o.Headers {
			h.Headers[k] = commoncfg.Header{Values: []string{v}}
		}
		c.HTTPHeaders = h
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("http client: %w", err)
	}
	cl, err := commoncfg.NewClientFromConfig(c, o.Name, commoncfg.WithUserAgent(UserAgent))
	if err != nil {
		return nil, fmt.Errorf("http client: %w", err)
	}
	cl.Timeout = o.Timeout
	return cl, nil
}
