package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netsight/netsight/internal/testlab"
)

// tmuxSession is a detached tmux session on a private server (its own
// socket, no user config), killed when the test ends.
type tmuxSession struct {
	t      *testing.T
	bin    string
	socket string
}

func newTmux(t *testing.T, width, height int, command string) *tmuxSession {
	t.Helper()
	// The socket lives in the test's temporary directory: removed with it.
	s := &tmuxSession{t: t, bin: testlab.RequireBinary(t, "tmux"), socket: filepath.Join(t.TempDir(), "tmux")}
	t.Cleanup(func() { _, _ = s.run("kill-server") })
	if out, err := s.run("-u", "new-session", "-d", "-s", "top", "-x", strconv.Itoa(width), "-y", strconv.Itoa(height), command); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	return s
}

func (s *tmuxSession) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, append([]string{"-S", s.socket, "-f", "/dev/null"}, args...)...)
	cmd.Env = append(os.Environ(), "LANG=C.UTF-8", "LC_ALL=C.UTF-8")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// keys sends tmux key names (send-keys syntax: "a", "Enter", "C-u").
func (s *tmuxSession) keys(keys ...string) {
	s.t.Helper()
	if out, err := s.run(append([]string{"send-keys", "-t", "top"}, keys...)...); err != nil {
		s.t.Fatalf("tmux send-keys %q: %v: %s", keys, err, out)
	}
}

// literal types text as it is.
func (s *tmuxSession) literal(text string) {
	s.t.Helper()
	if out, err := s.run("send-keys", "-t", "top", "-l", text); err != nil {
		s.t.Fatalf("tmux send-keys -l %q: %v: %s", text, err, out)
	}
}

func (s *tmuxSession) capture(flags ...string) string {
	s.t.Helper()
	out, err := s.run(append([]string{"capture-pane", "-p", "-t", "top"}, flags...)...)
	if err != nil {
		s.t.Fatalf("tmux capture-pane: %v: %s", err, out)
	}
	return out
}

// waitFor captures the pane until cond holds, failing after timeout; it
// returns the screen and how long it took.
func (s *tmuxSession) waitFor(what string, timeout time.Duration, cond func(screen string) bool) (string, time.Duration) {
	s.t.Helper()
	start := time.Now()
	for {
		screen := s.capture()
		if cond(screen) {
			return screen, time.Since(start)
		}
		if strings.Contains(screen, "TOP-EXITED") {
			s.t.Fatalf("%s: netsight top exited:\n%s", what, screen)
		}
		if time.Since(start) > timeout {
			s.t.Fatalf("%s: not on screen within %s:\n%s", what, timeout, screen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rowsOf returns the table rows of a screen (between the header line, which
// starts with header, and the help line) split into fields.
func rowsOf(screen, header string) [][]string {
	lines := strings.Split(strings.TrimRight(screen, "\n"), "\n")
	var out [][]string
	in := false
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, header):
			in = true
		case strings.HasPrefix(l, "r/t/b/f sort"):
			in = false
		case in && strings.TrimSpace(l) != "":
			out = append(out, strings.Fields(l))
		}
	}
	return out
}

// TestTopTmux runs `netsight top` at 80x24 under tmux against its own
// collectors while iperf3 sends from one namespace to another through a
// veth that drops 2% of the data segments: the iperf3 data connection,
// with retransmissions/s > 0, tops the screen sorted by retransmissions
// within 5 s of the iperf3 start. Then keys sort by RTT, filter by port,
// pause, switch to the per-remote view and to the host pane (conntrack,
// NIC allowances, the probe target of the config), and quit.
func TestTopTmux(t *testing.T) {
	testlab.RequireRoot(t)
	testlab.RequireBinary(t, "iperf3")
	bin := buildBinary(t)
	pair := testlab.NewClientServer(t, 100+rand.IntN(100))
	srv := testlab.StartIperf3Server(t, pair.Srv, 60*time.Second)
	pair.DropToPort(t, 2, int(srv.Port))

	dir := t.TempDir()
	cfg := filepath.Join(dir, "netsight.yaml")
	if err := os.WriteFile(cfg, []byte("collectors:\n  probe:\n    period: 5s\n    targets:\n      - name: lo-probe\n        address: 127.0.0.1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Start filtered to the client's namespace (other tests' traffic on
	// this host stays out of the ranking), at 80x24, colours on.
	cmd := fmt.Sprintf("%s top --interval 500ms --config %s --filter netns:%s; echo TOP-EXITED $?; sleep 60", bin, cfg, pair.Cli.Name)
	tm := newTmux(t, 80, 24, cmd)
	tm.waitFor("the first snapshot", 30*time.Second, func(s string) bool {
		return strings.Contains(s, "netsight top · local (") && strings.Contains(s, "conns · sort retrans")
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	iperfDone := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := testlab.RunIperf3(ctx, pair.Cli, netip.AddrPortFrom(netip.MustParseAddr(pair.SrvIP), srv.Port),
			testlab.Iperf3Options{Duration: 15 * time.Second, Bitrate: "200M"})
		iperfDone <- err
	}()
	t.Cleanup(func() { cancel(); <-iperfDone })

	screen, _ := tm.waitFor("iperf3 with retransmissions on the top row", 10*time.Second, func(s string) bool {
		rows := rowsOf(s, "PROCESS")
		if len(rows) == 0 || rows[0][0] != "iperf3" {
			return false
		}
		r, err := strconv.ParseFloat(rows[0][len(rows[0])-1], 64)
		return err == nil && r > 0
	})
	took := time.Since(start)
	t.Logf("iperf3 flow with retransmissions on top %.1f s after iperf3 started:\n%s", took.Seconds(), screen)
	if took > 5*time.Second {
		t.Errorf("took %s, want within 5 s", took)
	}
	top := rowsOf(screen, "PROCESS")[0]
	if !strings.HasPrefix(pair.Cli.Name, strings.TrimSuffix(top[1], "…")) || top[2] != pair.SrvIP+":"+strconv.Itoa(int(srv.Port)) || top[3] != "ESTAB" {
		t.Errorf("top row %q: want netns %s, remote %s:%d, ESTAB", top, pair.Cli.Name, pair.SrvIP, srv.Port)
	}

	// Colour: the retransmissions are red (SGR 31), the header reversed.
	if esc := tm.capture("-e"); !strings.Contains(esc, "31m") || !strings.Contains(esc, "7m") {
		t.Errorf("no red or reverse video in the coloured screen:\n%q", esc)
	}

	tm.keys("t")
	tm.waitFor("sort by RTT", 5*time.Second, func(s string) bool {
		return strings.Contains(s, "sort rtt") && strings.Contains(s, "RTT▼")
	})

	// Replace the filter: the server's port, in any namespace.
	port := strconv.Itoa(int(srv.Port))
	tm.keys("/", "C-u")
	tm.literal("port:" + port)
	tm.keys("Enter")
	screen, _ = tm.waitFor("filter by port", 5*time.Second, func(s string) bool {
		rows := rowsOf(s, "PROCESS")
		sides := map[string]bool{}
		for _, r := range rows {
			if strings.HasSuffix(r[2], ":"+port) {
				sides["client"] = true
			} else if strings.HasPrefix(r[2], pair.CliIP+":") {
				sides["server"] = true
			}
		}
		return strings.Contains(s, "filter port:"+port) && sides["client"] && sides["server"]
	})
	for _, r := range rowsOf(screen, "PROCESS") {
		// The server side's remote is the client's ephemeral port (its
		// local port, the filter's, is not shown at 80 cells).
		if !strings.HasSuffix(r[2], ":"+port) && !strings.HasPrefix(r[2], pair.CliIP+":") {
			t.Errorf("filter port:%s shows %q", port, r)
		}
	}

	tm.keys("p")
	paused, _ := tm.waitFor("pause", 5*time.Second, func(s string) bool { return strings.Contains(s, "PAUSED") })
	time.Sleep(1500 * time.Millisecond) // three refreshes
	if again := tm.capture(); again != paused {
		t.Errorf("the paused screen changed:\n%s\n---\n%s", paused, again)
	}
	tm.keys("p")
	tm.waitFor("resume", 5*time.Second, func(s string) bool { return !strings.Contains(s, "PAUSED") })

	tm.keys("a")
	tm.waitFor("per-remote view", 5*time.Second, func(s string) bool {
		var remotes []string
		for _, r := range rowsOf(s, "REMOTE") {
			remotes = append(remotes, r[0])
		}
		return strings.Contains(s, "CONNS") && strings.Contains(s, "· remotes") &&
			strings.Contains(strings.Join(remotes, " "), pair.SrvIP) && strings.Contains(strings.Join(remotes, " "), pair.CliIP)
	})

	tm.keys("c")
	tm.waitFor("host pane", 10*time.Second, func(s string) bool {
		return strings.Contains(s, "CONNTRACK") && strings.Contains(s, "NIC ALLOWANCES") && strings.Contains(s, "PROBES") &&
			strings.Contains(s, "lo-probe") && strings.Contains(s, "flows running")
	})

	tm.keys("q")
	tm.waitFor("exit", 10*time.Second, func(s string) bool { return strings.Contains(s, "TOP-EXITED 0") })

	// NO_COLOR: no colour sequence on screen, reverse video stays.
	nc := newTmux(t, 80, 24, fmt.Sprintf("NO_COLOR=1 %s top --interval 500ms --set collectors.flows.backend=sockdiag; echo TOP-EXITED $?; sleep 60", bin))
	nc.waitFor("the first snapshot without colour", 30*time.Second, func(s string) bool {
		return strings.Contains(s, "netsight top · local (sockdiag)") && strings.Contains(s, "conns · sort retrans")
	})
	nc.keys("p")
	nc.waitFor("pause without colour", 5*time.Second, func(s string) bool { return strings.Contains(s, "PAUSED") })
	esc := nc.capture("-e")
	if colourSGR.MatchString(esc) || !strings.Contains(esc, "7m") {
		t.Errorf("NO_COLOR screen: colour sequences %v, reverse video %v:\n%q", colourSGR.MatchString(esc), strings.Contains(esc, "7m"), esc)
	}
	nc.keys("q")
	nc.waitFor("exit", 10*time.Second, func(s string) bool { return strings.Contains(s, "TOP-EXITED 0") })
}

// colourSGR matches an SGR sequence that sets a foreground or background
// colour (39 and 49, the defaults, are no colour).
var colourSGR = regexp.MustCompile(`\x1b\[(?:[0-9]+;)*(?:3[0-8]|4[0-8]|9[0-7]|10[0-7])(?:;[0-9]+)*m`)
