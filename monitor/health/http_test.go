package health

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestHandler(t *testing.T) {
	r := newRunner()
	r.eval(30, nil)
	r.eval(3, map[netip.Addr][]mod{b1: {loss(0.05)}})
	srv := httptest.NewServer(Handler(r.e))
	defer srv.Close()

	get := func(q string) (int, map[string]any) {
		resp, err := http.Get(srv.URL + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if resp.StatusCode == 200 {
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, body
	}
	code, body := get("/")
	if code != 200 || body["verdict"] != "remote_degraded" {
		t.Fatalf("%d %v", code, body["verdict"])
	}
	mons := body["monitors"].([]any)
	if len(mons) != 3 {
		t.Fatalf("%d monitors", len(mons))
	}
	m := mons[0].(map[string]any)
	for _, k := range []string{"name", "verdict", "since", "confidence", "summary", "culprit", "evidence", "findings", "transitions"} {
		if _, ok := m[k]; !ok {
			t.Errorf("monitor lacks %q: %v", k, m)
		}
	}
	if m["name"] != "all" || !strings.Contains(m["summary"].(string), "10.2.0.2:5201") {
		t.Errorf("%v", m)
	}
	code, body = get("/?monitor=to-a")
	if code != 200 || body["verdict"] != "healthy" || len(body["monitors"].([]any)) != 1 {
		t.Errorf("?monitor=to-a: %d %v", code, body)
	}
	if code, _ := get("/?monitor=nope"); code != 404 {
		t.Errorf("unknown monitor: %d", code)
	}

	// Before any evaluation (or without monitors): insufficient_data.
	srv2 := httptest.NewServer(Handler(New(DefaultConfig())))
	defer srv2.Close()
	resp, err := http.Get(srv2.URL)
	if err != nil {
		t.Fatal(err)
	}
	var empty Report
	_ = json.NewDecoder(resp.Body).Decode(&empty)
	resp.Body.Close()
	if empty.Verdict != InsufficientData || empty.Monitors == nil {
		t.Errorf("empty engine: %+v", empty)
	}
}

func TestCollector(t *testing.T) {
	r := newRunner()
	r.eval(30, nil)
	r.eval(3, map[netip.Addr][]mod{b1: {loss(0.05)}})
	c := NewCollector(r.e)
	if err := testutil.CollectAndCompare(c, strings.NewReader(`
# HELP netsight_monitor_health_indicator 1 when the monitor's verdict places the trouble outside this host (path_degraded, remote_degraded, remote_application), else 0: Network Flow Monitor's HealthIndicator.
# TYPE netsight_monitor_health_indicator gauge
netsight_monitor_health_indicator{monitor="all"} 1
netsight_monitor_health_indicator{monitor="to-a"} 0
netsight_monitor_health_indicator{monitor="to-b"} 1
`), "netsight_monitor_health_indicator"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c, "netsight_monitor_verdict"); n != 27 {
		t.Errorf("%d verdict series, want 3 monitors x 9", n)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	ones := map[string]string{}
	for _, mf := range mfs {
		if mf.GetName() != "netsight_monitor_verdict" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetGauge().GetValue() == 1 {
				var mon, v string
				for _, l := range m.GetLabel() {
					if l.GetName() == "monitor" {
						mon = l.GetValue()
					} else {
						v = l.GetValue()
					}
				}
				if prev, dup := ones[mon]; dup {
					t.Errorf("%s has two current verdicts: %s and %s", mon, prev, v)
				}
				ones[mon] = v
			}
		}
	}
	if ones["all"] != "remote_degraded" || ones["to-a"] != "healthy" || ones["to-b"] != "remote_degraded" {
		t.Errorf("state set: %v", ones)
	}
}
