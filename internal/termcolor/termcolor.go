package termcolor

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Level is the severity a piece of output is coloured by.
type Level int

// Levels, from harmless to bad.
const (
	None Level = iota
	OK
	Warn
	Fail
	Dim
)

// SGR codes: green, yellow, red (bold), faint.
var codes = map[Level]string{OK: "\x1b[32m", Warn: "\x1b[33m", Fail: "\x1b[1;31m", Dim: "\x1b[2m"}

const reset = "\x1b[0m"

// Painter colours strings for one writer; the zero value never colours.
type Painter struct{ on bool }

// For returns a Painter that colours when w is a terminal and the
// environment allows it (see the package doc).
func For(w io.Writer) Painter { return Painter{on: Enabled(w, os.Getenv)} }

// Always returns a Painter that always colours (tests).
func Always() Painter { return Painter{on: true} }

// Enabled reports whether output to w should be coloured, reading the
// environment through getenv.
func Enabled(w io.Writer, getenv func(string) string) bool {
	if getenv("NO_COLOR") != "" {
		return false
	}
	if getenv("CLICOLOR_FORCE") != "" && getenv("CLICOLOR_FORCE") != "0" {
		return true
	}
	if getenv("TERM") == "dumb" {
		return false
	}
	return IsTerminal(w)
}

// IsTerminal reports whether w is an *os.File on a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// On reports whether p colours.
func (p Painter) On() bool { return p.on }

// Paint wraps s in the colour of l (s unchanged when p is off or l is None).
func (p Painter) Paint(l Level, s string) string {
	c, ok := codes[l]
	if !p.on || !ok || s == "" {
		return s
	}
	return c + s + reset
}

// Verdict colours a verdict word by its meaning: "ok" green, "warn" yellow,
// "fail"/"crit"/"down" red; anything else unchanged.
func (p Painter) Verdict(word string) string { return p.Paint(LevelOf(word), word) }

// LevelOf maps a verdict word to its Level.
func LevelOf(word string) Level {
	switch word {
	case "ok", "up", "healthy", "running":
		return OK
	case "warn", "warning", "degraded", "idle":
		return Warn
	case "fail", "failed", "crit", "critical", "down", "error":
		return Fail
	}
	return None
}
