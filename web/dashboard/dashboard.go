package dashboard

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"

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
}

// Register adds the dashboard routes: "/" (index), "/ui/..." (assets) and
// "/ui/meta.json".
func Register(handle func(pattern string, h http.Handler), meta Meta) {
	files := Assets()
	static := http.FileServerFS(files)
	handle("GET /{$}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w)
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, files, "index.html")
	}))
	handle("GET /ui/", http.StripPrefix("/ui/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w)
		// Assets change with the binary: revalidate (cheap, ETag-less
		// embed.FS serves Last-Modified zero, so use no-cache).
		w.Header().Set("Cache-Control", "no-cache")
		static.ServeHTTP(w, r)
	})))
	handle("GET /ui/meta.json", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(meta)
	}))
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
	}
}
