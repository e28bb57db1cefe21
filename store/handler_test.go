package store

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// mount mounts h on every APIRoutes pattern, as the agent does.
func mount(h http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	for _, p := range APIRoutes {
		mux.Handle(p, h)
	}
	return mux
}

func serve(t *testing.T, srv *http.ServeMux, path string) (int, map[string]any) {
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("%s: %v: %s", path, err, rec.Body)
	}
	return rec.Code, m
}

// With store.enabled: false the API answers Prometheus' "unavailable" error
// (not 404), so Grafana and the dashboard say why there is no data.
func TestDisabledHandler(t *testing.T) {
	srv := mount(DisabledHandler())
	code, m := serve(t, srv, "/api/v1/query?query=1")
	if code != http.StatusServiceUnavailable || m["status"] != "error" || m["errorType"] != ErrUnavailable {
		t.Errorf("disabled query: %d %v", code, m)
	}
	if code, m := serve(t, srv, "/api/v1/status/buildinfo"); code != 200 || m["status"] != "success" {
		t.Errorf("buildinfo: %d %v", code, m)
	}
}

// Enabled: the store opens its directory, ingests on Start, its Handler
// serves the API, and it shuts down cleanly.
func TestHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := Open(Options{Dir: t.TempDir(), Interval: 5 * time.Second, Retention: time.Hour,
		Gatherer: reg, Registerer: reg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := mount(Handler(c, slog.New(slog.DiscardHandler)))
	if code, m := serve(t, srv, "/api/v1/status/buildinfo"); code != 200 || m["status"] != "success" {
		t.Errorf("buildinfo: %d %v", code, m)
	}
	var m map[string]any
	for range 100 {
		var code int
		code, m = serve(t, srv, "/api/v1/query?query=netsight_store_scrape_interval_seconds")
		if code != 200 {
			t.Fatalf("query: %d %v", code, m)
		}
		if r := m["data"].(map[string]any)["result"].([]any); len(r) == 1 {
			break
		}
		// The first ingest gathers before the store's own metrics are
		// registered in the result; the second (5 s later) has them. Ingest now.
		if _, err := c.Ingest(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if r := m["data"].(map[string]any)["result"].([]any); len(r) != 1 {
		t.Fatalf("no store self-metric after ingest: %v", m)
	}
	if err := c.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Shutdown(context.Background()); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
}
