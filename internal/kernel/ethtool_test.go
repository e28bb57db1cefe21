package kernel

import (
	"strings"
	"testing"
)

func TestParseEthtoolStats(t *testing.T) {
	in := "NIC statistics:\n     tx_timeout: 0\n     conntrack_allowance_available: 307829\n     rx-0.packets: 12\n\n"
	got, err := ParseEthtoolStats([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []NICStat{{"tx_timeout", 0}, {"conntrack_allowance_available", 307829}, {"rx-0.packets", 12}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("stat %d = %v, want %v", i, got[i], want[i])
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"NIC statistics:\n  novalue\n", `line 2: want "name: value"`},
		{"a: -1\n", "line 1: value of a: \"-1\" is not an unsigned integer"},
		{"a b: 1\n", `line 1: statistic name "a b" contains spaces`},
		{"a: 99999999999999999999\n", "not an unsigned integer"},
	} {
		if _, err := ParseEthtoolStats([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func FuzzParseEthtoolStats(f *testing.F) {
	f.Add([]byte("NIC statistics:\n     tx_timeout: 0\n     queue_0_tx_cnt: 123665045\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		stats, err := ParseEthtoolStats(b)
		if err != nil {
			return
		}
		for _, s := range stats {
			if s.Name == "" || strings.ContainsAny(s.Name, " \t") {
				t.Fatalf("bad name %q", s.Name)
			}
		}
	})
}
