package dashboard

import (
	"embed"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/netsight/netsight/internal/buildinfo"
)

//go:embed assets
var assets embed.FS

// Assets is the embedded UI file tree (index.html at its root).
func Assets() fs.FS {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err)
	}
	return sub
}

// Meta is served at /ui/meta.json: what the page shows in its header.
type Meta struct {
	Hostname       string  `json:"hostname"`
	Version        string  `json:"version"`
	Revision       string  `json:"revision"`
	StoreEnabled   bool    `json:"store_enabled"`
	ScrapeInterval float64 `json:"scrape_interval_seconds"`
	// PID is the agent's process: the flows table hides its own
	// connections (scrapes, API calls) unless asked.
	PID int `json:"pid"`
}

// Register adds the dashboard routes: "/" (index), "/ui/..." (assets) and
// "/ui/meta.json".
func Register(handle func(pattern string, h http.Handler), meta Meta) {
	files := Assets()
	handle("GET /{$}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w)
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, files, "index.html")
	}))
	handle("GET /ui/", assetHandler(files))
	handle("GET /ui/meta.json", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(meta)
	}))
}

// assetHandler serves the files under /ui/: no directory listings (404),
// names that are not clean UTF-8 paths (overlong encodings such as
// %c0%ae%c0%ae, "..", backslashes) are a 400, and /ui/ itself redirects to
// the dashboard.
func assetHandler(files fs.FS) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w)
		name, ok := strings.CutPrefix(r.URL.Path, "/ui/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		if name == "" {
			// Relative, so the redirect works behind a path prefix too.
			w.Header().Set("Location", "../")
			w.WriteHeader(http.StatusMovedPermanently)
			return
		}
		name = strings.TrimSuffix(name, "/") // a directory: 404 below
		if !utf8.ValidString(name) || !fs.ValidPath(name) || strings.ContainsAny(name, "\\\x00") {
			http.Error(w, "bad asset path", http.StatusBadRequest)
			return
		}
		f, err := files.Open(name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		rs, seekable := f.(io.ReadSeeker)
		if err != nil || st.IsDir() || !seekable {
			http.NotFound(w, r) // never a directory listing
			return
		}
		// Assets change with the binary: revalidate (embed.FS has no
		// modification time, so no Last-Modified either).
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, st.Name(), st.ModTime(), rs)
	})
}

func setSecurityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
}

// NewMeta is the header of this host's dashboard.
func NewMeta(storeEnabled bool, scrapeInterval float64) Meta {
	host, _ := os.Hostname()
	return Meta{
		Hostname:       host,
		Version:        buildinfo.Version,
		Revision:       buildinfo.Revision(),
		StoreEnabled:   storeEnabled,
		ScrapeInterval: scrapeInterval,
		PID:            os.Getpid(),
	}
}
