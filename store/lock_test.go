package store

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/netsight/netsight/internal/testlab"
)

// A second holder of the data dir is told which pid holds it (the issue's
// second agent saw "lockfile replaced" then "resource temporarily
// unavailable").
func TestLockDirSecondHolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	l1, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = LockDir(dir)
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second lock: %v, want *LockedError", err)
	}
	want := fmt.Sprintf("another netsight (pid %d) holds %s", os.Getpid(), dir)
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if err := l1.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := LockDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	_ = l2.Release()
	_ = l2.Release() // idempotent
}

// A lock held by another process (flock(1) from util-linux) is seen too,
// and a stale pid file left by a dead process does not block.
func TestLockDirOtherProcess(t *testing.T) {
	flockBin := testlab.RequireBinary(t, "flock")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, LockFile), []byte("999999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := LockDir(dir) // stale file, no holder
	if err != nil {
		t.Fatalf("stale lock file blocked: %v", err)
	}
	_ = l.Release()
	cmd := exec.Command(flockBin, "-n", filepath.Join(dir, LockFile), "sh", "-c", "echo $$ > "+filepath.Join(dir, LockFile)+"; sleep 10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for readPID(filepath.Join(dir, LockFile)) == 0 { // the holder writes its pid once locked
		if time.Now().After(deadline) {
			t.Fatal("flock(1) never took the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, err = LockDir(dir)
	want := fmt.Sprintf("another netsight (pid %d) holds %s", readPID(filepath.Join(dir, LockFile)), dir)
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
}
