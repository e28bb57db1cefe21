package testlab

import (
	"fmt"
	"testing"
)

// fakeTB records what a guard did instead of skipping or failing the real
// test. Methods the guards do not use panic through the nil embedded TB.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped = true
	f.msg = fmt.Sprintf(format, args...)
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = true
	f.msg = fmt.Sprintf(format, args...)
}

func TestGuards(t *testing.T) {
	tests := []struct {
		name        string
		ci          string
		check       func(tb testing.TB)
		wantSkip    bool
		wantFail    bool
		wantMessage string
	}{
		{"met locally", "", func(tb testing.TB) { Require(tb, true, "x") }, false, false, ""},
		{"met in CI", "true", func(tb testing.TB) { Require(tb, true, "x") }, false, false, ""},
		{"unmet locally skips", "", func(tb testing.TB) { Require(tb, false, "CAP_NET_ADMIN") }, true, false, "requirement not met: CAP_NET_ADMIN"},
		{"unmet with CI=false skips", "false", func(tb testing.TB) { Require(tb, false, "CAP_NET_ADMIN") }, true, false, "requirement not met: CAP_NET_ADMIN"},
		{"unmet in CI fails", "true", func(tb testing.TB) { Require(tb, false, "CAP_NET_ADMIN") }, false, true,
			"requirement not met: CAP_NET_ADMIN (CI=true: failing instead of skipping)"},
		{"unmet with CI=1 fails", "1", func(tb testing.TB) { Require(tb, false, "bpf") }, false, true,
			"requirement not met: bpf (CI=true: failing instead of skipping)"},
		{"missing binary locally skips", "", func(tb testing.TB) { RequireBinary(tb, "no-such-tool-testlab") }, true, false, ""},
		{"missing binary in CI fails", "true", func(tb testing.TB) { RequireBinary(tb, "no-such-tool-testlab") }, false, true, ""},
		{"present binary", "true", func(tb testing.TB) { RequireBinary(tb, "sh") }, false, false, ""},
		{"old kernel in CI fails", "true", func(tb testing.TB) { RequireKernel(tb, 999, 0, "future") }, false, true, ""},
		{"old kernel locally skips", "", func(tb testing.TB) { RequireKernel(tb, 999, 0, "future") }, true, false, ""},
		{"kernel ok", "true", func(tb testing.TB) { RequireKernel(tb, 2, 6, "anything") }, false, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			f := &fakeTB{}
			tc.check(f)
			if f.skipped != tc.wantSkip || f.failed != tc.wantFail {
				t.Fatalf("skipped=%v failed=%v (%q), want skipped=%v failed=%v", f.skipped, f.failed, f.msg, tc.wantSkip, tc.wantFail)
			}
			if tc.wantMessage != "" && f.msg != tc.wantMessage {
				t.Errorf("message %q, want %q", f.msg, tc.wantMessage)
			}
		})
	}
}

func TestRequireRootInCI(t *testing.T) {
	if testing.Short() {
		t.Skip("RequireRoot always skips under -short")
	}
	t.Setenv("CI", "true")
	f := &fakeTB{}
	RequireRoot(f)
	if f.skipped {
		t.Fatalf("RequireRoot skipped in CI: %s", f.msg)
	}
}

func TestParseKernelRelease(t *testing.T) {
	tests := []struct {
		in         string
		maj, minor int
		wantErr    bool
	}{
		{"6.18.44-fc-v595", 6, 18, false},
		{"5.15.0-105-generic", 5, 15, false},
		{"6.1", 6, 1, false},
		{"4.19rc1", 4, 19, false},
		{"6", 0, 0, true},
		{"x.y", 0, 0, true},
		{"", 0, 0, true},
	}
	for _, tc := range tests {
		maj, mnr, err := parseKernelRelease(tc.in)
		if (err != nil) != tc.wantErr || maj != tc.maj || mnr != tc.minor {
			t.Errorf("parseKernelRelease(%q) = %d, %d, %v; want %d, %d, err=%v", tc.in, maj, mnr, err, tc.maj, tc.minor, tc.wantErr)
		}
	}
}
