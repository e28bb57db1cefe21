package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestTopUsage(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		code    int
		wantOut string
		wantErr string
	}{
		{[]string{"top", "--help"}, 0, "-agent-bearer-token-file file", ""},
		{[]string{"help", "top"}, 0, "netsight top --once --json", ""},
		{[]string{"top"}, 2, "", "standard output is not a terminal; use --once"},
		{[]string{"top", "--json"}, 2, "", "--json needs --once"},
		{[]string{"top", "--once", "--sort", "bogus"}, 2, "", `sort "bogus": want retrans, rtt, throughput or failures`},
		{[]string{"top", "--once", "--filter", "port:0"}, 2, "", "port must be 1-65535"},
		{[]string{"top", "--once", "--interval", "1ms"}, 2, "", "--interval must be between 100ms and 1h"},
		{[]string{"top", "--once", "--agent", "ftp://x"}, 2, "", "--agent must be an http:// or https:// URL"},
		{[]string{"top", "--once", "--agent", "http://127.0.0.1:1", "--agent-basic-auth-user", "a", "--agent-bearer-token-file", "f"}, 2, "", "not both"},
		{[]string{"top", "--once", "--agent", "http://127.0.0.1:1", "--agent-cert-file", "c"}, 2, "", "go together"},
		{[]string{"top", "--once", "--agent", "http://127.0.0.1:1", "--set", "a=b"}, 2, "", "not with --agent"},
		{[]string{"top", "--once", "--agent", "http://127.0.0.1:1"}, 1, "", "agent /api/v1/flows: Get"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := runMain(context.Background(), tc.args, &out, &errb)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, errb.String())
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("stdout %q lacks %q", out.String(), tc.wantOut)
			}
			if !strings.Contains(errb.String(), tc.wantErr) {
				t.Errorf("stderr %q lacks %q", errb.String(), tc.wantErr)
			}
		})
	}
}

// loopbackConns opens n connections to a listener on 127.0.0.1, the i-th
// client sending (i+1)*1000 bytes that the server reads; all stay open
// (idle) until the test ends. It returns the listener's port.
func loopbackConns(t *testing.T, n int) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	for i := range n {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write(bytes.Repeat([]byte{'x'}, (i+1)*1000)); err != nil {
			t.Fatal(err)
		}
	}
	return ln.Addr().(*net.TCPAddr).Port
}

// apiFlow is the part of an /api/v1/flows record the comparison checks.
type apiFlow struct {
	ID              uint64 `json:"id"`
	LocalAddr       string `json:"local_addr"`
	LocalPort       uint16 `json:"local_port"`
	RemoteAddr      string `json:"remote_addr"`
	RemotePort      uint16 `json:"remote_port"`
	Direction       string `json:"direction"`
	PID             uint32 `json:"pid"`
	Comm            string `json:"comm"`
	NetNS           uint32 `json:"netns"`
	State           string `json:"state"`
	BytesSent       uint64 `json:"bytes_sent"`
	BytesReceived   uint64 `json:"bytes_received"`
	Retransmissions uint64 `json:"retransmissions"`
	NetNSName       string `json:"netns_name"`
	Workload        string `json:"workload"`
}

func sortFlows(fs []apiFlow) []apiFlow {
	sort.Slice(fs, func(i, j int) bool { return fs[i].ID < fs[j].ID })
	return fs
}

// TestTopOnceJSONMatchesAgent runs an agent (basic auth on) on loopback
// while the test holds six loopback connection ends open and idle:
// `netsight top --once --json --agent` with the same credentials reports
// the same connections, with the same addresses, process and counters, as
// the agent's /api/v1/flows; without credentials it fails naming the 401.
func TestTopOnceJSONMatchesAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary: runs without -short")
	}
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webCfg, pwFile := filepath.Join(dir, "web.yml"), filepath.Join(dir, "pw")
	if err := os.WriteFile(webCfg, []byte("basic_auth_users:\n  alice: "+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startAgent(t, "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--web.config.file", webCfg,
		"--set", "collectors.flows.interval=1s")
	base := "http://" + p.waitAddr(t)
	t.Cleanup(func() { stopAgent(t, p) })
	// After the agent serves: the eBPF back end sees connections opened
	// after it attached.
	port := loopbackConns(t, 3)

	apiFlows := func() []apiFlow {
		req, _ := http.NewRequest("GET", base+"/api/v1/flows?port="+strconv.Itoa(port), nil)
		req.SetBasicAuth("alice", "s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc struct{ Flows []apiFlow }
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != 200 {
			t.Fatalf("/api/v1/flows: %d %v", resp.StatusCode, err)
		}
		return sortFlows(doc.Flows)
	}
	// Wait until the agent saw all six ends with their bytes.
	var api []apiFlow
	deadline := time.Now().Add(30 * time.Second)
	for {
		api = apiFlows()
		var sent uint64
		for _, f := range api {
			if f.Direction == "client" {
				sent += f.BytesSent
			}
		}
		// bytes_sent is tcpi_bytes_acked, which counts the SYN too.
		if len(api) == 6 && sent >= 6000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent never showed the 6 connection ends with 6000 bytes sent: %+v\n%s", api, p.Logs())
		}
		time.Sleep(300 * time.Millisecond)
	}

	run := func(auth bool) (int, string, string) {
		args := []string{"top", "--once", "--json", "--interval", "300ms", "--agent", base, "--filter", "port:" + strconv.Itoa(port)}
		if auth {
			args = append(args, "--agent-basic-auth-user", "alice", "--agent-basic-auth-password-file", pwFile)
		}
		var out, errb bytes.Buffer
		code := runMain(context.Background(), args, &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, stderr := run(true)
	if code != 0 {
		t.Fatalf("top --once --json: exit %d: %s", code, stderr)
	}
	var rep struct {
		Source      string    `json:"source"`
		Connections []apiFlow `json:"connections"`
		Remotes     []struct {
			RemoteAddr  string `json:"remote_addr"`
			Connections int    `json:"connections"`
		} `json:"remotes"`
		Host struct {
			Collectors []struct{ Name string } `json:"collectors"`
		} `json:"host"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("decode: %v\n%s", err, out)
	}
	after := apiFlows()
	if fmt.Sprint(api) != fmt.Sprint(after) {
		t.Fatalf("the idle connections changed in the agent meanwhile:\n%+v\n%+v", api, after)
	}
	if got := sortFlows(rep.Connections); fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", api) {
		t.Errorf("top --once --json differs from /api/v1/flows:\n top %+v\n api %+v", got, api)
	}
	for _, f := range api {
		if f.PID != uint32(os.Getpid()) {
			t.Errorf("connection %d: pid %d, want the test's %d", f.ID, f.PID, os.Getpid())
		}
	}
	if len(rep.Remotes) != 1 || rep.Remotes[0].RemoteAddr != "127.0.0.1" || rep.Remotes[0].Connections != 6 {
		t.Errorf("remotes %+v", rep.Remotes)
	}
	if len(rep.Host.Collectors) == 0 || rep.Source != base {
		t.Errorf("source %q, collectors %+v", rep.Source, rep.Host.Collectors)
	}
	if code, _, stderr := run(false); code != 1 || !strings.Contains(stderr, "agent /api/v1/flows: 401 Unauthorized") {
		t.Errorf("without credentials: exit %d, stderr %q", code, stderr)
	}
}

// TestTopOnceLocal runs `netsight top --once --json` with its own
// collectors (the sock_diag back end, which lists connections already
// open) while the test holds loopback connections open: it reports them
// with the test's pid, their bytes, the host namespace and the collectors.
func TestTopOnceLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the collectors: runs without -short")
	}
	port := loopbackConns(t, 3)
	var out, errb bytes.Buffer
	code := runMain(context.Background(), []string{"top", "--once", "--json", "--interval", "500ms",
		"--set", "collectors.flows.backend=sockdiag", "--filter", "port:" + strconv.Itoa(port)}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var rep struct {
		Source      string `json:"source"`
		Backend     string `json:"backend"`
		Connections []struct {
			apiFlow
			Place string `json:"place"`
		} `json:"connections"`
		Host struct {
			Collectors []struct {
				Name string `json:"name"`
				Up   bool   `json:"up"`
			} `json:"collectors"`
		} `json:"host"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode: %v\n%s", err, out.String())
	}
	if rep.Source != "local" || rep.Backend != "sockdiag" || len(rep.Connections) != 6 {
		t.Fatalf("source %q backend %q, %d connections, want local, sockdiag, 6:\n%s", rep.Source, rep.Backend, len(rep.Connections), out.String())
	}
	var sent uint64
	for _, c := range rep.Connections {
		if c.PID != uint32(os.Getpid()) || c.Place != "host" || c.State != "established" {
			t.Errorf("connection %+v: want pid %d, place host, established", c, os.Getpid())
		}
		if c.Direction == "client" {
			sent += c.BytesSent
		}
	}
	if sent < 6000 {
		t.Errorf("clients sent %d bytes, want at least 6000", sent)
	}
	up := map[string]bool{}
	for _, c := range rep.Host.Collectors {
		up[c.Name] = c.Up
	}
	if !up["flows"] || len(up) != 4 {
		t.Errorf("collectors %v: want flows up among conntrack, flows, nic, probe", up)
	}
}
