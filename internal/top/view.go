package top

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// column is one table column. Columns are kept by priority (lower first)
// while they fit the width, shown in declaration order; extra width goes to
// the flexible ones (max > min).
type column[T any] struct {
	title    string
	min, max int
	right    bool
	prio     int
	sorted   SortKey // the sort this column shows; -1 none
	val      func(*T) string
	style    func(*T, Styles) *lipgloss.Style // nil: plain
}

const noSort SortKey = -1

// layout picks the columns that fit width and their widths.
func layout[T any](cols []column[T], width int) ([]column[T], []int) {
	order := make([]int, len(cols))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cols[a].prio - cols[b].prio })
	keep := make([]bool, len(cols))
	used := 0
	for _, i := range order {
		need := cols[i].min
		if used > 0 {
			need++ // the separator
		}
		if used+need <= width {
			keep[i] = true
			used += need
		}
	}
	var out []column[T]
	var widths []int
	for i, c := range cols {
		if keep[i] {
			out = append(out, c)
			widths = append(widths, c.min)
		}
	}
	for extra := width - used; extra > 0; {
		grew := false
		for i := range out {
			if extra > 0 && widths[i] < out[i].max {
				widths[i]++
				extra--
				grew = true
			}
		}
		if !grew {
			break
		}
	}
	return out, widths
}

// cell pads or truncates s to w cells.
func cell(s string, w int, right bool) string {
	if ansi.StringWidth(s) > w {
		return ansi.Truncate(s, w, "…")
	}
	pad := strings.Repeat(" ", w-ansi.StringWidth(s))
	if right {
		return pad + s
	}
	return s + pad
}

// fit truncates a line to width cells.
func fit(s string, width int) string {
	if ansi.StringWidth(s) > width {
		return ansi.Truncate(s, width, "…")
	}
	return s
}

func renderTable[T any](cols []column[T], rows []T, width, height, offset int, sort SortKey, st Styles, faint func(*T) bool) []string {
	cs, ws := layout(cols, width)
	var hdr []string
	for i, c := range cs {
		t := c.title
		if c.sorted == sort {
			t += "▼"
		}
		s := cell(t, ws[i], c.right)
		if c.sorted == sort {
			s = st.Selected.Render(s)
		} else {
			s = st.Header.Render(s)
		}
		hdr = append(hdr, s)
	}
	lines := []string{joinCells(hdr, st.Header, width, ws)}
	for r := offset; r < len(rows) && len(lines) < height; r++ {
		row := &rows[r]
		dim := faint != nil && faint(row)
		var cells []string
		for i, c := range cs {
			s := cell(c.val(row), ws[i], c.right)
			var sty *lipgloss.Style
			if c.style != nil {
				sty = c.style(row, st)
			}
			switch {
			case sty != nil:
				s = sty.Render(s)
			case dim:
				s = st.Faint.Render(s)
			}
			cells = append(cells, s)
		}
		lines = append(lines, strings.Join(cells, " "))
	}
	return lines
}

// joinCells joins header cells with separators in the header style and
// fills the line to width.
func joinCells(cells []string, sty lipgloss.Style, width int, ws []int) string {
	used := 0
	for i, w := range ws {
		used += w
		if i > 0 {
			used++
		}
	}
	out := strings.Join(cells, sty.Render(" "))
	if width > used {
		out += sty.Render(strings.Repeat(" ", width-used))
	}
	return out
}

func (m *Model) connColumns() []column[Row] {
	return []column[Row]{
		{title: "PROCESS", min: 12, max: 20, prio: 1, sorted: noSort, val: func(r *Row) string {
			if r.Rec.Comm == "" {
				return "-"
			}
			return r.Rec.Comm
		}},
		{title: "PID", min: 7, right: true, prio: 8, sorted: noSort, val: func(r *Row) string {
			if r.Rec.PID == 0 {
				return "-"
			}
			return strconv.FormatUint(uint64(r.Rec.PID), 10)
		}},
		{title: "NETNS/POD", min: 9, max: 22, prio: 4, sorted: noSort, val: func(r *Row) string {
			if p := r.Place(); p != "" {
				return p
			}
			return "-"
		}},
		{title: "LOCAL", min: 21, max: 47, prio: 10, sorted: noSort, val: func(r *Row) string { return fmtAddrPort(r.Rec.Local) }},
		{title: "REMOTE", min: 21, max: 47, prio: 0, sorted: noSort, val: func(r *Row) string { return fmtAddrPort(r.Rec.Remote) }},
		{title: "STATE", min: 9, max: 10, prio: 3, sorted: SortFailures, val: func(r *Row) string { return stateName(&r.Rec) },
			style: func(r *Row, st Styles) *lipgloss.Style {
				if r.Rec.ConnectFailed {
					return &st.Bad
				}
				return nil
			}},
		{title: "DIR", min: 6, prio: 9, sorted: noSort, val: func(r *Row) string { return r.Rec.Direction.String() }},
		{title: "TX/s", min: 7, right: true, prio: 7, sorted: noSort, val: func(r *Row) string { return fmtBytes(r.SendRate) }},
		{title: "RX/s", min: 7, right: true, prio: 7, sorted: noSort, val: func(r *Row) string { return fmtBytes(r.RecvRate) }},
		{title: "BYTES/s", min: 8, right: true, prio: 2, sorted: SortThroughput, val: func(r *Row) string { return fmtBytes(r.BytesRate()) }},
		{title: "RTT", min: 7, right: true, prio: 2, sorted: SortRTT, val: func(r *Row) string { return fmtRTT(r.Rec.SRTT) },
			style: func(r *Row, st Styles) *lipgloss.Style {
				if r.Rec.SRTT.Seconds() >= 0.1 {
					return &st.Warn
				}
				return nil
			}},
		{title: "RETR/s", min: 7, right: true, prio: 1, sorted: SortRetrans, val: func(r *Row) string { return fmtRate(r.RetransRate) },
			style: func(r *Row, st Styles) *lipgloss.Style {
				if r.RetransRate > 0 {
					return &st.Bad
				}
				return nil
			}},
		{title: "RETR", min: 7, right: true, prio: 5, sorted: noSort, val: func(r *Row) string { return strconv.FormatUint(r.Rec.Retransmits, 10) }},
		{title: "AGE", min: 6, right: true, prio: 11, sorted: noSort, val: func(r *Row) string {
			if r.Rec.Start.IsZero() || m.snap == nil {
				return "-"
			}
			end := r.Rec.End
			if end.IsZero() {
				end = m.snap.Time
			}
			return fmtDuration(end.Sub(r.Rec.Start))
		}},
	}
}

func remoteColumns() []column[Remote] {
	return []column[Remote]{
		{title: "REMOTE", min: 15, max: 39, prio: 0, sorted: noSort, val: func(r *Remote) string { return addrString(r.Addr) }},
		{title: "PORTS", min: 11, max: 23, prio: 6, sorted: noSort, val: func(r *Remote) string {
			var s []string
			for _, p := range r.Ports {
				s = append(s, strconv.Itoa(int(p)))
			}
			return strings.Join(s, ",")
		}},
		{title: "CONNS", min: 6, right: true, prio: 1, sorted: noSort, val: func(r *Remote) string { return strconv.Itoa(r.Connections) }},
		{title: "FAILED", min: 6, right: true, prio: 2, sorted: SortFailures, val: func(r *Remote) string { return strconv.Itoa(r.Failed) },
			style: func(r *Remote, st Styles) *lipgloss.Style {
				if r.Failed > 0 {
					return &st.Bad
				}
				return nil
			}},
		{title: "BYTES/s", min: 8, right: true, prio: 1, sorted: SortThroughput, val: func(r *Remote) string { return fmtBytes(r.BytesRate()) }},
		{title: "MAX RTT", min: 8, right: true, prio: 1, sorted: SortRTT, val: func(r *Remote) string { return fmtRTT(r.MaxSRTT) }},
		{title: "RETR/s", min: 7, right: true, prio: 1, sorted: SortRetrans, val: func(r *Remote) string { return fmtRate(r.RetransRate) },
			style: func(r *Remote, st Styles) *lipgloss.Style {
				if r.RetransRate > 0 {
					return &st.Bad
				}
				return nil
			}},
		{title: "RETR", min: 7, right: true, prio: 5, sorted: noSort, val: func(r *Remote) string { return strconv.FormatUint(r.Retransmits, 10) }},
		{title: "PROCESSES", min: 10, max: 40, prio: 3, sorted: noSort, val: func(r *Remote) string { return strings.Join(r.Processes, ",") }},
	}
}

// bodyHeight is the lines between the two header lines and the help.
func (m *Model) bodyHeight() int {
	return max(m.height-2-m.helpHeight(), 1)
}

func (m *Model) helpHeight() int {
	return lipgloss.Height(m.help.View(m.keys))
}

// View draws the screen: a title line, a summary line (or the filter
// prompt, or an error), the pane, and the help.
func (m Model) View() string {
	w := max(m.width, 20)
	lines := []string{m.titleLine(w), m.statusLine(w)}
	body := m.body(w, m.bodyHeight())
	lines = append(lines, body...)
	for len(lines) < 2+m.bodyHeight() {
		lines = append(lines, "")
	}
	lines = append(lines, m.help.View(m.keys))
	return strings.Join(lines, "\n")
}

func (m *Model) titleLine(w int) string {
	st := m.opts.Styles
	src := m.opts.Source.Name()
	parts := []string{"netsight top", src}
	if m.snap != nil {
		if m.snap.Backend != "" {
			parts[1] += " (" + m.snap.Backend + ")"
		}
		parts = append(parts, m.snap.Time.Format("15:04:05"))
		n := len(m.snap.Flows)
		conns := strconv.Itoa(n) + " conns"
		if m.snap.Truncated {
			conns = "first " + conns
		}
		parts = append(parts, conns)
	}
	parts = append(parts, "sort "+m.sort.String())
	if m.pane != PaneConnections {
		parts = append(parts, m.pane.String())
	}
	left := strings.Join(parts, " · ")
	right := ""
	if m.paused {
		right = " PAUSED "
	}
	left = fit(left, w-ansi.StringWidth(right)-1)
	pad := w - ansi.StringWidth(left) - ansi.StringWidth(right)
	out := st.Title.Render(left) + strings.Repeat(" ", max(pad, 1))
	if right != "" {
		out += st.Selected.Render(right)
	}
	return out
}

func (m *Model) statusLine(w int) string {
	st := m.opts.Styles
	switch {
	case m.editing:
		s := m.input.View()
		if m.filterErr != nil {
			s = st.Bad.Render(fit("error: "+m.filterErr.Error(), w))
		}
		return s
	case m.err != nil:
		return st.Bad.Render(fit("error: "+m.err.Error(), w))
	case m.snap == nil:
		return st.Faint.Render("waiting for the first snapshot…")
	}
	var retr float64
	failed := 0
	for i := range m.rows {
		retr += m.rows[i].RetransRate
		if m.rows[i].Rec.ConnectFailed {
			failed++
		}
	}
	type part struct {
		s   string
		sty *lipgloss.Style
	}
	var ps []part
	add := func(s string, bad bool) {
		if bad {
			ps = append(ps, part{s, &st.Bad})
		} else {
			ps = append(ps, part{s, nil})
		}
	}
	if !m.filter.Empty() {
		ps = append(ps, part{"filter " + m.filter.String(), &st.Title})
	}
	add("retrans "+fmtRate(retr)+"/s", retr > 0)
	add("failed connects "+strconv.Itoa(failed), failed > 0)
	h := &m.snap.Host
	if c := h.Conntrack; c != nil {
		add(fmt.Sprintf("conntrack %.1f%%", c.UsageRatio()*100), c.UsageRatio() >= 0.8)
	}
	up, all := 0, 0
	for _, c := range h.Collectors {
		if c.State == "disabled" {
			continue
		}
		all++
		if c.Up {
			up++
		}
	}
	if all > 0 {
		add(fmt.Sprintf("collectors %d/%d up", up, all), up < all)
	}
	bad := 0
	for i := range h.Probes {
		if h.Probes[i].Failing() {
			bad++
		}
	}
	if len(h.Probes) > 0 {
		add(fmt.Sprintf("probes %d/%d failing", bad, len(h.Probes)), bad > 0)
	}
	if m.nicExceeded() {
		add("NIC allowance exceeded", true)
	}
	var out []string
	used := 0
	for _, p := range ps {
		n := ansi.StringWidth(p.s)
		if used > 0 {
			n += 3
		}
		if used+n > w {
			break
		}
		used += n
		s := p.s
		if p.sty != nil {
			s = p.sty.Render(s)
		}
		out = append(out, s)
	}
	return strings.Join(out, " · ")
}

// nicExceeded reports whether an allowance counter moved since the
// previous snapshot.
func (m *Model) nicExceeded() bool {
	if m.snap == nil || m.prevHost == nil {
		return false
	}
	for _, n := range m.snap.Host.NICs {
		for _, p := range m.prevHost.NICs {
			if p.Device != n.Device {
				continue
			}
			for k, v := range n.Exceeded {
				if v > p.Exceeded[k] {
					return true
				}
			}
		}
	}
	return false
}

func (m *Model) body(w, h int) []string {
	st := m.opts.Styles
	if m.snap == nil {
		return nil
	}
	switch m.pane {
	case PaneHost:
		return m.hostLines(w, h)
	case PaneRemotes:
		rem := m.remotes
		if len(rem) == 0 {
			return m.empty(w)
		}
		return renderTable(remoteColumns(), rem, w, h, m.offset, m.sort, st, nil)
	}
	rows := m.vis
	if len(rows) == 0 {
		return m.empty(w)
	}
	return renderTable(m.connColumns(), rows, w, h, m.offset, m.sort, st, func(r *Row) bool { return r.Rec.Closed })
}

func (m *Model) empty(w int) []string {
	s := "no connections"
	if !m.filter.Empty() {
		s += " match filter " + m.filter.String() + " (esc clears it)"
	}
	return []string{m.opts.Styles.Faint.Render(fit(s, w))}
}

func (m *Model) hostLines(w, h int) []string {
	st := m.opts.Styles
	hs := &m.snap.Host
	var out []string
	add := func(s string) { out = append(out, fit(s, w)) }
	section := func(s string) { out = append(out, st.Title.Render(fit(s, w))) }

	section("COLLECTORS")
	var cs []string
	for _, c := range hs.Collectors {
		s := c.Name + " " + c.State
		if c.Name == "flows" && m.snap.Backend != "" && c.Up {
			s += " (" + m.snap.Backend + ")"
		}
		if c.Name == "probe" && c.Up && len(hs.Probes) == 0 {
			s = "probe idle (no targets)"
		}
		if !c.Up && c.Reason != "" {
			s += ": " + c.Reason
		}
		if !c.Up && c.State != "disabled" {
			s = st.Warn.Render(s)
		}
		cs = append(cs, s)
	}
	if len(cs) == 0 {
		add("  (none reported)")
	}
	for _, s := range cs {
		out = append(out, "  "+fit(s, w-2))
	}

	section("CONNTRACK")
	if c := hs.Conntrack; c != nil {
		usage := fmt.Sprintf("  entries %.0f / %.0f (%.1f%%)", c.Entries, c.Limit, c.UsageRatio()*100)
		if c.UsageRatio() >= 0.8 {
			usage = st.Bad.Render(usage)
		}
		growth := "growth -"
		if c.GrowthPerSecond != nil {
			growth = fmt.Sprintf("growth %+.1f/s", *c.GrowthPerSecond)
		}
		full := "full: not growing"
		if c.ExhaustionSeconds != nil {
			full = "full in " + fmtDuration(secondsDur(*c.ExhaustionSeconds))
		}
		out = append(out, usage+"  "+growth+"  "+full)
		drops := fmt.Sprintf("  insert_failed %.0f  drop %.0f  early_drop %.0f", c.InsertFailed, c.Drop, c.EarlyDrop)
		if c.InsertFailed+c.Drop+c.EarlyDrop > 0 {
			drops = st.Bad.Render(fit(drops, w))
		}
		out = append(out, drops)
	} else {
		add("  (not reported: nf_conntrack not loaded, or the collector is down)")
	}

	section("NIC ALLOWANCES (packets over an allowance, ENA)")
	if len(hs.NICs) == 0 {
		add("  (no interface reports allowance counters; only AWS ENA does)")
	} else {
		cols := []column[NIC]{{title: "DEVICE", min: 10, max: 16, prio: 0, sorted: noSort, val: func(n *NIC) string { return n.Device }}}
		for i, k := range AllowanceKinds {
			cols = append(cols, column[NIC]{title: strings.ToUpper(k), min: 9, right: true, prio: 1 + i, sorted: noSort,
				val: func(n *NIC) string { return strconv.FormatFloat(n.Exceeded[k], 'f', 0, 64) },
				style: func(n *NIC, st Styles) *lipgloss.Style {
					if n.Exceeded[k] > 0 {
						return &st.Bad
					}
					return nil
				}})
		}
		cols = append(cols, column[NIC]{title: "CT AVAIL", min: 9, right: true, prio: 3, sorted: noSort, val: func(n *NIC) string {
			if n.ConntrackAvailable == nil {
				return "-"
			}
			return strconv.FormatFloat(*n.ConntrackAvailable, 'f', 0, 64)
		}})
		out = append(out, renderTable(cols, hs.NICs, w, len(hs.NICs)+1, 0, noSort-1, st, nil)...)
	}

	section("PROBES")
	if len(hs.Probes) == 0 {
		add("  (no probe targets: collectors.probe.targets in the config)")
	} else {
		cols := []column[Probe]{
			{title: "TARGET", min: 16, max: 40, prio: 0, sorted: noSort, val: func(p *Probe) string { return p.Target }},
			{title: "PROTO", min: 5, prio: 3, sorted: noSort, val: func(p *Probe) string { return p.Protocol }},
			{title: "LOSS", min: 6, right: true, prio: 1, sorted: noSort, val: func(p *Probe) string {
				if p.LossRatio == nil {
					return "-"
				}
				return fmt.Sprintf("%.1f%%", *p.LossRatio*100)
			}, style: func(p *Probe, st Styles) *lipgloss.Style {
				if p.Failing() {
					return &st.Bad
				}
				return nil
			}},
			{title: "RTT", min: 7, right: true, prio: 1, sorted: noSort, val: func(p *Probe) string {
				if p.RTTAvgSeconds == nil {
					return "-"
				}
				return fmtRTT(secondsDur(*p.RTTAvgSeconds))
			}},
		}
		for i, o := range []string{"ok", "refused", "timeout", "unreachable", "error"} {
			cols = append(cols, column[Probe]{title: strings.ToUpper(o[:min(len(o), 7)]), min: 7, right: true, prio: 2 + i, sorted: noSort,
				val: func(p *Probe) string { return strconv.FormatFloat(p.Outcomes[o], 'f', 0, 64) }})
		}
		out = append(out, renderTable(cols, hs.Probes, w, len(hs.Probes)+1, 0, noSort-1, st, nil)...)
	}
	if len(out) > h {
		out = out[:h]
	}
	return out
}
