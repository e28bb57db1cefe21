package monitor

import (
	"testing"
	"time"
)

// TestCoveringSpan: Windows covers the whole window just after a slot
// boundary too (it used to shrink to the elapsed part of the current slot).
func TestCoveringSpan(t *testing.T) {
	for _, tc := range []struct {
		now      int64
		window   time.Duration
		from, to int64
	}{
		{now: 100, window: 10 * time.Second, from: 9, to: 10}, // 90..100: 10 s
		{now: 101, window: 10 * time.Second, from: 9, to: 10}, // 90..101: 11 s
		{now: 109, window: 10 * time.Second, from: 9, to: 10}, // 90..109: 19 s
		{now: 125, window: 60 * time.Second, from: 6, to: 12}, // 60..125
		{now: 120, window: 60 * time.Second, from: 6, to: 12}, // 60..120
	} {
		from, to := coveringSpan(time.Unix(tc.now, 0), tc.window, fineWidth)
		if from != tc.from || to != tc.to {
			t.Errorf("now %d window %v: [%d, %d], want [%d, %d]", tc.now, tc.window, from, to, tc.from, tc.to)
		}
		if covered := tc.now - from*fineWidth; covered < int64(tc.window/time.Second) {
			t.Errorf("now %d window %v: covers %d s only", tc.now, tc.window, covered)
		}
	}
}
