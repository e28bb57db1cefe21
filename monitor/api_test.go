package monitor

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/netsight/netsight/flow"
)

func get(t *testing.T, h http.Handler, url string, code int, out any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
	if rec.Code != code {
		t.Fatalf("GET %s: %d %s, want %d", url, rec.Code, rec.Body, code)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func TestAPI(t *testing.T) {
	e, tab := newTestEngine(t)
	now := time.Now()
	a := conn(1, "10.1.0.2:40000", "10.2.0.2:5201", flow.DirClient)
	b := conn(2, "10.1.0.2:40001", "10.3.0.2:443", flow.DirClient)
	c := conn(3, "10.1.0.2:40002", "10.3.0.3:443", flow.DirClient)
	a.BytesSent, a.Retransmits = 5000, 1
	b.BytesSent, b.Retransmits, b.RTOs = 100, 9, 2
	c.State, c.ConnectFailed, c.ConnectResult = "close", true, "refused"
	tab.UpsertBatch([]flow.Record{a, b, c}, now)
	h := Handler(e)

	var mons struct {
		Monitors []Summary `json:"monitors"`
	}
	get(t, h, "/api/v1/monitors", 200, &mons)
	if len(mons.Monitors) != 4 || mons.Monitors[0].Name != "all" || mons.Monitors[0].BytesSent != 5100 ||
		mons.Monitors[0].ConnectFailures != 1 || mons.Monitors[0].WindowSeconds != 60 {
		t.Fatalf("monitors: %+v", mons.Monitors)
	}
	if m := mons.Monitors[2]; m.Name != "to-b" || m.Retransmits != 9 || m.RTOs != 2 || m.RTTP50 <= 0 || m.HandshakeP50 <= 0 ||
		len(m.Slots.Bytes) != FineSlots || m.Slots.Bytes[FineSlots-1] != 100 {
		t.Errorf("to-b: %+v", m)
	}

	var top struct {
		Rows []map[string]any `json:"rows"`
	}
	get(t, h, "/api/v1/monitors/all/top?metric=retransmits&limit=2", 200, &top)
	if len(top.Rows) != 2 || top.Rows[0]["key"].(map[string]any)["remote"] != "10.3.0.2" || top.Rows[0]["category"] != "inter_zone" {
		t.Errorf("top: %+v", top.Rows)
	}
	get(t, h, "/api/v1/monitors/to-b/top?metric=connect_failures&group_by=remote_port&window=1h", 200, &top)
	if len(top.Rows) != 1 || top.Rows[0]["key"].(map[string]any)["remote_port"] != 443.0 || top.Rows[0]["connect_failures"] != 1.0 ||
		top.Rows[0]["connections"] != 2.0 {
		t.Errorf("top by port: %+v", top.Rows)
	}

	var ins struct {
		Rows       []Row            `json:"rows"`
		Categories []CategoryTotals `json:"categories"`
	}
	get(t, h, "/api/v1/insights?category=inter_zone&metric=bytes", 200, &ins)
	if len(ins.Rows) != 2 || ins.Rows[0].Key["remote"] != "10.3.0.2" {
		t.Errorf("insights rows: %+v", ins.Rows)
	}
	for _, c := range ins.Categories {
		if c.Category == "intra_zone" && c.BytesSent != 5000 || c.Category == "inter_zone" && c.Retransmits != 9 {
			t.Errorf("category %+v", c)
		}
	}

	var er map[string]string
	for _, u := range []string{"/api/v1/monitors/all/top?metric=latency", "/api/v1/monitors/all/top?window=2h",
		"/api/v1/monitors/all/top?group_by=pod", "/api/v1/insights?category=cross_zone", "/api/v1/monitors/all/top?limit=x"} {
		get(t, h, u, 400, &er)
		if er["error"] == "" {
			t.Errorf("%s: no error message", u)
		}
	}
	get(t, h, "/api/v1/monitors/nope/top", 404, &er)
	if !strings.Contains(er["error"], `"nope"`) {
		t.Errorf("404 error %q", er["error"])
	}
}
