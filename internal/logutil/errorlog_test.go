package logutil

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// A failure every 5 s for an hour (a full disk under the store's ingest
// loop) gives one line per backoff period, 1m doubling to 30m, not 720
// lines; the first success gives one "recovered after 720 failures" line.
func TestErrorLogBackoff(t *testing.T) {
	var buf bytes.Buffer
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	l := New(slog.New(slog.NewTextHandler(&buf, nil)), "store ingest failed", WithClock(c.now))
	err := errors.New("write /data/wal/00000001: no space left on device")
	var loggedAt []time.Duration
	start := c.t
	for i := 0; i < 720; i++ {
		if l.Fail(err) {
			loggedAt = append(loggedAt, c.t.Sub(start))
		}
		c.t = c.t.Add(5 * time.Second)
	}
	want := []time.Duration{0, time.Minute, 3 * time.Minute, 7 * time.Minute, 15 * time.Minute, 31 * time.Minute}
	if len(loggedAt) != len(want) {
		t.Fatalf("logged at %v, want %v", loggedAt, want)
	}
	for i := range want {
		if loggedAt[i] != want[i] {
			t.Errorf("line %d at %v, want %v", i, loggedAt[i], want[i])
		}
	}
	if l.Failures() != 720 {
		t.Errorf("failures = %d", l.Failures())
	}
	if !l.OK() {
		t.Fatal("OK after failures did not log")
	}
	if l.OK() {
		t.Error("second OK logged again")
	}
	out := buf.String()
	if n := strings.Count(out, "\n"); n != len(want)+1 {
		t.Errorf("%d lines, want %d:\n%s", n, len(want)+1, out)
	}
	if !strings.Contains(out, `msg="store ingest failed: recovered after 720 failures"`) {
		t.Errorf("no recovered line:\n%s", out)
	}
	if !strings.Contains(out, "failures=13 not_logged=11") {
		t.Errorf("second line lacks the counts:\n%s", out)
	}
	// After recovery the next failure is logged at once and the backoff
	// starts again from the minimum.
	buf.Reset()
	if !l.Fail(err) || l.Fail(err) {
		t.Error("backoff not reset after recovery")
	}
}

func TestErrorLogPeriods(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	l := New(nil, "x", WithClock(c.now), WithPeriods(time.Second, 2*time.Second))
	var n int
	for i := 0; i < 100; i++ { // 10 s of failures every 100 ms
		if l.Fail(errors.New("e")) {
			n++
		}
		c.t = c.t.Add(100 * time.Millisecond)
	}
	// t=0, 1s, 3s, 5s, 7s, 9s
	if n != 6 {
		t.Errorf("%d lines in 10 s with periods 1s..2s, want 6", n)
	}
}
