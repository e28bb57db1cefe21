package store

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netsight/netsight/agent"
	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/web"
)

func env(t *testing.T, enabled bool) (agent.Env, *web.Server) {
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Store.Enabled = &enabled
	reg := prometheus.NewRegistry()
	srv := web.New(web.Options{Gatherer: reg})
	return agent.Env{Config: cfg, Logger: slog.New(slog.DiscardHandler), Gatherer: reg, Registry: reg, Server: srv}, srv
}

func serve(t *testing.T, srv *web.Server, path string) (int, map[string]any) {
	rec := httptest.NewRecorder()
	srv.Mux().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("%s: %v: %s", path, err, rec.Body)
	}
	return rec.Code, m
}

// With store.enabled: false the API answers Prometheus' "unavailable" error
// (not 404), so Grafana and the dashboard say why there is no data.
func TestComponentDisabled(t *testing.T) {
	e, srv := env(t, false)
	c, err := newComponent(e)
	if err != nil || c == nil {
		t.Fatalf("component = %v, %v", c, err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown(context.Background())
	if st := c.(*Handle).Status(); st.State != "disabled" || st.Up {
		t.Errorf("status %+v", st)
	}
	code, m := serve(t, srv, "/api/v1/query?query=1")
	if code != http.StatusServiceUnavailable || m["status"] != "error" || m["errorType"] != ErrUnavailable {
		t.Errorf("disabled query: %d %v", code, m)
	}
	if code, m := serve(t, srv, "/api/v1/status/buildinfo"); code != 200 || m["status"] != "success" {
		t.Errorf("buildinfo: %d %v", code, m)
	}
}

// Enabled: the component opens <data_dir>/tsdb, ingests on Start, serves the
// API on routes that survive a reload's ResetRoutes, and shuts down cleanly.
func TestComponentEnabled(t *testing.T) {
	e, srv := env(t, true)
	c, err := newComponent(e)
	if err != nil || c == nil {
		t.Fatalf("component = %v, %v", c, err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.ResetRoutes()
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
		if _, err := c.(*Handle).Store().Ingest(context.Background()); err != nil {
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
