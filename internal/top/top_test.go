package top

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/netsight/netsight/flow"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var tea160x48 = tea.WindowSizeMsg{Width: 160, Height: 48}

var t0 = time.Date(2026, 11, 30, 21, 0, 0, 0, time.UTC)

// testHost is the host pane of testdata/host.prom.
func testHost(t *testing.T) Host {
	t.Helper()
	b, err := os.ReadFile("testdata/host.prom")
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := ParseMetrics(b)
	if err != nil {
		t.Fatal(err)
	}
	h := HostFromMetrics(mfs)
	h.MergeCollectors([]CollectorState{{Name: "probe", State: "failed", Reason: "stopped: icmp socket: permission denied"}})
	return h
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// testSnapshots are two snapshots one second apart: an iperf3 flow losing
// packets in namespace blue, a busy nginx server connection, a refused
// connect, a closed connection and an IPv6 one.
func testSnapshots(t *testing.T) (*Snapshot, *Snapshot) {
	host := testHost(t)
	recs := []flow.Record{
		{ID: 1, Local: ap("10.1.0.1:40000"), Remote: ap("10.1.0.2:5201"), Direction: flow.DirClient, PID: 4242, Comm: "iperf3",
			NetNS: 4026532001, State: "established", Start: t0.Add(-10 * time.Second), BytesSent: 100 << 20, Retransmits: 100,
			SRTT: 2500 * time.Microsecond},
		{ID: 2, Local: ap("192.168.1.10:443"), Remote: ap("203.0.113.7:51000"), Direction: flow.DirServer, PID: 900, Comm: "nginx",
			NetNS: flow.InitNetNSInode, State: "established", Start: t0.Add(-time.Hour), BytesSent: 5 << 30, BytesReceived: 1 << 20, Retransmits: 7,
			SRTT: 180 * time.Millisecond},
		{ID: 3, Local: ap("192.168.1.10:51234"), Remote: ap("10.9.9.9:5432"), Direction: flow.DirClient, PID: 77, Comm: "app-with-a-long-name",
			NetNS: flow.InitNetNSInode, State: "close", Closed: true, Start: t0.Add(-2 * time.Second), End: t0.Add(-2 * time.Second),
			ConnectFailed: true, ConnectResult: "refused", RSTReceived: 1},
		{ID: 4, Local: ap("[2001:db8::10]:55000"), Remote: ap("[2001:db8::53]:443"), Direction: flow.DirClient, PID: 1234, Comm: "curl",
			NetNS: 4026532999, CgroupID: 99, State: "time_wait", Closed: true, Start: t0.Add(-5 * time.Second), End: t0.Add(-4 * time.Second),
			BytesReceived: 20000, SRTT: 30 * time.Millisecond},
		{ID: 5, Local: ap("10.1.0.1:40001"), Remote: ap("10.1.0.2:5201"), Direction: flow.DirClient, PID: 4242, Comm: "iperf3",
			NetNS: 4026532001, State: "established", Start: t0.Add(-10 * time.Second), BytesSent: 300, SRTT: 900 * time.Microsecond},
	}
	prev := &Snapshot{Time: t0, Backend: "ebpf", Host: host, Flows: recs}
	next := make([]flow.Record, len(recs))
	copy(next, recs)
	next[0].BytesSent += 40 << 20
	next[0].Retransmits += 35
	next[1].BytesSent += 2 << 20
	next[1].BytesReceived += 64 << 10
	next[1].Retransmits++
	cur := &Snapshot{Time: t0.Add(time.Second), Backend: "ebpf", Host: host, Flows: next}
	return prev, cur
}

// testNamer names namespace 4026532001 "blue" and cgroup 99 a pod.
type testNamer struct{}

func (testNamer) NetNS(ino uint32) string {
	if ino == 4026532001 {
		return "blue"
	}
	return ""
}

func (testNamer) Workload(_ uint32, id uint64) string {
	if id == 99 {
		return "pod 1b2c3d4e"
	}
	return ""
}

// fakeSource returns its snapshots in turn, then the last one again.
type fakeSource struct {
	snaps []*Snapshot
	err   error
}

func (f *fakeSource) Name() string { return "local" }

func (f *fakeSource) Snapshot(context.Context, flow.Filter) (*Snapshot, error) {
	if f.err != nil {
		return nil, f.err
	}
	s := f.snaps[0]
	if len(f.snaps) > 1 {
		f.snaps = f.snaps[1:]
	}
	return s, nil
}

func testStyles(colour bool) Styles {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.ANSI)
	return NewStyles(r, colour)
}

// newTestModel is a model sized w x h that has applied both test
// snapshots.
func newTestModel(t *testing.T, w, h int, colour bool) Model {
	t.Helper()
	prev, cur := testSnapshots(t)
	m := New(Options{Source: &fakeSource{snaps: []*Snapshot{prev, cur}}, Names: testNamer{}, Styles: testStyles(colour)})
	m = step(t, m, tea.WindowSizeMsg{Width: w, Height: h})
	m = step(t, m, snapshotMsg{snap: prev})
	m = step(t, m, snapshotMsg{snap: cur})
	return m
}

func step(t *testing.T, m Model, msg tea.Msg) Model {
	t.Helper()
	nm, _ := m.Update(msg)
	return nm.(Model)
}

func keys(t *testing.T, m Model, ks ...string) Model {
	t.Helper()
	for _, k := range ks {
		var msg tea.KeyMsg
		switch k {
		case "enter":
			msg = tea.KeyMsg{Type: tea.KeyEnter}
		case "esc":
			msg = tea.KeyMsg{Type: tea.KeyEsc}
		case "tab":
			msg = tea.KeyMsg{Type: tea.KeyTab}
		case " ":
			msg = tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}}
		default:
			msg = tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
		}
		m = step(t, m, msg)
	}
	return m
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, ansi.Strip(got), ansi.Strip(string(want)))
	}
}

// colourSGR matches an SGR sequence that sets a colour.
var colourSGR = regexp.MustCompile(`\x1b\[(?:[0-9]+;)*(?:3[0-8]|4[0-8]|9[0-7]|10[0-7])(?:;[0-9]+)*m`)

// TestViewGolden draws every pane at 80x24 and 160x48, with colours and
// with NO_COLOR, and checks the screen's size and the columns each width
// must keep.
func TestViewGolden(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {160, 48}} {
		for _, colour := range []bool{true, false} {
			for _, pane := range []struct {
				name string
				keys []string
				want []string
			}{
				{"connections", nil, []string{"PROCESS", "NETNS/POD", "REMOTE", "STATE", "BYTES/s", "RTT", "RETR/s▼", "blue", "REFUSED"}},
				{"remotes", []string{"a"}, []string{"REMOTE", "CONNS", "FAILED", "RETR/s▼", "10.1.0.2"}},
				{"host", []string{"c"}, []string{"CONNTRACK", "entries 52000 / 65536 (79.3%)", "NIC ALLOWANCES", "ens5", "PROBES", "db:5432", "probe failed: stopped"}},
				{"rtt-filter", []string{"t", "/", "p", "o", "r", "t", ":", "4", "4", "3", "enter"}, []string{"sort rtt", "filter port:443", "RTT▼", "nginx"}},
			} {
				mode := "colour"
				if !colour {
					mode = "nocolor"
				}
				name := pane.name + "-" + mode + "-" + itoa(size[0]) + "x" + itoa(size[1]) + ".golden"
				t.Run(name, func(t *testing.T) {
					m := newTestModel(t, size[0], size[1], colour)
					m = keys(t, m, pane.keys...)
					v := m.View()
					golden(t, name, v)
					lines := strings.Split(v, "\n")
					if len(lines) != size[1] {
						t.Errorf("%d lines, want %d", len(lines), size[1])
					}
					for i, l := range lines {
						if w := ansi.StringWidth(l); w > size[0] {
							t.Errorf("line %d is %d cells wide, more than %d: %q", i+1, w, size[0], ansi.Strip(l))
						}
					}
					plain := ansi.Strip(v)
					for _, s := range pane.want {
						if !strings.Contains(plain, s) {
							t.Errorf("view lacks %q:\n%s", s, plain)
						}
					}
					if !strings.Contains(plain, "q quit") {
						t.Errorf("help line lacks q quit:\n%s", plain)
					}
					if has := colourSGR.MatchString(v); has != colour {
						t.Errorf("colour sequences present: %v, want %v", has, colour)
					}
				})
			}
		}
	}
}

func itoa(n int) string { return fmtInt(n) }

func fmtInt(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestWideColumns: 160 cells show the columns 80 cells hide.
func TestWideColumns(t *testing.T) {
	narrow := ansi.Strip(newTestModel(t, 80, 24, false).View())
	wide := ansi.Strip(newTestModel(t, 160, 48, false).View())
	for _, col := range []string{"LOCAL", "TX/s", "RX/s", "PID", "RETR "} {
		if strings.Contains(narrow, col) {
			t.Errorf("80 cells show %q", col)
		}
		if !strings.Contains(wide, col) {
			t.Errorf("160 cells lack %q", col)
		}
	}
}

// dataRows returns the process names of the table rows, top first.
func dataRows(t *testing.T, m Model) []string {
	t.Helper()
	lines := strings.Split(ansi.Strip(m.View()), "\n")
	var out []string
	for _, l := range lines[3 : len(lines)-1] {
		if f := strings.Fields(l); len(f) > 0 {
			out = append(out, f[0])
		}
	}
	return out
}

func TestSortKeys(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want []string
	}{
		// Ties: open before closed, then the newest first.
		{"r", []string{"iperf3", "nginx", "iperf3", "app-with-a-l", "curl"}},
		{"t", []string{"nginx", "curl", "iperf3", "iperf3", "app-with-a-l"}},
		// Ties: most bytes over the connection's life.
		{"b", []string{"iperf3", "nginx", "curl", "iperf3", "app-with-a-l"}},
		{"f", []string{"app-with-a-l", "iperf3", "nginx", "iperf3", "curl"}},
	} {
		t.Run(tc.key, func(t *testing.T) {
			m := keys(t, newTestModel(t, 80, 24, false), tc.key)
			got := dataRows(t, m)
			for i := range got {
				got[i] = strings.TrimSuffix(got[i], "…")
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("rows %q, want %q", got, tc.want)
			}
		})
	}
	m := keys(t, newTestModel(t, 80, 24, false), "s", "s")
	if m.sort != SortThroughput {
		t.Errorf("s s: sort %v, want throughput", m.sort)
	}
}

func TestRates(t *testing.T) {
	m := newTestModel(t, 80, 24, false)
	byID := map[uint64]Row{}
	for _, r := range m.rows {
		byID[r.Rec.ID] = r
	}
	if r := byID[1]; r.SendRate != 40<<20 || r.RetransRate != 35 || r.RecvRate != 0 {
		t.Errorf("iperf3: send %v retrans %v recv %v, want 40 MiB/s, 35/s, 0", r.SendRate, r.RetransRate, r.RecvRate)
	}
	if r := byID[2]; r.SendRate != 2<<20 || r.RecvRate != 64<<10 || r.RetransRate != 1 {
		t.Errorf("nginx: %+v", r)
	}
	if r := byID[4]; r.BytesRate() != 0 {
		t.Errorf("closed curl: rate %v, want 0", r.BytesRate())
	}
	// The first snapshot alone: rates over each connection's life.
	prev, _ := testSnapshots(t)
	rows := rates(prev, nil, time.Time{}, nil)
	if got, want := rows[0].SendRate, float64(100<<20)/10; got != want {
		t.Errorf("first snapshot: %v B/s, want %v (life average)", got, want)
	}
}

func TestFilterKeys(t *testing.T) {
	m := newTestModel(t, 80, 24, false)
	m = keys(t, m, "/", "p", "r", "o", "c", ":", "i", "p", "e", "r", "f", "enter")
	if got := dataRows(t, m); strings.Join(got, " ") != "iperf3 iperf3" {
		t.Errorf("proc:iperf rows %q", got)
	}
	// A bad filter keeps the prompt open and says why.
	m = keys(t, m, "/", " ", "p", "o", "r", "t", ":", "x", "enter")
	if !m.editing || !strings.Contains(ansi.Strip(m.View()), "port must be 1-65535") {
		t.Errorf("bad filter: editing %v, view:\n%s", m.editing, ansi.Strip(m.View()))
	}
	m = keys(t, m, "esc", "esc")
	if !m.filter.Empty() || len(dataRows(t, m)) != 5 {
		t.Errorf("esc esc: filter %q, rows %d", m.filter, len(dataRows(t, m)))
	}
}

func TestFilterParse(t *testing.T) {
	m := newTestModel(t, 80, 24, false)
	for _, tc := range []struct {
		f    string
		want int // rows matched
		err  string
	}{
		{"", 5, ""},
		{"remote:10.1.0.0/16", 2, ""},
		{"remote:2001:db8::53", 1, ""},
		{"port:443", 2, ""},
		{"port:5201 proc:iperf3", 2, ""},
		{"proc:4242", 2, ""},
		{"netns:blue", 2, ""},
		{"nginx", 1, ""},
		{"203.0.113", 1, ""},
		{"5432", 1, ""},
		{"port:0", 0, "port must be 1-65535"},
		{"remote:nope", 0, "want an address or CIDR"},
		{"colour:red", 0, "want remote:, port:, proc:, netns:"},
		{"proc:", 0, "empty proc"},
	} {
		f, err := ParseFilter(tc.f)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.f, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.f, err)
			continue
		}
		n := 0
		for i := range m.rows {
			if f.Match(&m.rows[i]) {
				n++
			}
		}
		if n != tc.want {
			t.Errorf("%q matches %d rows, want %d", tc.f, n, tc.want)
		}
	}
}

func TestPause(t *testing.T) {
	m := keys(t, newTestModel(t, 80, 24, false), "p")
	before := m.View()
	if !strings.Contains(before, "PAUSED") {
		t.Fatalf("no PAUSED mark:\n%s", before)
	}
	later := &Snapshot{Time: t0.Add(5 * time.Second), Backend: "ebpf"}
	m = step(t, m, snapshotMsg{snap: later})
	if m.View() != before {
		t.Errorf("a paused view changed")
	}
	m = keys(t, m, " ")
	m = step(t, m, snapshotMsg{snap: later})
	if v := ansi.Strip(m.View()); strings.Contains(v, "PAUSED") || !strings.Contains(v, "no connections") {
		t.Errorf("unpaused view did not take the new snapshot:\n%s", v)
	}
}

func TestAggregate(t *testing.T) {
	m := newTestModel(t, 80, 24, false)
	rem := Aggregate(m.rows, SortRetrans)
	if len(rem) != 4 {
		t.Fatalf("%d remotes, want 4", len(rem))
	}
	r := rem[0]
	if r.Addr != netip.MustParseAddr("10.1.0.2") || r.Connections != 2 || r.RetransRate != 35 || r.Retransmits != 135 ||
		r.MaxSRTT != 2500*time.Microsecond || strings.Join(r.Processes, ",") != "iperf3" || len(r.Ports) != 1 || r.Ports[0] != 5201 {
		t.Errorf("top remote %+v", r)
	}
	if f := Aggregate(m.rows, SortFailures)[0]; f.Failed != 1 || f.Addr != netip.MustParseAddr("10.9.9.9") {
		t.Errorf("failures first: %+v", f)
	}
}

func TestPanesAndQuit(t *testing.T) {
	m := newTestModel(t, 80, 24, false)
	for _, want := range []Pane{PaneRemotes, PaneHost, PaneConnections} {
		m = keys(t, m, "tab")
		if m.pane != want {
			t.Errorf("tab: pane %v, want %v", m.pane, want)
		}
	}
	m = keys(t, m, "?")
	if v := ansi.Strip(m.View()); !strings.Contains(v, "next sort") || !strings.Contains(v, "clear filter") {
		t.Errorf("? shows no full help:\n%s", v)
	}
	if _, cmd := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")}); cmd == nil {
		t.Fatal("q returned no command")
	} else if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Error("q does not quit")
	}
}

func TestScroll(t *testing.T) {
	m := newTestModel(t, 80, 7, false) // 3 data rows fit
	m = keys(t, m, "j", "j", "j", "j")
	if m.offset != 2 {
		t.Errorf("offset %d after scrolling past the end, want 2", m.offset)
	}
	m = keys(t, m, "g")
	if m.offset != 0 {
		t.Errorf("home: offset %d", m.offset)
	}
}

func TestErrorKeepsData(t *testing.T) {
	m := newTestModel(t, 80, 24, false)
	m = step(t, m, snapshotMsg{err: errors.New("agent /api/v1/flows: 401 Unauthorized")})
	v := ansi.Strip(m.View())
	if !strings.Contains(v, "error: agent /api/v1/flows: 401 Unauthorized") || !strings.Contains(v, "iperf3") {
		t.Errorf("error view:\n%s", v)
	}
}

// TestModelFetches runs Init's command: the first snapshot comes from the
// source.
func TestModelFetches(t *testing.T) {
	prev, _ := testSnapshots(t)
	m := New(Options{Source: &fakeSource{snaps: []*Snapshot{prev}}, Styles: testStyles(false)})
	msg := m.Init()()
	sm, ok := msg.(snapshotMsg)
	if !ok || sm.snap != prev {
		t.Fatalf("Init gave %T", msg)
	}
	m = step(t, m, sm)
	if len(m.rows) != 5 {
		t.Errorf("%d rows", len(m.rows))
	}
}
