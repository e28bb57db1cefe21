package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netsight/netsight/internal/testlab"
	"github.com/netsight/netsight/store"
)

// waitExit waits for the agent to exit on its own and returns its exit code.
func (p *agentProc) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case err := <-p.done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(30 * time.Second):
		t.Fatalf("agent did not exit within 30s:\n%s", p.Logs())
	}
	return -1
}

func stopAgent(t *testing.T, p *agentProc) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("no exit on SIGTERM:\n%s", p.Logs())
	}
}

// Issue 11 item 4: non-sequential WAL segments used to exit 1 and take
// /metrics down. Now the agent serves /metrics with its collectors up and
// the store down (netsight_store_up 0) with the reason and a hint.
func TestAgentCorruptWALStoreDown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary: runs without -short")
	}
	dataDir := t.TempDir()
	tsdbDir := filepath.Join(dataDir, store.SubDir)
	s, err := store.Open(store.Options{Dir: tsdbDir, Gatherer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ingest(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tsdbDir, "wal", "00000007"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p := startAgent(t, "--listen", "127.0.0.1:0", "--data-dir", dataDir)
	base := "http://" + p.waitAddr(t)
	defer stopAgent(t, p)
	hint := "move " + tsdbDir + " aside or set store.enabled: false"

	deadline := time.Now().Add(30 * time.Second)
	var body string
	for {
		var code int
		code, _, body = get(t, base+"/metrics", nil)
		if code != 200 {
			t.Fatalf("/metrics: %d", code)
		}
		// Wait for a collector_up line that says 1 (the first updates may
		// still be running: every collector reads 0 before its first).
		if collectorUp(body) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(body, "\nnetsight_store_up 0\n") {
		t.Errorf("/metrics lacks netsight_store_up 0")
	}
	if collectorUp(body) == 0 {
		t.Errorf("no collector up while the store is down:\n%s", body)
	}
	code, _, sbody := get(t, base+"/api/v1/status/store", nil)
	var st struct {
		Data store.Status `json:"data"`
	}
	if err := json.Unmarshal([]byte(sbody), &st); err != nil || code != 200 {
		t.Fatalf("status/store: %d %v %s", code, err, sbody)
	}
	if st.Data.Up || !strings.Contains(st.Data.Reason, "not sequential") || st.Data.Hint != hint {
		t.Errorf("store status %+v", st.Data)
	}
	if code, _, qbody := get(t, base+"/api/v1/query?query=up", nil); code != 503 || !strings.Contains(qbody, "aside") {
		t.Errorf("query while store down: %d %s", code, qbody)
	}
	if logs := p.Logs(); !strings.Contains(logs, "store unavailable") || !strings.Contains(logs, "aside or set store.enabled: false") {
		t.Errorf("log lacks the store-down line with its hint:\n%s", logs)
	}
}

// brokenWebConfigs are real broken web configs: each must stop `netsight
// run` with a non-zero exit before "netsight is serving", before any
// collector starts, naming the web-config field.
func TestAgentBrokenWebConfigFailsFast(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary: runs without -short")
	}
	dir := t.TempDir()
	files := map[string]struct{ body, want string }{
		"bad-bcrypt.yml":   {"basic_auth_users:\n  alice: notabcrypthash\n", "basic_auth_users.alice: invalid bcrypt hash"},
		"missing-cert.yml": {"tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n", "tls_server_config.cert_file: stat " + dir + "/nope.crt: no such file or directory (line 2)"},
		"unknown-key.yml":  {"tls_server_config: {}\nbasic_auth: {}\n", "basic_auth: unknown field"},
	}
	for name, f := range files {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, []byte(f.body), 0o600); err != nil {
				t.Fatal(err)
			}
			p := startAgent(t, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--web.config.file", path)
			code := p.waitExit(t)
			logs := p.Logs()
			if code == 0 {
				t.Errorf("exit 0 with a broken web config:\n%s", logs)
			}
			for _, bad := range []string{"netsight is serving", "collector enabled", "store opened"} {
				if strings.Contains(logs, bad) {
					t.Errorf("%q logged before failing:\n%s", bad, logs)
				}
			}
			if !strings.Contains(logs, "server.web_config_file: "+path+": ") || !strings.Contains(logs, f.want) {
				t.Errorf("error does not name the field %q:\n%s", f.want, logs)
			}
		})
	}
}

// A port already in use is found before the collectors (eBPF) and the
// store start.
func TestAgentPortInUseBeforeCollectors(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary: runs without -short")
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := startAgent(t, "--listen", ln.Addr().String(), "--data-dir", t.TempDir())
	if code := p.waitExit(t); code == 0 {
		t.Errorf("exit 0 on a busy port")
	}
	logs := p.Logs()
	if !strings.Contains(logs, "server.listen: listen on "+ln.Addr().String()) || !strings.Contains(logs, "address already in use") {
		t.Errorf("error does not name server.listen:\n%s", logs)
	}
	for _, bad := range []string{"collector enabled", "store opened", "netsight is serving"} {
		if strings.Contains(logs, bad) {
			t.Errorf("%q logged before the port check:\n%s", bad, logs)
		}
	}
}

// A second agent on the same data dir keeps running (its own /metrics),
// with the store down and the holder named: "another netsight (pid N)
// holds DIR".
func TestAgentSecondOnSameDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary: runs without -short")
	}
	dataDir := t.TempDir()
	p1 := startAgent(t, "--listen", "127.0.0.1:0", "--data-dir", dataDir)
	p1.waitAddr(t)
	defer stopAgent(t, p1)
	p2 := startAgent(t, "--listen", "127.0.0.1:0", "--data-dir", dataDir)
	base := "http://" + p2.waitAddr(t)
	defer stopAgent(t, p2)
	want := fmt.Sprintf("another netsight (pid %d) holds %s", p1.cmd.Process.Pid, dataDir)
	p2.waitLog(t, want)
	if code, _, body := get(t, base+"/metrics", nil); code != 200 || !strings.Contains(body, "\nnetsight_store_up 0\n") {
		t.Errorf("second agent /metrics: %d", code)
	}
	if logs := p2.Logs(); strings.Contains(logs, "lockfile replaced") || strings.Contains(logs, "resource temporarily unavailable") {
		t.Errorf("tsdb lock noise:\n%s", logs)
	}
}

// An unprivileged `netsight run` without --data-dir uses the per-user state
// directory and says so (it used to die with "permission denied" on
// /var/lib/netsight).
func TestAgentUnprivilegedUsesStateDir(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary: runs without -short")
	}
	testlab.RequireRoot(t)
	setpriv := testlab.RequireBinary(t, "setpriv")
	bin := buildBinary(t)
	// The binary's temp dir is 0700: let nobody execute it.
	if err := os.Chmod(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("/var/lib/netsight", store.LockFile)); err == nil {
		t.Log("note: /var/lib/netsight exists; nobody still cannot write it")
	}
	home := t.TempDir()
	if err := os.Chmod(filepath.Dir(home), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, xdg, want string }{
		{"home", "", filepath.Join(home, ".local", "state", "netsight")},
		{"xdg", filepath.Join(home, "xdg-state"), filepath.Join(home, "xdg-state", "netsight")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &agentProc{addr: make(chan string, 1), done: make(chan error, 1)}
			cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
				bin, "run", "--listen", "127.0.0.1:0")
			cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin"}
			if tc.xdg != "" {
				cmd.Env = append(cmd.Env, "XDG_STATE_HOME="+tc.xdg)
			}
			startProc(t, p, cmd)
			base := "http://" + p.waitAddr(t)
			defer stopAgent(t, p)
			logs := p.Logs()
			if !strings.Contains(logs, "using the per-user state directory") || !strings.Contains(logs, "data_dir="+tc.want) {
				t.Errorf("log does not say which data dir:\n%s", logs)
			}
			if _, err := os.Stat(filepath.Join(tc.want, store.SubDir)); err != nil {
				t.Errorf("store not in the state dir: %v", err)
			}
			if code, _, body := get(t, base+"/metrics", nil); code != 200 || !strings.Contains(body, "\nnetsight_store_up 1\n") {
				t.Errorf("/metrics %d, store not up:\n%s", code, logs)
			}
		})
	}
}

// collectorUp counts the netsight_collector_up series at 1 in a /metrics body.
func collectorUp(body string) int {
	up := 0
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "netsight_collector_up{") && strings.HasSuffix(l, " 1") {
			up++
		}
	}
	return up
}
