package termcolor

import (
	"bytes"
	"os"
	"testing"
)

func TestEnabled(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	var buf bytes.Buffer
	tests := []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"pipe", nil, false},
		{"force", map[string]string{"CLICOLOR_FORCE": "1"}, true},
		{"force 0", map[string]string{"CLICOLOR_FORCE": "0"}, false},
		{"NO_COLOR beats force", map[string]string{"CLICOLOR_FORCE": "1", "NO_COLOR": "1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Enabled(&buf, env(tt.env)); got != tt.want {
				t.Errorf("Enabled = %v, want %v", got, tt.want)
			}
		})
	}
	// A regular file is not a terminal.
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("a regular file counts as a terminal")
	}
	if Enabled(f, env(map[string]string{"TERM": "xterm"})) {
		t.Error("colour enabled for a regular file")
	}
}

func TestPaint(t *testing.T) {
	if got := (Painter{}).Verdict("fail"); got != "fail" {
		t.Errorf("off painter: %q", got)
	}
	p := Always()
	for word, want := range map[string]string{
		"ok":   "\x1b[32mok\x1b[0m",
		"warn": "\x1b[33mwarn\x1b[0m",
		"fail": "\x1b[1;31mfail\x1b[0m",
		"info": "info",
	} {
		if got := p.Verdict(word); got != want {
			t.Errorf("Verdict(%q) = %q, want %q", word, got, want)
		}
	}
	if got := p.Paint(Fail, ""); got != "" {
		t.Errorf("empty string painted: %q", got)
	}
}
