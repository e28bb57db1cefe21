package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestHelpAndUsage(t *testing.T) {
	tests := []struct {
		args    []string
		code    int
		wantOut string
		wantErr string
	}{
		{[]string{"--help"}, 0, "Commands:", ""},
		{[]string{}, 2, "Usage:", ""},
		{[]string{"bogus"}, 2, "", `unknown command "bogus"`},
		{[]string{"run", "--help"}, 0, "Examples:", ""},
		{[]string{"help", "check"}, 0, "--json", ""},
		{[]string{"run", "--no-such-flag"}, 2, "", "flag provided but not defined: -no-such-flag"},
		{[]string{"version"}, 0, "netsight dev (revision", ""},
		{[]string{"--version"}, 0, "netsight dev", ""},
		{[]string{"run", "--set", "nonsense"}, 1, "", `--set "nonsense": want path=value`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := runMain(context.Background(), tt.args, &out, &errb)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errb.String())
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("stdout %q lacks %q", out.String(), tt.wantOut)
			}
			if !strings.Contains(errb.String(), tt.wantErr) {
				t.Errorf("stderr %q lacks %q", errb.String(), tt.wantErr)
			}
		})
	}
}

func TestRunBadConfigNamesField(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(cfg, []byte("server:\n  listen: 127.0.0.1:0\n  tls: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := runMain(context.Background(), []string{"run", "--config", cfg}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "server.tls: unknown field") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// buildBinary builds netsight once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "netsight-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "netsight")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// agentProc is a netsight run subprocess with its log captured.
type agentProc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs strings.Builder
	addr chan string
	done chan error
}

var servingRE = regexp.MustCompile(`"netsight is serving" dashboard=http://([0-9.:]+)/`)

func startAgent(t *testing.T, args ...string) *agentProc {
	t.Helper()
	bin := buildBinary(t)
	p := &agentProc{addr: make(chan string, 1), done: make(chan error, 1)}
	startProc(t, p, exec.Command(bin, append([]string{"run"}, args...)...))
	return p
}

// startProc starts cmd as p, capturing its log and the serving address.
func startProc(t *testing.T, p *agentProc, cmd *exec.Cmd) {
	t.Helper()
	p.cmd = cmd
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			if m := servingRE.FindStringSubmatch(line); m != nil {
				select {
				case p.addr <- m[1]:
				default:
				}
			}
		}
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
		}
	})
}

func (p *agentProc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

func (p *agentProc) waitAddr(t *testing.T) string {
	t.Helper()
	select {
	case a := <-p.addr:
		return a
	case err := <-p.done:
		t.Fatalf("agent exited early: %v\n%s", err, p.Logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("agent did not start serving in 60s:\n%s", p.Logs())
	}
	return ""
}

func (p *agentProc) waitLog(t *testing.T, substr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(p.Logs(), substr) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("log never showed %q:\n%s", substr, p.Logs())
}

func get(t *testing.T, url string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestAgentLifecycle runs the real binary: it serves /metrics (text and
// OpenMetrics), /healthz and /readyz on the address it was given, reloads
// on SIGHUP (keeping the old config when the new one is invalid) and stops
// within 5 s on SIGTERM.
func TestAgentLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary: runs without -short")
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "netsight.yaml")
	good := "server:\n  listen: 127.0.0.1:0\nlog:\n  level: info\n"
	if err := os.WriteFile(cfgPath, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data", "nested")
	p := startAgent(t, "--config", cfgPath, "--data-dir", dataDir)
	addr := p.waitAddr(t)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("listening on %s", addr)
	}
	if st, err := os.Stat(dataDir); err != nil || !st.IsDir() {
		t.Errorf("data dir not created: %v", err)
	}
	base := "http://" + addr

	code, hdr, body := get(t, base+"/metrics", nil)
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s", code, hdr.Get("Content-Type"))
	}
	for _, want := range []string{`netsight_build_info{goversion="go`, "netsight_process_resident_memory_bytes", "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	code, hdr, body = get(t, base+"/metrics", map[string]string{"Accept": "application/openmetrics-text;version=1.0.0"})
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/openmetrics-text") || !strings.HasSuffix(body, "# EOF\n") {
		t.Errorf("OpenMetrics not served: %d %s", code, hdr.Get("Content-Type"))
	}
	if code, _, _ := get(t, base+"/healthz", nil); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, body := get(t, base+"/readyz", nil)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never ready: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A broken config on SIGHUP is refused and logged; serving goes on.
	if err := os.WriteFile(cfgPath, []byte("server:\n  listen: 127.0.0.1:0\nlog:\n  levle: debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "config reload failed")
	if !strings.Contains(p.Logs(), "log.levle: unknown field") {
		t.Errorf("reload error does not name the field:\n%s", p.Logs())
	}
	if code, _, _ := get(t, base+"/healthz", nil); code != 200 {
		t.Errorf("not serving after a failed reload: %d", code)
	}
	if err := os.WriteFile(cfgPath, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "config reloaded")
	if code, _, _ := get(t, base+"/metrics", nil); code != 200 {
		t.Errorf("/metrics after reload: %d", code)
	}

	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, p.Logs())
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("shutdown took %v, want under 5s", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("agent did not stop within 10s of SIGTERM:\n%s", p.Logs())
	}
	if !strings.Contains(p.Logs(), "shutting down") {
		t.Errorf("no shutdown log:\n%s", p.Logs())
	}
}

// TestAgentDefaultsBindLoopback checks the zero-config listen address
// without colliding with a real agent: --listen is not given, only the
// port is moved through --set so the host stays loopback.
func TestAgentDefaultsBindLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary: runs without -short")
	}
	p := startAgent(t, "--set", "server.listen=127.0.0.1:0", "--data-dir", t.TempDir())
	addr := p.waitAddr(t)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("default bind %s is not loopback", addr)
	}
	logs := p.Logs()
	for _, want := range []string{"starting netsight", "dashboard=http://127.0.0.1:"} {
		if !strings.Contains(logs, want) {
			t.Errorf("startup log lacks %q:\n%s", want, logs)
		}
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("no exit on SIGINT")
	}
}
