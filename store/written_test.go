package store

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The tracker's total follows file operations the way the TSDB does them:
// appends, a renamed directory, a truncated or deleted file; files present
// at start are the baseline.
func TestWrittenTracker(t *testing.T) {
	dir := t.TempDir()
	path := func(p string) string { return filepath.Join(dir, p) }
	write := func(p string, n int, flag int) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path(p)), 0o750); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path(p), flag|os.O_CREATE|os.O_WRONLY, 0o640)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	write("wal/00000000", 1000, os.O_APPEND) // before start: baseline
	var w writtenTracker
	w.start(dir)
	steps := []struct {
		name        string
		do          func()
		used, total int64
	}{
		{"nothing", func() {}, 1000, 0},
		{"append to a baseline file", func() { write("wal/00000000", 300, os.O_APPEND) }, 1300, 300},
		{"new segment", func() { write("wal/00000001", 200, os.O_APPEND) }, 1500, 500},
		{"block written in a tmp dir", func() { write("01ABC.tmp-for-creation/chunks/000001", 700, 0) }, 2200, 1200},
		{"tmp dir renamed to the block", func() {
			if err := os.Rename(path("01ABC.tmp-for-creation"), path("01ABC")); err != nil {
				t.Fatal(err)
			}
		}, 2200, 1200},
		{"old segment deleted", func() { _ = os.Remove(path("wal/00000000")) }, 900, 1200},
		{"segment truncated and rewritten", func() { write("wal/00000001", 50, os.O_TRUNC) }, 750, 1250},
	}
	for _, s := range steps {
		s.do()
		used, total := w.walk(dir)
		if used != s.used || total != s.total {
			t.Errorf("%s: used %d written %d, want %d and %d", s.name, used, total, s.used, s.total)
		}
	}
}

// In the real store, netsight_store_bytes_written_total equals the growth
// of the TSDB directory while nothing is deleted (no compaction yet).
func TestBytesWrittenMatchesGrowth(t *testing.T) {
	ts := newTestStore(t)
	var before int64
	var tr writtenTracker
	before, _ = tr.walk(ts.opts.Dir)
	ts.fill(t, 50)
	after, _ := tr.walk(ts.opts.Dir)
	reg := prometheus.NewRegistry()
	reg.MustRegister(ts.m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got float64
	for _, mf := range mfs {
		if mf.GetName() == "netsight_store_bytes_written_total" {
			got = counterValue(mf.GetMetric()[0])
		}
	}
	if got <= 0 || int64(got) != after-before {
		t.Errorf("bytes written = %v, directory grew by %d (from %d to %d)", got, after-before, before, after)
	}
}

func counterValue(m *dto.Metric) float64 { return m.GetCounter().GetValue() }
