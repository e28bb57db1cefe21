package store

import (
	"math"
	"strconv"
	"testing"
	"time"
)

// FuzzParseParams throws arbitrary strings at the parsers of the query
// API's time, duration (step, range) and limit parameters: they never
// panic, and what parses is consistent: a time given as Unix seconds comes
// back to the same millisecond, a duration in seconds is the same number
// of seconds, a limit is never negative.
func FuzzParseParams(f *testing.F) {
	for _, s := range []string{"0", "1700000000", "1700000000.123", "-1", "1e10", "NaN", "Inf", "-Inf", "1e300",
		"2020-01-01T00:00:00Z", "2020-01-01T00:00:00.123456789+02:00", "5m", "1h30m", "1d", "1y2w", "0.001", "15",
		"-5s", "9223372036", "9223372037", "", " ", "1_000", "0x10", "+3"} {
		f.Add(s)
	}
	f.Add(minTime.Format(time.RFC3339Nano))
	f.Add(maxTime.Format(time.RFC3339Nano))
	f.Fuzz(func(t *testing.T, s string) {
		if tm, err := parseTime(s); err == nil {
			if v, ferr := strconv.ParseFloat(s, 64); ferr == nil && math.Abs(v) < 1e10 {
				if got, want := tm.UnixMilli(), int64(math.Round(v*1000)); got-want > 1 || want-got > 1 {
					t.Fatalf("parseTime(%q) = %v (%d ms), want %d ms", s, tm, got, want)
				}
			}
		}
		if d, err := parseDuration(s); err == nil {
			if v, ferr := strconv.ParseFloat(s, 64); ferr == nil {
				if math.Abs(d.Seconds()-v) > 1e-6*math.Max(1, math.Abs(v)) {
					t.Fatalf("parseDuration(%q) = %v, want %g s", s, d, v)
				}
			}
		}
		if n, err := parseLimit(s); err == nil && n < 0 {
			t.Fatalf("parseLimit(%q) = %d", s, n)
		}
	})
}
