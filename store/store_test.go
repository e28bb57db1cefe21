package store

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
)

// testStore is a store fed by its own registry with a controllable clock.
type testStore struct {
	*Store
	reg   *prometheus.Registry
	now   time.Time
	srv   *httptest.Server
	gauge *prometheus.GaugeVec
	ctr   prometheus.Counter
	hist  prometheus.Histogram
	sum   prometheus.Summary
	api   *API
}

// base is a fixed, second-aligned start time, recent enough for the head.
var base = time.Now().Add(-30 * time.Minute).Truncate(time.Minute)

func newTestStore(t testing.TB) *testStore {
	t.Helper()
	return newTestStoreLimits(t, Limits{})
}

// newTestStoreLimits is newTestStore with query limits.
func newTestStoreLimits(t testing.TB, l Limits) *testStore {
	t.Helper()
	ts := &testStore{reg: prometheus.NewRegistry(), now: base}
	ts.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "test_gauge", Help: "A test gauge."}, []string{"dev"})
	ts.ctr = prometheus.NewCounter(prometheus.CounterOpts{Name: "test_events_total", Help: "Events."})
	ts.hist = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "test_latency_seconds", Help: "Latency.",
		Buckets: []float64{0.01, 0.1, 1}})
	ts.sum = prometheus.NewSummary(prometheus.SummaryOpts{Name: "test_size_bytes", Help: "Sizes.",
		Objectives: map[float64]float64{0.5: 0.05}})
	ts.reg.MustRegister(ts.gauge, ts.ctr, ts.hist, ts.sum)
	s, err := Open(Options{Dir: t.TempDir(), Gatherer: ts.reg, Registerer: ts.reg, Now: func() time.Time { return ts.now }, Query: l})
	if err != nil {
		t.Fatal(err)
	}
	ts.Store = s
	mux := http.NewServeMux()
	api := NewAPI(s, BuildInfo{Version: "3.16.0"}, nil)
	api.now = func() time.Time { return ts.now }
	ts.api = api
	api.Register(mux.Handle)
	ts.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		ts.srv.Close()
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return ts
}

func (ts *testStore) ingest(t testing.TB) IngestResult {
	t.Helper()
	res, err := ts.Ingest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (ts *testStore) client(t testing.TB) v1.API {
	c, err := promapi.NewClient(promapi.Config{Address: ts.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return v1.NewAPI(c)
}

// fill ingests n rounds 5 s apart; the counter grows by 10 per round and the
// gauge dev=eth0 equals the round number.
func (ts *testStore) fill(t testing.TB, n int) {
	for i := range n {
		ts.gauge.WithLabelValues("eth0").Set(float64(i))
		ts.gauge.WithLabelValues("eth1").Set(100)
		ts.ctr.Add(10)
		ts.hist.Observe(0.05)
		ts.sum.Observe(42)
		ts.ingest(t)
		ts.now = ts.now.Add(5 * time.Second)
	}
	ts.now = ts.now.Add(-5 * time.Second) // last ingest time
}

func TestIngestAndQueryThroughClient(t *testing.T) {
	ts := newTestStore(t)
	ts.fill(t, 13) // one minute of data
	api := ts.client(t)
	ctx := context.Background()

	tests := []struct {
		query string
		want  float64
	}{
		{`test_gauge{dev="eth0"}`, 12},
		{`sum(test_gauge)`, 112},
		{`rate(test_events_total[1m])`, 2}, // 10 per 5 s
		{`increase(test_events_total[1m])`, 120},
		{`histogram_quantile(0.5, test_latency_seconds_bucket)`, 0.055},
		{`test_latency_seconds_count`, 13},
		{`test_size_bytes{quantile="0.5"}`, 42},
		{`test_size_bytes_sum / test_size_bytes_count`, 42},
		{`count({__name__=~"test_.+"})`, 2 + 1 + 4 + 2 + 3},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			v, _, _, err := api.Query(ctx, tc.query, ts.now)
			if err != nil {
				t.Fatal(err)
			}
			vec, ok := v.(model.Vector)
			if !ok || len(vec) != 1 {
				t.Fatalf("want one sample, got %v", v)
			}
			if got := float64(vec[0].Value); math.Abs(got-tc.want) > 1e-9*math.Max(1, tc.want) {
				t.Errorf("%s = %v, want %v", tc.query, got, tc.want)
			}
			if vec[0].Timestamp.Time().Unix() != ts.now.Unix() {
				t.Errorf("timestamp %v, want %v", vec[0].Timestamp.Time(), ts.now)
			}
		})
	}

	r, _, _, err := api.QueryRange(ctx, `test_gauge{dev="eth0"}`, v1.Range{Start: base, End: ts.now, Step: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := r.(model.Matrix)
	if len(m) != 1 || len(m[0].Values) != 13 {
		t.Fatalf("range: want 1 series x 13 points, got %v", r)
	}
	for i, p := range m[0].Values {
		if float64(p.Value) != float64(i) || !p.Timestamp.Time().Equal(base.Add(time.Duration(i)*5*time.Second)) {
			t.Errorf("point %d = %v@%v", i, p.Value, p.Timestamp.Time())
		}
	}

	series, _, _, err := api.Series(ctx, []string{`test_gauge`}, base, ts.now)
	if err != nil || len(series) != 2 {
		t.Fatalf("series: %v %v", series, err)
	}
	names, _, _, err := api.LabelNames(ctx, []string{`test_latency_seconds_bucket`}, base, ts.now)
	if err != nil {
		t.Fatalf("labels: %v %v", names, err)
	}
	if got := labelNamesString(names); got != "__name__,le" {
		t.Errorf("labels = %s, want __name__,le", got)
	}
	vals, _, _, err := api.LabelValues(ctx, "dev", nil, base, ts.now)
	if err != nil || len(vals) != 2 || vals[0] != "eth0" || vals[1] != "eth1" {
		t.Errorf("label values dev = %v %v", vals, err)
	}
	vals, _, _, err = api.LabelValues(ctx, "le", nil, time.Time{}, time.Time{})
	if err != nil || strings.Join(labelValuesStrings(vals), ",") != "+Inf,0.01,0.1,1" {
		t.Errorf("label values le = %v %v", vals, err)
	}
	md, err := api.Metadata(ctx, "test_events_total", "")
	if err != nil || len(md["test_events_total"]) != 1 || md["test_events_total"][0].Type != "counter" ||
		md["test_events_total"][0].Help != "Events." {
		t.Errorf("metadata = %v %v", md, err)
	}
	bi, err := api.Buildinfo(ctx)
	if err != nil || bi.Version != "3.16.0" {
		t.Errorf("buildinfo = %+v %v", bi, err)
	}
}

func labelNamesString(ns []model.LabelName) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = string(n)
	}
	return strings.Join(s, ",")
}

func labelValuesStrings(vs model.LabelValues) []string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return s
}

// A series that disappears from the registry gets a staleness marker: it
// vanishes from instant queries at once instead of lingering for the 5 m
// lookback, exactly like a target's series in Prometheus.
func TestStalenessMarkers(t *testing.T) {
	ts := newTestStore(t)
	ts.fill(t, 3)
	ts.gauge.DeleteLabelValues("eth1")
	ts.now = ts.now.Add(5 * time.Second)
	res := ts.ingest(t)
	if res.Stale != 1 {
		t.Errorf("stale = %d, want 1", res.Stale)
	}
	v, _, _, err := ts.client(t).Query(context.Background(), `test_gauge`, ts.now.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if vec := v.(model.Vector); len(vec) != 1 || vec[0].Metric["dev"] != "eth0" {
		t.Errorf("after removal want only eth0, got %v", v)
	}
	// It comes back as a new series when the label reappears.
	ts.gauge.WithLabelValues("eth1").Set(7)
	ts.now = ts.now.Add(5 * time.Second)
	ts.ingest(t)
	v, _, _, _ = ts.client(t).Query(context.Background(), `test_gauge{dev="eth1"}`, ts.now)
	if vec := v.(model.Vector); len(vec) != 1 || vec[0].Value != 7 {
		t.Errorf("eth1 back: %v", v)
	}
}

// Ingest reports its samples and the self-metrics count them.
func TestSelfMetrics(t *testing.T) {
	ts := newTestStore(t)
	ts.fill(t, 2)
	ts.now = ts.now.Add(5 * time.Second)
	ts.ingest(t)
	v, _, _, err := ts.client(t).Query(context.Background(), `{__name__=~"netsight_store_.+"}`, ts.now)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, s := range v.(model.Vector) {
		got[string(s.Metric[model.MetricNameLabel])] = float64(s.Value)
	}
	for _, name := range []string{"netsight_store_samples_appended_total", "netsight_store_head_series",
		"netsight_store_disk_bytes", "netsight_store_oldest_sample_timestamp_seconds", "netsight_store_retention_seconds",
		"netsight_store_last_ingest_timestamp_seconds", "netsight_store_scrape_interval_seconds"} {
		if got[name] <= 0 {
			t.Errorf("%s = %v, want > 0 (all: %v)", name, got[name], got)
		}
	}
	if got["netsight_store_oldest_sample_timestamp_seconds"] != float64(base.Unix()) {
		t.Errorf("oldest = %v, want %v", got["netsight_store_oldest_sample_timestamp_seconds"], base.Unix())
	}
	if got["netsight_store_samples_rejected_total"] != 0 {
		t.Errorf("rejected = %v", got["netsight_store_samples_rejected_total"])
	}
}

// A clock going backwards makes the TSDB reject the round's samples; the
// store counts them and keeps going.
func TestOutOfOrderRejected(t *testing.T) {
	ts := newTestStore(t)
	ts.fill(t, 2)
	ts.now = ts.now.Add(-time.Minute)
	res := ts.ingest(t)
	if res.Rejected == 0 || res.Series != 0 {
		t.Errorf("want all rejected, got %+v", res)
	}
}

type apiResp struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

func do(t *testing.T, method, u string, form url.Values) (int, apiResp, string) {
	t.Helper()
	var req *http.Request
	var err error
	if method == http.MethodPost {
		req, err = http.NewRequest(method, u, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		if form != nil {
			u += "?" + form.Encode()
		}
		req, err = http.NewRequest(method, u, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r apiResp
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s %s: not JSON: %v: %s", method, u, err, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	return resp.StatusCode, r, string(b)
}

// Errors have Prometheus' shape, status codes and error types.
func TestAPIErrors(t *testing.T) {
	ts := newTestStore(t)
	ts.fill(t, 2)
	tests := []struct {
		name, path string
		form       url.Values
		code       int
		typ        string
		msg        string
	}{
		{"parse error", "/api/v1/query", url.Values{"query": {"sum(("}}, 400, ErrBadData, `invalid parameter "query"`},
		{"empty query", "/api/v1/query", url.Values{}, 400, ErrBadData, `invalid parameter "query"`},
		{"bad time", "/api/v1/query", url.Values{"query": {"1"}, "time": {"yesterday"}}, 400, ErrBadData, `invalid parameter "time"`},
		{"bad timeout", "/api/v1/query", url.Values{"query": {"1"}, "timeout": {"-1s"}}, 400, ErrBadData, `timeout`},
		{"no step", "/api/v1/query_range", url.Values{"query": {"1"}, "start": {"1"}, "end": {"2"}}, 400, ErrBadData, `invalid parameter "step"`},
		{"zero step", "/api/v1/query_range", url.Values{"query": {"1"}, "start": {"1"}, "end": {"2"}, "step": {"0"}}, 400, ErrBadData, "zero or negative"},
		{"end before start", "/api/v1/query_range", url.Values{"query": {"1"}, "start": {"10"}, "end": {"2"}, "step": {"1"}}, 400, ErrBadData, "end timestamp must not be before start"},
		{"too many points", "/api/v1/query_range", url.Values{"query": {"1"}, "start": {"0"}, "end": {"100000"}, "step": {"1"}}, 400, ErrBadData, "11,000 points"},
		{"series without match", "/api/v1/series", url.Values{}, 400, ErrBadData, "no match[] parameter provided"},
		{"series empty matcher", "/api/v1/series", url.Values{"match[]": {`{dev=~".*"}`}}, 400, ErrBadData, "at least one non-empty matcher"},
		{"labels bad matcher", "/api/v1/labels", url.Values{"match[]": {`{`}}, 400, ErrBadData, `invalid parameter "match[]"`},
		{"invalid label name", "/api/v1/label/" + url.PathEscape("a\xffb") + "/values", nil, 400, ErrBadData, "invalid label name"},
		{"execution error", "/api/v1/query", url.Values{"query": {`label_replace(test_gauge, "dev", "x", "dev", ".*")`}}, 422, ErrExecution, "same labelset"},
		{"bad limit", "/api/v1/labels", url.Values{"limit": {"-3"}}, 400, ErrBadData, `invalid parameter "limit"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, r, raw := do(t, http.MethodGet, ts.srv.URL+tc.path, tc.form)
			if code != tc.code || r.Status != "error" || r.ErrorType != tc.typ || !strings.Contains(r.Error, tc.msg) {
				t.Errorf("got %d %s", code, raw)
			}
		})
	}
}

// The requests Grafana's Prometheus data source sends: POST form-encoded
// queries, labels with match[] and a time range, series, label values,
// buildinfo, metadata. The raw JSON shapes are checked, not just decoded.
func TestGrafanaRequestSet(t *testing.T) {
	ts := newTestStore(t)
	ts.fill(t, 13)
	start := strconvUnix(base)
	end := strconvUnix(ts.now)
	u := ts.srv.URL

	// "Save & test": instant query 1+1 via POST.
	code, r, raw := do(t, http.MethodPost, u+"/api/v1/query", url.Values{"query": {"1+1"}, "time": {end}})
	if code != 200 || string(r.Data) != `{"resultType":"scalar","result":[`+end+`,"2"]}` {
		t.Errorf("1+1: %d %s", code, raw)
	}
	// Panel query: POST query_range with step, like Grafana.
	code, r, raw = do(t, http.MethodPost, u+"/api/v1/query_range", url.Values{
		"query": {`rate(test_events_total[30s])`}, "start": {start}, "end": {end}, "step": {"15"}})
	var qd struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	}
	if err := json.Unmarshal(r.Data, &qd); err != nil || code != 200 || qd.ResultType != "matrix" || len(qd.Result) != 1 {
		t.Fatalf("query_range: %d %s", code, raw)
	}
	if len(qd.Result[0].Values) != 4 || qd.Result[0].Values[3][1] != "2" || qd.Result[0].Metric["__name__"] != "" {
		t.Errorf("query_range values: %s", raw)
	}
	// Instant query via POST (table panels, "Instant" toggle).
	code, _, raw = do(t, http.MethodPost, u+"/api/v1/query", url.Values{"query": {`test_gauge`}, "time": {end}})
	if code != 200 || !strings.Contains(raw, `"resultType":"vector"`) ||
		!strings.Contains(raw, `{"metric":{"__name__":"test_gauge","dev":"eth0"},"value":[`+end+`,"12"]}`) {
		t.Errorf("vector: %s", raw)
	}
	// Metrics browser: label names with match[] over the dashboard range (GET and POST).
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		code, r, raw = do(t, m, u+"/api/v1/labels", url.Values{"match[]": {`test_gauge`}, "start": {start}, "end": {end}})
		if code != 200 || string(r.Data) != `["__name__","dev"]` {
			t.Errorf("%s labels: %s", m, raw)
		}
	}
	code, r, raw = do(t, http.MethodGet, u+"/api/v1/label/__name__/values", url.Values{"start": {start}, "end": {end}})
	if code != 200 || !strings.Contains(string(r.Data), `"test_events_total"`) || !strings.HasPrefix(string(r.Data), `["`) {
		t.Errorf("__name__ values: %s", raw)
	}
	code, r, raw = do(t, http.MethodGet, u+"/api/v1/label/dev/values", url.Values{"match[]": {`test_gauge{dev!="eth1"}`}})
	if code != 200 || string(r.Data) != `["eth0"]` {
		t.Errorf("dev values: %s", raw)
	}
	code, r, raw = do(t, http.MethodPost, u+"/api/v1/series", url.Values{"match[]": {`test_gauge`, `test_events_total`}, "start": {start}, "end": {end}})
	if code != 200 || string(r.Data) != `[{"__name__":"test_events_total"},{"__name__":"test_gauge","dev":"eth0"},{"__name__":"test_gauge","dev":"eth1"}]` {
		t.Errorf("series: %s", raw)
	}
	code, r, raw = do(t, http.MethodGet, u+"/api/v1/metadata", url.Values{"metric": {"test_latency_seconds"}})
	if code != 200 || string(r.Data) != `{"test_latency_seconds":[{"type":"histogram","help":"Latency.","unit":""}]}` {
		t.Errorf("metadata: %s", raw)
	}
	code, r, raw = do(t, http.MethodGet, u+"/api/v1/status/buildinfo", nil)
	if code != 200 || !strings.Contains(string(r.Data), `"version":"3.16.0"`) {
		t.Errorf("buildinfo: %s", raw)
	}
	// Exemplars toggle: the store has none; Prometheus without exemplar storage answers [].
	code, r, raw = do(t, http.MethodPost, u+"/api/v1/query_exemplars", url.Values{"query": {"test_gauge"}, "start": {start}, "end": {end}})
	if code != 200 || string(r.Data) != `[]` {
		t.Errorf("exemplars: %s", raw)
	}
	// An empty result is [] not null.
	code, r, raw = do(t, http.MethodGet, u+"/api/v1/query", url.Values{"query": {`nope`}, "time": {end}})
	if code != 200 || string(r.Data) != `{"resultType":"vector","result":[]}` {
		t.Errorf("empty: %s", raw)
	}
	code, r, raw = do(t, http.MethodGet, u+"/api/v1/labels", url.Values{"match[]": {`nope`}})
	if code != 200 || string(r.Data) != `[]` {
		t.Errorf("empty labels: %s", raw)
	}
	// limit truncates with a warning.
	code, r, raw = do(t, http.MethodGet, u+"/api/v1/label/__name__/values", url.Values{"limit": {"1"}})
	if code != 200 || len(r.Warnings) != 1 || strings.Count(string(r.Data), ",") != 0 {
		t.Errorf("limit: %s", raw)
	}
}

// Large responses are gzip-compressed for clients that accept it.
func TestGzip(t *testing.T) {
	ts := newTestStore(t)
	ts.fill(t, 13)
	req, _ := http.NewRequest(http.MethodGet, ts.srv.URL+"/api/v1/query_range?"+url.Values{
		"query": {`{__name__=~"test_.+"}`}, "start": {strconvUnix(base)}, "end": {strconvUnix(ts.now)}, "step": {"1"}}.Encode(), nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultTransport.RoundTrip(req) // no transparent decompression
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("not compressed: %v", resp.Header)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r apiResp
	if err := json.NewDecoder(zr).Decode(&r); err != nil || r.Status != "success" {
		t.Fatalf("decode: %v %+v", err, r)
	}
	// Small answers stay plain.
	req.URL.RawQuery = url.Values{"query": {"1"}}.Encode()
	req.URL.Path = "/api/v1/query"
	resp2, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.Header.Get("Content-Encoding") != "" {
		t.Errorf("small response compressed")
	}
}

func strconvUnix(t time.Time) string { return model.TimeFromUnixNano(t.UnixNano()).String() }

func TestModuleToRelease(t *testing.T) {
	for in, want := range map[string]string{"v0.316.0": "3.16.0", "v0.300.1": "3.0.1", "v0.54.1": "", "v2.0.0": "",
		"v0.316.0-rc.1": "3.16.0"} {
		if got := moduleToRelease(in); got != want {
			t.Errorf("moduleToRelease(%q) = %q, want %q", in, got, want)
		}
	}
}
