package store

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netsight/netsight/internal/testlab"
)

// fill writes zeros to path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// A full disk (a small tmpfs) makes every ingest round fail. For an hour of
// 5 s rounds the log gets one line per backoff period (1m doubling to 30m:
// 6 lines, not 720), the store status says what fails, and freeing space
// gives one "recovered after N failures" line.
func TestIngestFullDiskRateLimited(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs: runs without -short")
	}
	testlab.RequireRoot(t)
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() })

	var logs syncBuffer
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "test_gauge", Help: "x"}, []string{"i"})
	reg.MustRegister(g)
	for i := range 200 {
		g.WithLabelValues(strings.Repeat("x", 40) + string(rune('a'+i%26)) + time.Duration(i).String()).Set(float64(i))
	}
	now := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	h := NewHandle(HandleOptions{
		Options: Options{Dir: filepath.Join(mnt, SubDir), Gatherer: reg, Registerer: reg,
			Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now }},
		LockDir: mnt,
	})
	// Start opens the store and runs its first ingest on the real ticker;
	// drive the rounds by hand through the same path the loop takes.
	h.opts.Interval = time.Hour
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer h.Shutdown(context.Background())
	s := h.Store()
	if s == nil {
		t.Fatalf("store not open: %+v", h.Status())
	}
	round := func() error {
		now = now.Add(5 * time.Second)
		_, err := s.Ingest(context.Background())
		s.logIngest(err)
		return err
	}
	if err := round(); err != nil {
		t.Fatalf("ingest before the disk is full: %v", err)
	}
	filler := filepath.Join(mnt, "filler")
	fill(t, filler)
	var failed int
	for range 720 { // one hour of 5 s rounds
		if err := round(); err != nil {
			failed++
			if !strings.Contains(err.Error(), "no space left on device") {
				t.Fatalf("ingest error %v, want ENOSPC", err)
			}
		}
	}
	if failed < 700 {
		t.Fatalf("only %d of 720 rounds failed on a full disk", failed)
	}
	st := h.Status()
	if !st.Up || st.IngestFailures != failed || !strings.Contains(st.IngestError, "no space left on device") {
		t.Errorf("status while the disk is full: %+v", st)
	}
	lines := strings.Count(logs.String(), `msg="store ingest failed"`)
	if lines < 5 || lines > 7 {
		t.Errorf("%d log lines for %d failures in an hour, want ~6 (one per backoff period):\n%s", lines, failed, logs.String())
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	var err error
	for range 5 { // the WAL may need a round to reopen its segment
		if err = round(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("ingest after freeing space: %v", err)
	}
	if !strings.Contains(logs.String(), "store ingest failed: recovered after ") {
		t.Errorf("no recovered line:\n%s", logs.String())
	}
	if st := h.Status(); st.IngestFailures != 0 || st.IngestError != "" {
		t.Errorf("status after recovery: %+v", st)
	}
}
