package agenttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Nobody is the uid and gid the unprivileged runs use.
const Nobody = 65534

// RepoRoot is the netsight repository root, found from this file.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("agenttest: no caller information")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// Binary builds cmd/netsight once per test process (static, as `make build`)
// into a directory every user can read, and returns its path. Cleanup is
// the caller's TestMain's job: call Cleanup from it.
func Binary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "netsight-deploytest-")
		if buildErr != nil {
			return
		}
		// World-traversable so that setpriv runs as nobody can exec it.
		if buildErr = os.Chmod(buildDir, 0o755); buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "netsight")
		cmd := exec.Command("go", "build", "-trimpath", "-o", buildBin, "./cmd/netsight")
		cmd.Dir = RepoRoot(tb)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/netsight: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return buildBin
}

// Cleanup removes the built binary; call it from TestMain after m.Run.
func Cleanup() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// RequireRoot fails in CI and skips elsewhere when the test cannot run as
// root (setpriv, dpkg, systemd-analyze all need it), and skips with -short.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("lab test: skipped with -short")
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			tb.Fatal("lab test needs root and CI=true: refusing to skip")
		}
		tb.Skip("lab test needs root")
	}
}

// RequireTool fails in CI and skips elsewhere when a command is missing.
func RequireTool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s not installed (add its package to .ci/run)", name)
		}
		tb.Skipf("%s not installed", name)
	}
	return p
}

// Caps is a capability set as Kubernetes names it (NET_ADMIN, ...).
type Caps []string

// setprivList renders caps as setpriv's "-all,+net_admin,..." list.
func (c Caps) setprivList() string {
	s := "-all"
	for _, n := range c {
		s += ",+" + strings.ToLower(strings.TrimPrefix(n, "CAP_"))
	}
	return s
}

// Setpriv returns the setpriv argument vector that runs argv as nobody with
// exactly caps (bounding, inheritable and ambient sets), as the systemd unit's
// User= plus AmbientCapabilities= does. With asRoot the uid stays 0 and only
// the bounding set is limited, as the chart's container (uid 0, capabilities
// added, ALL dropped) runs.
func Setpriv(caps Caps, asRoot bool, argv ...string) []string {
	list := caps.setprivList()
	// --no-new-privs: the unit sets NoNewPrivileges=yes, the chart
	// allowPrivilegeEscalation: false.
	args := []string{"setpriv", "--no-new-privs"}
	if !asRoot {
		args = append(args, fmt.Sprintf("--reuid=%d", Nobody), fmt.Sprintf("--regid=%d", Nobody), "--clear-groups",
			"--inh-caps="+list, "--ambient-caps="+list)
	}
	args = append(args, "--bounding-set="+list)
	return append(args, argv...)
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// DataDir makes a data directory owned by uid (removed at cleanup) under a
// world-traversable parent.
func DataDir(tb testing.TB, uid int) string {
	tb.Helper()
	parent, err := os.MkdirTemp("", "netsight-data-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o755); err != nil {
		tb.Fatal(err)
	}
	dir := filepath.Join(parent, "data")
	if err := os.Mkdir(dir, 0o750); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chown(dir, uid, uid); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// Agent is a running `netsight run`.
type Agent struct {
	URL    string
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
}

// Options for Start.
type Options struct {
	// Prefix is prepended to the command (e.g. a Setpriv vector without argv).
	Prefix []string
	// Config is the YAML config written to a file (empty: no file).
	Config string
	// UID owns the data directory (0 or Nobody).
	UID int
	// Args are extra `netsight run` flags.
	Args []string
}

// Start runs the agent on a free loopback port with a temporary data
// directory, waits until /readyz answers 200 and stops it at cleanup.
func Start(tb testing.TB, opts Options) *Agent {
	tb.Helper()
	bin := Binary(tb)
	dataDir := DataDir(tb, opts.UID)
	port := FreePort(tb)
	args := []string{"run", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", dataDir, "--log.level", "debug"}
	if opts.Config != "" {
		f := filepath.Join(filepath.Dir(dataDir), "netsight.yaml")
		if err := os.WriteFile(f, []byte(opts.Config), 0o644); err != nil {
			tb.Fatal(err)
		}
		args = append(args, "--config", f)
	}
	args = append(args, opts.Args...)
	argv := append(slices.Clone(opts.Prefix), append([]string{bin}, args...)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	// Never the real EC2 metadata service from a test (imds: auto would
	// ask it on an EC2 host).
	cmd.Env = append(os.Environ(), "NETSIGHT_NO_METADATA=1")
	a := &Agent{URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout = a.stderr
	cmd.Stderr = a.stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { cmd.Wait(); close(a.done) }()
	tb.Cleanup(func() { a.Stop(tb) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-a.done:
			tb.Fatalf("agent exited early: %v\n%s", cmd.ProcessState, a.Log())
		default:
		}
		resp, err := http.Get(a.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return a
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("agent not ready after 30s\n%s", a.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop sends SIGTERM and waits (10 s, then SIGKILL).
func (a *Agent) Stop(tb testing.TB) {
	select {
	case <-a.done:
		return
	default:
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		a.cmd.Process.Kill()
		<-a.done
		tb.Errorf("agent did not stop within 10s of SIGTERM\n%s", a.Log())
	}
}

// Log is what the agent wrote so far.
func (a *Agent) Log() string { return a.stderr.String() }

// Status is one row of GET /api/v1/status/collectors.
type Status struct {
	Name   string `json:"name"`
	State  string `json:"state"`
	Up     bool   `json:"up"`
	Reason string `json:"reason"`
	Errors uint64 `json:"errors_total"`
}

// Collectors returns the collector status table.
func (a *Agent) Collectors(ctx context.Context) ([]Status, error) {
	var out []Status
	err := a.GetJSON(ctx, "/api/v1/status/collectors", &out)
	return out, err
}

// GetJSON GETs path and decodes the JSON body into v.
func (a *Agent) GetJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return json.Unmarshal(body, v)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Listener is a loopback TCP server that accepts and closes connections
// until the test ends (a target for TCP probes).
type Listener struct{ Port int }

// Listen starts a Listener; it stops at cleanup.
func Listen(tb testing.TB) Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	tb.Cleanup(func() { ln.Close(); <-done })
	return Listener{Port: ln.Addr().(*net.TCPAddr).Port}
}
