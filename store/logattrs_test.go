package store

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestLogNoDuplicateComponent: the agent hands the store a logger with
// component=store; the TSDB's and PromQL's own lines add subsystem=, never
// a second component= (a log line with component=store component=tsdb).
func TestLogNoDuplicateComponent(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})).With("component", "store")
	dir := t.TempDir()
	for range 2 { // the second open replays the WAL: the TSDB logs
		s, err := Open(Options{Dir: dir, Gatherer: prometheus.NewRegistry(), Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Ingest(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	sub := 0
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if strings.Count(line, " component=") > 1 {
			t.Errorf("duplicated attribute: %s", line)
		}
		if strings.Contains(line, "subsystem=tsdb") {
			sub++
		}
	}
	if sub == 0 {
		t.Errorf("no TSDB line logged (the test would not see a duplicate):\n%s", buf.String())
	}
}
