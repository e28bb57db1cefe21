package collector

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestStatusJSON: the interval is a float of seconds (interval_seconds), no
// nanosecond field, and the JSON reads back.
func TestStatusJSON(t *testing.T) {
	in := Status{Name: "probe", State: StateRunning, Up: true, Interval: 1500 * time.Millisecond, Duration: 0.25, Series: 3}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"interval_seconds":1.5`) || strings.Contains(string(b), "_ns") {
		t.Errorf("JSON %s: want interval_seconds 1.5 and no *_ns field", b)
	}
	var out Status
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Errorf("round trip: %+v, want %+v", out, in)
	}
}
