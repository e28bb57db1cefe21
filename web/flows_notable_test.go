package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/internal/kernel"
)

// TestFlowsNotableClosedAndNames: with closed_since the API lists the
// closed connections that mattered after they left the table (with why),
// and each connection carries its netns name and workload when known.
func TestFlowsNotableClosedAndNames(t *testing.T) {
	nsDir, proc := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(nsDir, "blue"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(proc, "4242"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(proc, "4242", "cgroup"), []byte("0::/system.slice/api.service\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ino := func(p string) uint64 {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	names := &kernel.Names{NetNSDir: nsDir, ProcFS: proc}

	now := time.Now()
	tab := flow.NewTable(flow.Config{Retention: time.Second})
	open := flow.Record{ID: 1, Local: netip.MustParseAddrPort("10.0.0.1:40000"), Remote: netip.MustParseAddrPort("10.0.0.2:443"),
		Direction: flow.DirClient, State: "established", Start: now.Add(-time.Minute), NetNS: uint32(ino(filepath.Join(nsDir, "blue"))), PID: 4242, CgroupID: 9}
	closed := open
	closed.ID, closed.Local, closed.Retransmits, closed.Closed, closed.End = 2, netip.MustParseAddrPort("10.0.0.1:40001"), 9, true, now.Add(-30*time.Second)
	tab.Upsert(closed, now.Add(-30*time.Second))
	tab.Expire(now) // the closed one leaves the table
	tab.Upsert(open, now)

	h := FlowsHandlerWith(tab, FlowsOptions{Names: names})
	get := func(q string) (int, map[string]any) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/flows"+q, nil))
		var m map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &m)
		return rec.Code, m
	}
	code, m := get("?closed_since=" + strconv.FormatInt(now.Add(-time.Hour).Unix(), 10))
	if code != 200 {
		t.Fatalf("status %d: %v", code, m)
	}
	flows, _ := m["flows"].([]any)
	notable, _ := m["notable_closed"].([]any)
	if len(flows) != 1 || len(notable) != 1 {
		t.Fatalf("flows %v notable %v", flows, notable)
	}
	f, n := flows[0].(map[string]any), notable[0].(map[string]any)
	if f["netns_name"] != "blue" || f["workload"] != "api.service" || f["local_port"] != 40000.0 {
		t.Errorf("open flow %v", f)
	}
	if n["retransmissions"] != 9.0 || n["closed"] != true || len(n["notable"].([]any)) != 1 || n["notable"].([]any)[0] != "retransmissions" {
		t.Errorf("notable flow %v", n)
	}
	// A time range that starts after it closed leaves it out; without
	// closed_since there is no notable_closed at all.
	if _, m := get("?closed_since=" + strconv.FormatInt(now.Add(-10*time.Second).Unix(), 10)); len(m["notable_closed"].([]any)) != 0 {
		t.Errorf("closed 30s ago listed for the last 10s: %v", m["notable_closed"])
	}
	if _, m := get(""); m["notable_closed"] != nil {
		t.Errorf("notable_closed without closed_since: %v", m["notable_closed"])
	}
	if code, m := get("?closed_since=yesterday"); code != 400 || m["error"] != `closed_since: want Unix seconds, got "yesterday"` {
		t.Errorf("bad closed_since: %d %v", code, m)
	}
}
