package top

import "github.com/charmbracelet/lipgloss"

// Styles are the view's looks. Colours are the 16 basic ANSI ones, which a
// terminal's theme maps to something readable on its own background (dark
// or light); meaning never rests on colour alone (a sorted column is also
// marked, a warning also has a word).
type Styles struct {
	Title, Header, Selected, Help, Faint lipgloss.Style
	Bad, Warn, Good                      lipgloss.Style
	Plain                                lipgloss.Style
}

// NewStyles builds the styles on renderer r (lipgloss's default when nil).
// Without colour (NO_COLOR) only bold, reverse and faint remain.
func NewStyles(r *lipgloss.Renderer, colour bool) Styles {
	if r == nil {
		r = lipgloss.DefaultRenderer()
	}
	s := Styles{
		Title:    r.NewStyle().Bold(true),
		Header:   r.NewStyle().Reverse(true),
		Selected: r.NewStyle().Reverse(true).Bold(true),
		Help:     r.NewStyle().Faint(true),
		Faint:    r.NewStyle().Faint(true),
		Bad:      r.NewStyle().Bold(true),
		Warn:     r.NewStyle(),
		Good:     r.NewStyle(),
		Plain:    r.NewStyle(),
	}
	if colour {
		s.Bad = s.Bad.Foreground(lipgloss.Color("1"))   // red
		s.Warn = s.Warn.Foreground(lipgloss.Color("3")) // yellow
		s.Good = s.Good.Foreground(lipgloss.Color("2")) // green
	}
	return s
}
