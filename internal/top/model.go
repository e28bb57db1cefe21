package top

import (
	"context"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
)

// Pane is what the body shows.
type Pane int

// Panes, in the order tab cycles through them.
const (
	PaneConnections Pane = iota
	PaneRemotes
	PaneHost
	numPanes
)

var paneNames = [...]string{"connections", "remotes", "host"}

func (p Pane) String() string { return paneNames[p] }

// Options configure a Model.
type Options struct {
	Source Source
	// Context bounds every snapshot (the program's lifetime).
	Context context.Context
	// Interval between snapshots (default 1s).
	Interval time.Duration
	Sort     SortKey
	Filter   Filter
	// Names name namespaces and containers.
	Names  Names
	Styles Styles
}

type keyMap struct {
	Retrans, RTT, Throughput, Failures, NextSort   key.Binding
	Filter, ClearFilter, Pause, Remotes, Host, Tab key.Binding
	Up, Down, PageUp, PageDown, Home               key.Binding
	Help, Quit                                     key.Binding
	// Sorts is the help line's entry for the four sort keys.
	Sorts key.Binding
}

func newKeyMap() keyMap {
	b := func(help string, desc string, keys ...string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
	}
	return keyMap{
		Retrans:     b("r", "retrans", "r"),
		RTT:         b("t", "rtt", "t"),
		Throughput:  b("b", "bytes", "b"),
		Failures:    b("f", "fails", "f"),
		NextSort:    b("s", "next sort", "s"),
		Filter:      b("/", "filter", "/"),
		ClearFilter: b("esc", "clear filter", "esc"),
		Pause:       b("p", "pause", "p", " "),
		Remotes:     b("a", "remotes", "a"),
		Host:        b("c", "host", "c"),
		Tab:         b("tab", "pane", "tab"),
		Up:          b("↑/k", "up", "up", "k"),
		Down:        b("↓/j", "down", "down", "j"),
		PageUp:      b("pgup", "page up", "pgup"),
		PageDown:    b("pgdn", "page down", "pgdown"),
		Home:        b("home", "top", "home", "g"),
		Help:        b("?", "help", "?"),
		Quit:        b("q", "quit", "q", "ctrl+c"),
		Sorts:       b("r/t/b/f", "sort", "r", "t", "b", "f"),
	}
}

// ShortHelp is the help line.
func (k keyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Sorts, k.Filter, k.Pause, k.Remotes, k.Host, k.Tab, k.Help, k.Quit}
}

// FullHelp is the ? screen.
func (k keyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Retrans, k.RTT, k.Throughput, k.Failures, k.NextSort},
		{k.Filter, k.ClearFilter, k.Pause, k.Help, k.Quit},
		{k.Remotes, k.Host, k.Tab},
		{k.Up, k.Down, k.PageUp, k.PageDown, k.Home},
	}
}

// Model is the bubbletea model of `netsight top`.
type Model struct {
	opts  Options
	keys  keyMap
	help  help.Model
	input textinput.Model

	width, height int

	snap     *Snapshot
	rows     []Row    // every connection of snap, with rates
	vis      []Row    // rows filtered and sorted (refresh)
	remotes  []Remote // vis per remote address (refresh)
	prev     map[uint64]counters
	prevTime time.Time
	prevHost *Host // the host state before snap (NIC counters moving)
	err      error
	fetching bool

	paused    bool
	pane      Pane
	sort      SortKey
	filter    Filter
	editing   bool
	filterErr error
	offset    int
}

// New returns a model; Init starts the first snapshot.
func New(opts Options) Model {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Context == nil {
		opts.Context = context.Background()
	}
	in := textinput.New()
	in.Prompt = "filter: "
	in.Placeholder = "remote:10.0.0.0/8 port:443 proc:nginx netns:blue or a word"
	in.CharLimit = 200
	in.PromptStyle = opts.Styles.Title
	in.PlaceholderStyle = opts.Styles.Faint
	in.TextStyle = opts.Styles.Plain
	in.Cursor.Style = opts.Styles.Plain
	in.Cursor.TextStyle = opts.Styles.Plain
	h := help.New()
	h.Styles.ShortKey = opts.Styles.Title
	h.Styles.ShortDesc = opts.Styles.Help
	h.Styles.ShortSeparator = opts.Styles.Help
	h.Styles.FullKey = opts.Styles.Title
	h.Styles.FullDesc = opts.Styles.Help
	h.Styles.FullSeparator = opts.Styles.Help
	h.Styles.Ellipsis = opts.Styles.Help
	h.ShortSeparator = "  "
	return Model{opts: opts, keys: newKeyMap(), help: h, input: in, width: 80, height: 24,
		sort: opts.Sort, filter: opts.Filter}
}

type snapshotMsg struct {
	snap *Snapshot
	err  error
}

type tickMsg struct{}

// Init fetches the first snapshot.
func (m Model) Init() tea.Cmd { return m.fetch() }

func (m Model) fetch() tea.Cmd {
	src, ctx, timeout := m.opts.Source, m.opts.Context, max(m.opts.Interval, 5*time.Second)
	f := m.filter.Pushdown()
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		s, err := src.Snapshot(ctx, f)
		return snapshotMsg{snap: s, err: err}
	}
}

func (m Model) tick() tea.Cmd {
	return tea.Tick(m.opts.Interval, func(time.Time) tea.Msg { return tickMsg{} })
}

// Update handles keys, window sizes, ticks and snapshots.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.Width = msg.Width
		m.input.Width = max(msg.Width-len(m.input.Prompt)-1, 10)
		m.clampOffset()
		return m, nil
	case snapshotMsg:
		m.fetching = false
		if msg.err != nil {
			m.err = msg.err
		} else if !m.paused {
			m.apply(msg.snap)
		}
		return m, m.tick()
	case tickMsg:
		if m.fetching {
			return m, nil
		}
		m.fetching = true
		return m, m.fetch()
	case tea.KeyMsg:
		if m.editing {
			return m.updateFilter(msg)
		}
		return m.updateKey(msg)
	}
	return m, nil
}

// apply makes snap the current snapshot, its rates taken against the
// previous one.
func (m *Model) apply(snap *Snapshot) {
	m.err = nil
	if m.snap != nil {
		h := m.snap.Host
		m.prevHost = &h
	}
	m.rows = rates(snap, m.prev, m.prevTime, m.opts.Names)
	m.prev, m.prevTime = countersOf(snap), snap.Time
	m.snap = snap
	m.refresh()
}

// refresh recomputes the visible rows after a change of snapshot, sort or
// filter.
func (m *Model) refresh() {
	m.vis = sortedRows(m.rows, m.sort, m.filter.Match)
	m.remotes = Aggregate(m.vis, m.sort)
	m.clampOffset()
}

func (m Model) updateFilter(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	switch msg.Type {
	case tea.KeyEnter:
		f, err := ParseFilter(m.input.Value())
		if err != nil {
			m.filterErr = err
			return m, nil
		}
		m.filter, m.filterErr, m.editing, m.offset = f, nil, false, 0
		m.input.Blur()
		m.refresh()
		return m, nil
	case tea.KeyEsc:
		m.editing, m.filterErr = false, nil
		m.input.Blur()
		return m, nil
	case tea.KeyCtrlC:
		return m, tea.Quit
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(msg)
	return m, cmd
}

func (m Model) updateKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	k := m.keys
	switch {
	case key.Matches(msg, k.Quit):
		return m, tea.Quit
	case key.Matches(msg, k.Retrans):
		m.sort, m.offset = SortRetrans, 0
	case key.Matches(msg, k.RTT):
		m.sort, m.offset = SortRTT, 0
	case key.Matches(msg, k.Throughput):
		m.sort, m.offset = SortThroughput, 0
	case key.Matches(msg, k.Failures):
		m.sort, m.offset = SortFailures, 0
	case key.Matches(msg, k.NextSort):
		m.sort, m.offset = (m.sort+1)%numSortKeys, 0
	case key.Matches(msg, k.Filter):
		m.editing = true
		m.input.SetValue(m.filter.String())
		m.input.CursorEnd()
		return m, m.input.Focus()
	case key.Matches(msg, k.ClearFilter):
		m.filter, m.offset = Filter{}, 0
	case key.Matches(msg, k.Pause):
		m.paused = !m.paused
	case key.Matches(msg, k.Remotes):
		if m.pane == PaneRemotes {
			m.pane = PaneConnections
		} else {
			m.pane = PaneRemotes
		}
		m.offset = 0
	case key.Matches(msg, k.Host):
		if m.pane == PaneHost {
			m.pane = PaneConnections
		} else {
			m.pane = PaneHost
		}
		m.offset = 0
	case key.Matches(msg, k.Tab):
		m.pane, m.offset = (m.pane+1)%numPanes, 0
	case key.Matches(msg, k.Up):
		m.offset--
	case key.Matches(msg, k.Down):
		m.offset++
	case key.Matches(msg, k.PageUp):
		m.offset -= m.bodyHeight() - 1
	case key.Matches(msg, k.PageDown):
		m.offset += m.bodyHeight() - 1
	case key.Matches(msg, k.Home):
		m.offset = 0
	case key.Matches(msg, k.Help):
		m.help.ShowAll = !m.help.ShowAll
	}
	m.refresh()
	return m, nil
}

func (m *Model) clampOffset() {
	n := 0
	switch m.pane {
	case PaneConnections:
		n = len(m.vis)
	case PaneRemotes:
		n = len(m.remotes)
	}
	m.offset = min(m.offset, n-(m.bodyHeight()-1))
	m.offset = max(m.offset, 0)
}
