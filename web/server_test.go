package web

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/netsight/netsight/flow"
)

func serve(s *Server, path string) (int, string) {
	w := httptest.NewRecorder()
	s.Mux().ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	return w.Code, w.Body.String()
}

// The flow API reads whatever the table holds now: a reload that swaps the
// table's source needs no new route.
func TestFlowsHandlerReadsTable(t *testing.T) {
	tab := flow.NewTable(flow.Config{})
	s := New(Options{Listen: "127.0.0.1:0", Gatherer: prometheus.NewRegistry()})
	s.Handle(FlowsPattern, FlowsHandler(tab))
	if code, body := serve(s, "/api/v1/flows"); code != 200 || !strings.Contains(body, `"flows":[]`) {
		t.Fatalf("empty table: %d %q", code, body)
	}
	tab.SetSource("capture")
	tab.Upsert(flow.Record{ID: 1, Local: netip.MustParseAddrPort("10.0.0.1:40000"),
		Remote: netip.MustParseAddrPort("10.0.0.2:5201"), Direction: flow.DirClient, BytesSent: 1234, Retransmits: 5}, time.Now())
	code, body := serve(s, "/api/v1/flows?port=5201")
	if code != 200 || !strings.Contains(body, `"backend":"capture"`) || !strings.Contains(body, `"bytes_sent":1234`) ||
		!strings.Contains(body, `"retransmissions":5`) {
		t.Errorf("after upsert: %d %q", code, body)
	}
	if code, _ := serve(s, "/api/v1/flows?port=0"); code != http.StatusBadRequest {
		t.Errorf("bad filter: %d", code)
	}
}

func TestReadyz(t *testing.T) {
	ready := errors.New("collectors have not finished their first update")
	s := New(Options{Listen: "127.0.0.1:0", Gatherer: prometheus.NewRegistry(), Ready: func() error { return ready }})
	if code, body := serve(s, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "first update") {
		t.Errorf("not ready: %d %q", code, body)
	}
	ready = nil
	if code, _ := serve(s, "/readyz"); code != 200 {
		t.Errorf("ready: %d", code)
	}
	if code, _ := serve(s, "/healthz"); code != 200 {
		t.Errorf("healthz: %d", code)
	}
}

// TestBasicAuthFromWebConfig checks that the exporter-toolkit web config is
// applied: without credentials /metrics is refused.
func TestBasicAuthFromWebConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "web.yml")
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte("basic_auth_users:\n  admin: "+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := New(Options{Listen: "127.0.0.1:0", WebConfigFile: cfg, Gatherer: prometheus.NewRegistry()})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	}()
	url := "http://" + s.Addr().String() + "/metrics"
	var resp *http.Response
	for i := 0; i < 50; i++ { // web.Serve starts asynchronously
		if resp, err = http.Get(url); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without credentials: %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.SetBasicAuth("admin", "secret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("with credentials: %d, want 200", resp.StatusCode)
	}
}
