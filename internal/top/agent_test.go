package top

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/web"
)

// agentServer serves the agent's flow API from a real flow.Table, the
// metrics of testdata/host.prom and a status list.
func agentServer(t *testing.T, recs []flow.Record) (*httptest.Server, *flow.Table) {
	t.Helper()
	table := flow.NewTable(flow.Config{})
	table.SetSource("sockdiag")
	for _, r := range recs {
		table.Upsert(r, t0)
	}
	prom, err := os.ReadFile("testdata/host.prom")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(web.FlowsPattern, web.FlowsHandlerWith(table, web.FlowsOptions{Names: testNamer{}}))
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(prom) })
	mux.HandleFunc("GET /api/v1/status/collectors", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`[{"name":"probe","state":"failed","up":false,"reason":"stopped: no socket","interval_ns":5000000000},
			{"name":"capture","state":"disabled","up":false}]`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, table
}

func TestAgentSource(t *testing.T) {
	_, cur := testSnapshots(t)
	srv, table := agentServer(t, cur.Flows)
	u, _ := url.Parse(srv.URL)
	src := &AgentSource{URL: u, Client: srv.Client(), Limit: 3}
	snap, err := src.Snapshot(context.Background(), flow.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	want := table.Flows(flow.Filter{Limit: 3})
	if !reflect.DeepEqual(snap.Flows, want) {
		t.Errorf("flows differ from the table's:\n got %+v\nwant %+v", snap.Flows, want)
	}
	if !snap.Truncated || snap.Backend != "sockdiag" {
		t.Errorf("truncated %v backend %q, want true, sockdiag", snap.Truncated, snap.Backend)
	}
	var names []string
	for _, c := range snap.Host.Collectors {
		names = append(names, c.Name+"="+c.State)
	}
	if got := strings.Join(names, " "); got != "capture=disabled conntrack=running flows=running nic=running probe=failed" {
		t.Errorf("collectors %s", got)
	}
	if snap.Host.Conntrack == nil || snap.Host.Conntrack.Entries != 52000 {
		t.Errorf("conntrack %+v", snap.Host.Conntrack)
	}
	// The agent's names travel with the connections: a view without Names
	// of its own shows them.
	all, err := (&AgentSource{URL: u, Client: srv.Client()}).Snapshot(context.Background(), flow.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if l := all.Labels; l[1].NetNSName != "blue" || l[4].Workload != "pod 1b2c3d4e" || !l[2].HostNetNS || l[1].HostNetNS {
		t.Errorf("labels %+v", l)
	}
	m := New(Options{Source: src, Styles: testStyles(false)})
	m = step(t, m, tea160x48)
	m = step(t, m, snapshotMsg{snap: all})
	v := m.View()
	for _, want := range []string{"blue", "pod 1b2c3d4e", "host"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks the agent's name %q:\n%s", want, v)
		}
	}
}

func TestAgentSourceErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"unauthorized", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
		}, "agent /api/v1/flows: 401 Unauthorized: Unauthorized"},
		{"not json", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>")) }, "agent /api/v1/flows: decode"},
		{"bad record", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"flows":[{"remote_addr":"300.1.1.1"}]}`))
		}, "remote_addr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			u, _ := url.Parse(srv.URL + "/prefix/")
			_, err := (&AgentSource{URL: u, Client: srv.Client()}).Snapshot(context.Background(), flow.Filter{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestHostFromMetrics(t *testing.T) {
	h := testHost(t)
	c := h.Conntrack
	if c == nil || c.Limit != 65536 || *c.GrowthPerSecond != 12.5 || *c.ExhaustionSeconds != 1083 || c.InsertFailed != 3 {
		t.Fatalf("conntrack %+v", c)
	}
	if len(h.NICs) != 1 || h.NICs[0].Exceeded["bw_out"] != 120 || *h.NICs[0].ConntrackAvailable != 40000 {
		t.Errorf("nics %+v", h.NICs)
	}
	if len(h.Probes) != 2 {
		t.Fatalf("probes %+v", h.Probes)
	}
	icmp, tcp := h.Probes[0], h.Probes[1]
	if icmp.Target != "10.0.0.1" || icmp.Failing() || *icmp.RTTAvgSeconds != 0.00042 {
		t.Errorf("icmp %+v", icmp)
	}
	if tcp.Target != "db:5432" || !tcp.Failing() || tcp.RTTAvgSeconds != nil || tcp.Outcomes["refused"] != 40 {
		t.Errorf("tcp %+v", tcp)
	}
	// Not growing: +Inf exhaustion reads as nil.
	mfs, err := ParseMetrics([]byte("netsight_conntrack_entries 5\nnetsight_conntrack_exhaustion_seconds +Inf\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c := HostFromMetrics(mfs).Conntrack; c == nil || c.ExhaustionSeconds != nil {
		t.Errorf("not growing: %+v", c)
	}
	if h := HostFromMetrics(nil); h.Conntrack != nil || len(h.NICs)+len(h.Probes)+len(h.Collectors) != 0 {
		t.Errorf("empty metrics: %+v", h)
	}
}

// TestReportJSON: each connection carries the flow API's fields with the
// API's values, plus top's; no *_ns field anywhere.
func TestReportJSON(t *testing.T) {
	prev, cur := testSnapshots(t)
	f, _ := ParseFilter("port:5201")
	rep := BuildReport(prev, cur, ReportOptions{Source: "local", Sort: SortRetrans, Filter: f, Names: testNamer{}})
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	walkKeys(doc, func(k string) {
		if strings.HasSuffix(k, "_ns") {
			t.Errorf("field %q: the JSON unit rule wants *_seconds", k)
		}
	})
	if doc["interval_seconds"] != 1.0 || doc["filter"] != "port:5201" {
		t.Errorf("interval %v filter %v", doc["interval_seconds"], doc["filter"])
	}
	conns := doc["connections"].([]any)
	if len(conns) != 2 {
		t.Fatalf("%d connections, want 2", len(conns))
	}
	for i, c := range conns {
		got := c.(map[string]any)
		var api map[string]any
		ab, _ := json.Marshal(rep.Connections[i].Row.Rec)
		_ = json.Unmarshal(ab, &api)
		for k, v := range api {
			if k == "duration_seconds" {
				continue // computed at marshal time for open connections
			}
			if !reflect.DeepEqual(got[k], v) {
				t.Errorf("connection %d: %s = %v, API %v", i, k, got[k], v)
			}
		}
	}
	first := conns[0].(map[string]any)
	if first["retransmissions_per_second"] != 35.0 || first["send_rate_bytes_per_second"] != float64(40<<20) ||
		first["netns_name"] != "blue" || first["state_name"] != "ESTAB" {
		t.Errorf("first connection %v", first)
	}
	rem := doc["remotes"].([]any)
	if len(rem) != 1 || rem[0].(map[string]any)["connections"] != 2.0 {
		t.Errorf("remotes %v", rem)
	}
	host := doc["host"].(map[string]any)
	for _, k := range []string{"collectors", "conntrack", "nic_allowances", "probes"} {
		if _, ok := host[k]; !ok {
			t.Errorf("host lacks %s", k)
		}
	}
	if txt := RenderReport(rep, 100); !strings.Contains(txt, "iperf3") || strings.Contains(txt, "\x1b[") {
		t.Errorf("text report:\n%q", txt)
	}
}

func walkKeys(v any, fn func(string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			fn(k)
			walkKeys(x, fn)
		}
	case []any:
		for _, x := range v {
			walkKeys(x, fn)
		}
	}
}

// TestAgentSourcePushdown: remote and port filters go to the API, so its
// limit counts matching connections only.
func TestAgentSourcePushdown(t *testing.T) {
	_, cur := testSnapshots(t)
	srv, _ := agentServer(t, cur.Flows)
	u, _ := url.Parse(srv.URL)
	f, _ := ParseFilter("port:5201 remote:10.1.0.0/16 proc:iperf3")
	snap, err := (&AgentSource{URL: u, Client: srv.Client(), Limit: 2}).Snapshot(context.Background(), f.Pushdown())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Flows) != 2 || snap.Truncated {
		t.Errorf("%d flows (truncated %v), want the 2 iperf3 ones", len(snap.Flows), snap.Truncated)
	}
}
