package agent_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/netsight/netsight/agent"
	_ "github.com/netsight/netsight/collector/all"
	"github.com/netsight/netsight/internal/testlab"
)

// allOff disables every collector; a test turns on the ones it needs.
const allOff = `
  capture: {enabled: false}
  conntrack: {enabled: false}
  drops: {enabled: false}
  flows: {enabled: false}
  netstat: {enabled: false}
  nftables: {enabled: false}
  nic: {enabled: false}
  probe: {enabled: false}
  sockets: {enabled: false}
`

// lastDataDir is the data directory (holding netsight.yaml) of the last
// agent startAgent started.
var lastDataDir string

// startAgent runs an agent with the YAML config body (server, data_dir and
// store are set here) and returns its base URL.
func startAgent(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	lastDataDir = dir
	cfg := fmt.Sprintf("server:\n  listen: 127.0.0.1:0\ndata_dir: %s\nstore:\n  enabled: false\n%s", dir, body)
	file := filepath.Join(dir, "netsight.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	a, err := agent.New(agent.Options{ConfigFile: file, LogOutput: io.Discard, OnListen: func(s string) { addr <- s }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	select {
	case s := <-addr:
		return "http://" + s
	case err := <-done:
		t.Fatalf("agent ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not start")
	}
	return ""
}

// waitReady waits until every collector finished its first update.
func waitReady(t *testing.T, base string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("agent not ready after 30s")
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v: %s", url, resp.StatusCode, err, b)
	}
	return string(b)
}

// With paths.procfs pointed at a fixture tree, the conntrack collector reads
// the fixture: config -> collector.Deps.Paths -> the collector (no root).
func TestProcFSFromConfig(t *testing.T) {
	fixture, err := filepath.Abs("../collector/conntrack/testdata/proc")
	if err != nil {
		t.Fatal(err)
	}
	base := startAgent(t, fmt.Sprintf("paths:\n  procfs: %s\ncollectors:%s", fixture,
		strings.Replace(allOff, "conntrack: {enabled: false}", "conntrack: {enabled: true, max_dump_entries: 0}", 1)))
	waitReady(t, base)
	metrics := get(t, base+"/metrics")
	for _, want := range []string{"netsight_conntrack_entries 61234", "netsight_conntrack_entries_limit 65536",
		`netsight_collector_up{collector="conntrack"} 1`} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// A host with capture only (collectors.flows off) lists the captured
// connections in /api/v1/flows, with bytes and retransmissions.
func TestCaptureOnlyFlowsAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test")
	}
	testlab.RequireRoot(t)
	testlab.RequireBinary(t, "nft")
	lab := testlab.NewClientServer(t, 231)
	cli, srv := lab.Cli, lab.Srv
	srvIP := netip.MustParseAddr(lab.SrvIP)
	lab.DropToPort(t, 5, 5201) // retransmissions
	base := startAgent(t, "collectors:"+strings.Replace(allOff, "capture: {enabled: false}",
		fmt.Sprintf("capture: {enabled: true, interval: 1s, interfaces: [vcli], netns: %s}", filepath.Join(testlab.NetnsDir, cli.Name)), 1))

	ln, err := srv.ListenTCP(netip.AddrPortFrom(srvIP, 5201).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	// Wait until capture runs on vcli, then send 4 MB (bounded) once.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(get(t, base+"/metrics"), `netsight_capture_interfaces 1`) {
		if time.Now().After(deadline) {
			t.Fatal("capture never started on vcli")
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := cli.Dial(ctx, "tcp", netip.AddrPortFrom(srvIP, 5201).String())
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write(make([]byte, 4<<20)); err != nil {
		t.Fatal(err)
	}
	local := conn.LocalAddr().(*net.TCPAddr).AddrPort()

	type apiFlow struct {
		LocalPort       uint16 `json:"local_port"`
		RemoteAddr      string `json:"remote_addr"`
		RemotePort      uint16 `json:"remote_port"`
		BytesSent       uint64 `json:"bytes_sent"`
		Retransmissions uint64 `json:"retransmissions"`
	}
	var resp struct {
		Backend string    `json:"backend"`
		Flows   []apiFlow `json:"flows"`
	}
	var got apiFlow
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err := json.Unmarshal([]byte(get(t, base+"/api/v1/flows?port=5201")), &resp); err != nil {
			t.Fatal(err)
		}
		for _, f := range resp.Flows {
			if f.LocalPort == local.Port() && f.RemoteAddr == srvIP.String() {
				got = f
			}
		}
		if got.BytesSent >= 3<<20 && got.Retransmissions > 0 {
			break
		}
	}
	conn.Close()
	if resp.Backend != "capture" || got.RemotePort != 5201 || got.BytesSent < 3<<20 || got.Retransmissions == 0 {
		t.Fatalf("backend %q, flow %+v (want bytes_sent >= 3 MiB and retransmissions > 0); all: %+v", resp.Backend, got, resp.Flows)
	}
	t.Logf("capture-only /api/v1/flows: %+v", got)
}

var update = flag.Bool("update", false, "rewrite testdata/metrics.golden")

// TestMetricsGolden pins the whole agent's /metrics shape: every family's
// name, type and label names (values masked), with the conntrack fixture,
// the sockets counter and the flows sock_diag back end running. go_*
// families depend on the Go release and are left out. The exposition must
// also pass `promtool check metrics`.
func TestMetricsGolden(t *testing.T) {
	fixture, err := filepath.Abs("../collector/conntrack/testdata/proc")
	if err != nil {
		t.Fatal(err)
	}
	on := strings.NewReplacer(
		"conntrack: {enabled: false}", "conntrack: {enabled: true, max_dump_entries: 0}",
		"sockets: {enabled: false}", "sockets: {enabled: true, backend: sockdiag}",
		"flows: {enabled: false}", "flows: {enabled: true, backend: sockdiag}",
	).Replace(allOff)
	base := startAgent(t, fmt.Sprintf("paths:\n  procfs: %s\ncollectors:%s", fixture, on))
	waitReady(t, base)
	text := get(t, base+"/metrics")
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for name, mf := range mfs {
		if strings.HasPrefix(name, "go_") {
			continue
		}
		labels := map[string]bool{}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = true
			}
		}
		ls := slices.Sorted(maps.Keys(labels))
		lines = append(lines, fmt.Sprintf("%s %s {%s}", name, strings.ToLower(mf.GetType().String()), strings.Join(ls, ",")))
	}
	slices.Sort(lines)
	got := strings.Join(lines, "\n") + "\n"
	golden := filepath.Join("testdata", "metrics.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if got != string(want) {
		t.Errorf("/metrics families changed (run with -update if intended):\n%s", diffLines(string(want), got))
	}
	promtool := testlab.RequireBinary(t, "promtool")
	if promtool == "" {
		return
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for _, l := range w {
		if !slices.Contains(g, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// A reload (SIGHUP) rebuilds the collectors and keeps every route: the flow
// API and the status answer before and after, and the new config applies.
func TestReloadKeepsRoutes(t *testing.T) {
	fixture, err := filepath.Abs("../collector/conntrack/testdata/proc")
	if err != nil {
		t.Fatal(err)
	}
	body := func(conntrack string) string {
		return fmt.Sprintf("paths:\n  procfs: %s\ncollectors:%s", fixture,
			strings.Replace(allOff, "conntrack: {enabled: false}", conntrack, 1))
	}
	base := startAgent(t, body("conntrack: {enabled: true, max_dump_entries: 0}"))
	waitReady(t, base)
	get(t, base+"/api/v1/flows")
	if s := get(t, base+"/api/v1/status/collectors"); !strings.Contains(s, `"name": "conntrack",
    "state": "running"`) {
		t.Fatalf("before reload: %s", s)
	}
	file := filepath.Join(strings.TrimSpace(lastDataDir), "netsight.yaml")
	cfg, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), "conntrack: {enabled: true, max_dump_entries: 0}", "conntrack: {enabled: false}", 1))
	if err := os.WriteFile(file, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if s := get(t, base+"/api/v1/status/collectors"); strings.Contains(s, `"name": "conntrack",
    "state": "disabled"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("reload not applied")
		}
	}
	get(t, base+"/api/v1/flows")
	get(t, base+"/ui/meta.json")
	if code := status(t, base+"/api/v1/query?query=1"); code != http.StatusServiceUnavailable {
		t.Errorf("store API after reload: %d, want 503 (store disabled)", code)
	}
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
