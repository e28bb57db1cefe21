package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// syncBuffer is a log sink safe for the handle's retry goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// breakWAL writes a store in dataDir/tsdb and leaves its WAL with a gap in
// the segment numbers (00000000 ... then 00000007), the corruption the
// issue saw kill the agent with exit 1.
func breakWAL(t *testing.T, dataDir string) string {
	t.Helper()
	dir := filepath.Join(dataDir, SubDir)
	reg := prometheus.NewRegistry()
	s, err := Open(Options{Dir: dir, Gatherer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ingest(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "wal", "00000007"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newHandle(t *testing.T, dataDir string, logs io.Writer, retry time.Duration) (*Handle, *prometheus.Registry, *http.ServeMux) {
	t.Helper()
	reg := prometheus.NewRegistry()
	h := NewHandle(HandleOptions{
		Options: Options{Dir: filepath.Join(dataDir, SubDir), Gatherer: reg, Registerer: reg,
			Logger: slog.New(slog.NewTextHandler(logs, nil))},
		LockDir:  dataDir,
		RetryMin: retry, RetryMax: retry,
	})
	mux := http.NewServeMux()
	h.Register(mux.Handle)
	t.Cleanup(func() {
		if err := h.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return h, reg, mux
}

func getJSON(t *testing.T, mux http.Handler, path string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("%s: %v: %s", path, err, rec.Body)
	}
	return rec.Code, m
}

func waitUp(t *testing.T, h *Handle) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !h.Status().Up {
		if time.Now().After(deadline) {
			t.Fatalf("store never came up: %+v", h.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A store that cannot open (non-sequential WAL segments) does not stop the
// agent: Start succeeds, the store is reported down with the reason and the
// hint in netsight_store_up, /api/v1/status/store and the query API's
// "unavailable" error, and it comes up by itself once the directory is
// moved aside.
func TestHandleCorruptWALIsNotFatal(t *testing.T) {
	dataDir := t.TempDir()
	dir := breakWAL(t, dataDir)
	var logs syncBuffer
	h, reg, mux := newHandle(t, dataDir, &logs, 200*time.Millisecond)
	if err := h.Start(context.Background()); err != nil {
		t.Fatalf("Start failed the agent: %v", err)
	}
	st := h.Status()
	hint := "move " + dir + " aside or set store.enabled: false"
	if st.Up || st.State != "down" || !strings.Contains(st.Reason, "not sequential") || st.Hint != hint {
		t.Fatalf("status %+v", st)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP netsight_store_up 1 when the embedded store is open and accepting samples, 0 when it is down or disabled.
# TYPE netsight_store_up gauge
netsight_store_up 0
`), "netsight_store_up"); err != nil {
		t.Error(err)
	}
	code, m := getJSON(t, mux, "/api/v1/status/store")
	data, _ := m["data"].(map[string]any)
	if code != 200 || data["state"] != "down" || data["hint"] != hint {
		t.Errorf("status route: %d %v", code, m)
	}
	code, m = getJSON(t, mux, "/api/v1/query?query=up")
	if code != http.StatusServiceUnavailable || m["errorType"] != ErrUnavailable ||
		!strings.Contains(m["error"].(string), "not sequential") || !strings.Contains(m["error"].(string), hint) {
		t.Errorf("query while down: %d %v", code, m)
	}
	if !strings.Contains(logs.String(), "hint=\"move "+dir+" aside") {
		t.Errorf("log lacks the hint:\n%s", logs.String())
	}

	// The operator moves the directory aside: the next retry opens a fresh store.
	if err := os.Rename(dir, dir+".broken"); err != nil {
		t.Fatal(err)
	}
	waitUp(t, h)
	if code, m := getJSON(t, mux, "/api/v1/query?query=1"); code != 200 {
		t.Errorf("query after recovery: %d %v", code, m)
	}
	if n := testutil.ToFloat64(h.failures); n < 1 {
		t.Errorf("open failures %v", n)
	}
	if !strings.Contains(logs.String(), "recovered after") {
		t.Errorf("no recovered line:\n%s", logs.String())
	}
}

// A second agent on the same data dir names the holder's pid and takes
// over once the first one stops.
func TestHandleSecondAgentOnDataDir(t *testing.T) {
	dataDir := t.TempDir()
	h1, _, _ := newHandle(t, dataDir, io.Discard, time.Second)
	if err := h1.Start(context.Background()); err != nil || !h1.Status().Up {
		t.Fatalf("first: %v %+v", err, h1.Status())
	}
	var logs syncBuffer
	h2, _, mux := newHandle(t, dataDir, &logs, 100*time.Millisecond)
	if err := h2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "another netsight (pid " + itoa(os.Getpid()) + ") holds " + dataDir
	if st := h2.Status(); st.Up || st.Reason != want {
		t.Fatalf("second: %+v, want reason %q", st, want)
	}
	if code, m := getJSON(t, mux, "/api/v1/query?query=1"); code != http.StatusServiceUnavailable || !strings.Contains(m["error"].(string), want) {
		t.Errorf("query on second: %d %v", code, m)
	}
	if strings.Contains(logs.String(), "lockfile replaced") || strings.Contains(logs.String(), "temporarily unavailable") {
		t.Errorf("tsdb lock noise in the log:\n%s", logs.String())
	}
	if err := h1.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitUp(t, h2)
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// Shutdown while the handle is retrying returns promptly; Shutdown without
// Start and twice is fine.
func TestHandleShutdownWhileRetrying(t *testing.T) {
	dataDir := t.TempDir()
	breakWAL(t, dataDir)
	h, _, _ := newHandle(t, dataDir, io.Discard, time.Hour)
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	h2, _, _ := newHandle(t, t.TempDir(), io.Discard, time.Hour)
	if err := h2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h2.Start(context.Background()); err == nil {
		t.Error("start after shutdown accepted")
	}
}

// Every route the query API registers is one the Handle forwards.
func TestHandleRoutesCoverAPI(t *testing.T) {
	ts := newTestStore(t)
	known := map[string]bool{}
	for _, p := range Routes() {
		known[p] = true
	}
	NewAPI(ts.Store, BuildInfo{}, nil).Register(func(p string, _ http.Handler) {
		if !known[p] {
			t.Errorf("API route %q is not in store.APIRoutes: the Handle would not serve it", p)
		}
	})
}

// The hint fits the failure: a held lock, a permission problem, or anything
// else in the store directory (move it aside).
func TestHandleHints(t *testing.T) {
	h := NewHandle(HandleOptions{Options: Options{Dir: "/data/tsdb", Gatherer: prometheus.NewRegistry()}})
	tests := []struct {
		err  error
		want string
	}{
		{&LockedError{Dir: "/data", PID: 42}, "stop the other agent, give this one another --data-dir, or set store.enabled: false (retrying every 10m0s at most)"},
		{fmt.Errorf("create data directory: %w", &fs.PathError{Op: "mkdir", Path: "/data", Err: syscall.EACCES}), "give the agent write access to /data, choose another --data-dir, or set store.enabled: false"},
		{errors.New("open tsdb in /data/tsdb: get segment range: segments are not sequential"), "move /data/tsdb aside or set store.enabled: false"},
	}
	for _, tt := range tests {
		if got := h.hintFor(tt.err); got != tt.want {
			t.Errorf("hint for %v = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// BenchmarkHandleDispatch measures what the Handle adds to an API request
// (a read lock and a map look-up) against calling the API directly.
func BenchmarkHandleDispatch(b *testing.B) {
	dataDir := b.TempDir()
	reg := prometheus.NewRegistry()
	h := NewHandle(HandleOptions{Options: Options{Dir: filepath.Join(dataDir, SubDir), Gatherer: reg}, LockDir: dataDir})
	if err := h.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer h.Shutdown(context.Background())
	via := http.NewServeMux()
	h.Register(via.Handle)
	direct := http.NewServeMux()
	NewAPI(h.Store(), BuildInfo{}, nil).Register(direct.Handle)
	for _, bc := range []struct {
		name string
		mux  http.Handler
	}{{"direct", direct}, {"handle", via}} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/api/v1/labels", nil)
			for b.Loop() {
				rec := httptest.NewRecorder()
				bc.mux.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}
