package main

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/netsight/netsight/internal/hostcheck"
	"github.com/netsight/netsight/internal/termcolor"
	"github.com/netsight/netsight/probe"
)

func TestVersionHelpHasNoEmptyFlagsHeader(t *testing.T) {
	code, out, _ := runCmd("version", "--help")
	if code != 0 || strings.Contains(out, "Flags:") || !strings.Contains(out, "Usage: netsight version") {
		t.Errorf("exit %d:\n%s", code, out)
	}
	// A command with flags keeps its header.
	if _, out, _ := runCmd("check", "--help"); !strings.Contains(out, "Flags:\n  -config") {
		t.Errorf("check --help:\n%s", out)
	}
}

func TestCheckTextSummary(t *testing.T) {
	ok := hostcheck.Report{CanRun: true, Results: []hostcheck.Result{{Check: "kernel", Verdict: hostcheck.OK, Detail: "6.18"}}}
	var b strings.Builder
	writeCheckText(&b, termcolor.Painter{}, ok)
	if !strings.Contains(b.String(), "All features available.") {
		t.Errorf("all ok:\n%s", b.String())
	}
	warn := ok
	warn.Results = append(warn.Results, hostcheck.Result{Check: "btf", Verdict: hostcheck.Warn, Detail: "no BTF", Affects: "flows"})
	b.Reset()
	writeCheckText(&b, termcolor.Always(), warn)
	out := b.String()
	if strings.Contains(out, "All features available") || !strings.Contains(out, "1 check(s) not ok") ||
		!strings.Contains(out, "\x1b[33mwarn\x1b[0m  btf") || !strings.Contains(out, "[affects: flows]") {
		t.Errorf("with a warning:\n%q", out)
	}
}

func TestProbeLine(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		target probe.Target
		r      probe.Result
		want   string
	}{
		{probe.Target{Name: "127.0.0.1", Host: "127.0.0.1"}, probe.Result{Outcome: probe.OK, Addr: lo, HasRTT: true, RTT: 119 * time.Microsecond},
			"127.0.0.1: probe 1 ok rtt=0.119 ms"},
		{probe.Target{Name: "db:5432", Host: "db"}, probe.Result{Outcome: probe.Refused, Addr: lo, Err: errors.New("connection refused")},
			"db:5432 (127.0.0.1): probe 1 refused: connection refused"},
		{probe.Target{Name: "10.0.0.9", Host: "10.0.0.9"}, probe.Result{Outcome: probe.Timeout},
			"10.0.0.9: probe 1 timeout"},
	}
	for _, tt := range tests {
		if got := probeLine(termcolor.Painter{}, tt.target, tt.r, 1); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

// TestColourHonoursNoColor: colour only when forced (a terminal in real
// use), never with NO_COLOR, never into a pipe.
func TestColourHonoursNoColor(t *testing.T) {
	run := func() string {
		_, out, _ := runCmd("probe", "--count", "1", "--interval", "10ms", "--tcp", "127.0.0.1:1")
		return out
	}
	if out := run(); strings.Contains(out, "\x1b[") {
		t.Errorf("colour into a pipe:\n%q", out)
	}
	t.Setenv("CLICOLOR_FORCE", "1")
	if out := run(); !strings.Contains(out, "\x1b[1;31mrefused\x1b[0m") {
		t.Errorf("forced colour: refused not red:\n%q", out)
	}
	t.Setenv("NO_COLOR", "1")
	if out := run(); strings.Contains(out, "\x1b[") {
		t.Errorf("colour despite NO_COLOR:\n%q", out)
	}
}
