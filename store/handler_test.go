package store

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netsight/netsight/config"
)

// agentHandle builds the handle as the agent does and mounts its routes.
func agentHandle(t *testing.T, enabled bool) (*Handle, *http.ServeMux) {
	cfg := config.Defaults()
	cfg.Store.Enabled = &enabled
	reg := prometheus.NewRegistry()
	h := NewAgentHandle(cfg.Store, t.TempDir(), reg, reg, slog.New(slog.DiscardHandler))
	mux := http.NewServeMux()
	h.Register(mux.Handle)
	return h, mux
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
func TestAgentHandleDisabled(t *testing.T) {
	h, srv := agentHandle(t, false)
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer h.Shutdown(context.Background())
	if st := h.Status(); st.State != "disabled" || st.Up {
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

// Enabled: the handle opens <data_dir>/tsdb, ingests on Start, serves the
// API on the routes it registered once, and shuts down cleanly (twice).
func TestAgentHandleEnabled(t *testing.T) {
	h, srv := agentHandle(t, true)
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
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
		if _, err := h.Store().Ingest(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if r := m["data"].(map[string]any)["result"].([]any); len(r) != 1 {
		t.Fatalf("no store self-metric after ingest: %v", m)
	}
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
}
