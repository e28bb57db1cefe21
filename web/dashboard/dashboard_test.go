package dashboard

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/netsight/netsight/web"
)

func get(t *testing.T, h http.Handler, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Result(), string(b)
}

// The routes serve the embedded page, assets and meta; unknown paths are
// 404, not the page.
func TestRoutes(t *testing.T) {
	s := web.New(web.Options{})
	Register(s.Handle, Meta{Hostname: "host-a", Version: "v1", StoreEnabled: true, ScrapeInterval: 5})
	mux := s.Mux()

	tests := []struct {
		path, ctype, contains string
		code                  int
	}{
		{"/", "text/html", `<script src="ui/panels.js">`, 200},
		{"/ui/app.js", "text/javascript", "NETSIGHT_PANELS", 200},
		{"/ui/panels.js", "text/javascript", "sections:", 200},
		{"/ui/style.css", "text/css", `[data-theme="dark"]`, 200},
		{"/ui/vendor/uplot/uPlot.iife.min.js", "text/javascript", "uPlot", 200},
		{"/ui/vendor/uplot/uPlot.min.css", "text/css", ".uplot", 200},
		{"/ui/vendor/uplot/LICENSE", "", "MIT", 200},
		{"/ui/favicon.svg", "image/svg+xml", "<svg", 200},
		{"/ui/meta.json", "application/json", `"hostname":"host-a"`, 200},
		{"/nope", "", "", 404},
		{"/ui/nope.js", "", "", 404},
		// Overlong UTF-8 dots: not a path, a 400 (never a 500 or a file).
		{"/ui/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", "", "", 400},
		{"/ui/%2e%2e%5cetc", "", "", 400},
		// No directory listings.
		{"/ui/vendor/", "", "", 404},
		{"/ui/vendor", "", "", 404},
		{"/ui/vendor/uplot/", "", "", 404},
		// /ui/ itself is the dashboard.
		{"/ui/", "", "", 301},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := get(t, mux, tc.path)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.code)
			}
			if tc.code == 301 {
				if loc := resp.Header.Get("Location"); loc != "../" {
					t.Errorf("Location %q, want ../ (the dashboard)", loc)
				}
			}
			if tc.code != 200 {
				return
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
				t.Errorf("content type %q, want %s", ct, tc.ctype)
			}
			if !strings.Contains(body, tc.contains) {
				t.Errorf("body lacks %q", tc.contains)
			}
		})
	}
	resp, _ := get(t, mux, "/")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP = %q", csp)
	}
}

// Every asset the page references is embedded: no CDN, works offline.
func TestNoExternalReferences(t *testing.T) {
	err := fs.WalkDir(Assets(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(p, "vendor/") {
			return err
		}
		b, err := fs.ReadFile(Assets(), p)
		if err != nil {
			return err
		}
		// An XML namespace is a name, not a fetch.
		text := strings.ReplaceAll(string(b), `xmlns="http://www.w3.org/2000/svg"`, "")
		for _, bad := range []string{"http://", "https://", "//cdn", "@import"} {
			if strings.Contains(text, bad) {
				t.Errorf("%s references %q", p, bad)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var m Meta
	_, body := get(t, func() http.Handler {
		s := web.New(web.Options{})
		Register(s.Handle, Meta{Version: "x"})
		return s.Mux()
	}(), "/ui/meta.json")
	if err := json.Unmarshal([]byte(body), &m); err != nil || m.Version != "x" {
		t.Errorf("meta %q: %v", body, err)
	}
}
