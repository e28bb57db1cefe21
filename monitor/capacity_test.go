package monitor

import "testing"

func TestNICCapacity(t *testing.T) {
	for _, tc := range []struct {
		name               string
		available, tracked uint64
		supported          uint64
		utilisation        float64
	}{
		// The EC2 connection-tracking guide's example shape: available + tracked.
		{"ena instance", 307829, 1171, 309000, 1171.0 / 309000},
		{"nothing tracked", 500000, 0, 500000, 0},
		{"allowance used up", 0, 1200, 1200, 1},
		{"no allowance, no connections", 0, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NICCapacity(tc.available, tc.tracked)
			if c.Supported != tc.supported || c.Utilisation != tc.utilisation ||
				c.Available != tc.available || c.Tracked != tc.tracked {
				t.Errorf("NICCapacity(%d, %d) = %+v, want supported %d utilisation %v",
					tc.available, tc.tracked, c, tc.supported, tc.utilisation)
			}
		})
	}
}
