package store

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzAPI throws arbitrary parameters at every endpoint: the answer is
// always a well-formed Prometheus API envelope, never a panic or a 500 for
// bad input.
func FuzzAPI(f *testing.F) {
	ts := newTestStore(f)
	ts.fill(f, 3)
	mux := http.NewServeMux()
	NewAPI(ts.Store, BuildInfo{}, nil).Register(mux.Handle)
	for _, s := range [][4]string{
		{"/api/v1/query", "sum(rate(test_events_total[1m]))", "", ""},
		{"/api/v1/query_range", "test_gauge", "0", "1e10"},
		{"/api/v1/query_range", "test_gauge", "2020-01-01T00:00:00Z", "1m"},
		{"/api/v1/series", `{dev="eth0"}`, "-1", "5"},
		{"/api/v1/labels", "test_gauge", "", "x"},
		{"/api/v1/label/dev/values", `test_gauge{dev=~"e.*"}`, "1", "2"},
		{"/api/v1/query", "label_replace(test_gauge, \"a\", \"$1\", \"dev\", \"(.*)\")", "NaN", "Inf"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, path, q, a, b string) {
		switch path {
		case "/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels", "/api/v1/label/dev/values", "/api/v1/metadata":
		default:
			path = "/api/v1/query"
		}
		v := url.Values{"query": {q}, "match[]": {q}, "time": {a}, "start": {a}, "end": {b}, "step": {b}, "limit": {a}, "timeout": {"2s"}}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path+"?"+v.Encode(), nil))
		var env struct {
			Status    string `json:"status"`
			ErrorType string `json:"errorType"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
			t.Fatalf("%s %v: invalid JSON %v: %s", path, v, err, rec.Body)
		}
		switch {
		case env.Status == "success" && rec.Code == 200:
		case env.Status == "error" && rec.Code >= 400 && rec.Code != 500 && env.ErrorType != "":
		default:
			t.Fatalf("%s %v: %d %s", path, v, rec.Code, rec.Body)
		}
	})
}
