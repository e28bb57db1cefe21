package config

import (
	"strings"
	"time"
)

// Documented ranges of every duration and size in the root config (also in
// deploy/config/netsight.yaml and README: Configuration).
const (
	MinReadTimeout     = time.Second
	MaxReadTimeout     = 10 * time.Minute
	MinScrapeInterval  = time.Second
	MaxScrapeInterval  = 2 * time.Minute // well inside PromQL's 5m lookback
	MinRetention       = time.Hour
	MaxRetention       = 10 * 365 * 24 * time.Hour
	MinRetentionBytes  = 64 << 20 // a few WAL segments (16 MiB each)
	MaxRetentionBytes  = 1 << 50  // 1 PiB
	MinCollectorPeriod = 100 * time.Millisecond
	MaxCollectorPeriod = time.Hour
)

// durationIn checks min <= v <= max.
func durationIn(path string, v, lo, hi time.Duration) error {
	if v < lo || v > hi {
		return Errorf(path, "must be between %s and %s, got %s", FormatDuration(lo), FormatDuration(hi), FormatDuration(v))
	}
	return nil
}

// FormatDuration prints d without zero trailing units: 100000h, 1m30s, 500ms.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
