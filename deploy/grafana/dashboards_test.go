package grafana

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/netsight/netsight/deploy/internal/agenttest"
)

func TestMain(m *testing.M) {
	plugins.RegisterDefaultPlugins()
	code := m.Run()
	agenttest.Cleanup()
	os.Exit(code)
}

// rawDashboard is the part of the dashboard JSON the tests walk.
type rawDashboard struct {
	Title      string     `json:"title"`
	Panels     []rawPanel `json:"panels"`
	Templating struct {
		List []struct {
			Type       string          `json:"type"`
			Name       string          `json:"name"`
			Query      json.RawMessage `json:"query"`
			IncludeAll bool            `json:"includeAll"`
			AllValue   string          `json:"allValue"`
			Datasource *dsRef          `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type rawPanel struct {
	Type       string     `json:"type"`
	Title      string     `json:"title"`
	Datasource *dsRef     `json:"datasource"`
	Panels     []rawPanel `json:"panels"`
	Targets    []struct {
		RefID      string `json:"refId"`
		Expr       string `json:"expr"`
		Datasource *dsRef `json:"datasource"`
	} `json:"targets"`
}

// query is one panel target.
type query struct {
	dashboard, panel, refID, expr string
}

func (q query) String() string { return fmt.Sprintf("%s / %s / %s", q.dashboard, q.panel, q.refID) }

func dashboardFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("dashboards/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	return files
}

func load(t *testing.T, file string) ([]byte, rawDashboard) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var d rawDashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return raw, d
}

func queries(t *testing.T) []query {
	t.Helper()
	var out []query
	var walk func(title string, ps []rawPanel)
	walk = func(title string, ps []rawPanel) {
		for _, p := range ps {
			walk(title, p.Panels)
			for _, tg := range p.Targets {
				out = append(out, query{title, p.Title, tg.RefID, tg.Expr})
			}
		}
	}
	for _, f := range dashboardFiles(t) {
		_, d := load(t, f)
		walk(d.Title, d.Panels)
	}
	if len(out) == 0 {
		t.Fatal("no queries")
	}
	return out
}

// TestStrictDecode decodes every dashboard strictly with the Grafana
// Foundation SDK (unknown fields are errors) and validates it.
func TestStrictDecode(t *testing.T) {
	for _, f := range dashboardFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, _ := load(t, f)
			// The v1 (classic JSON) schema on purpose: it is what file
			// provisioning and the Grafana sidecar load.
			var d dashboard.Dashboard //lint:ignore SA1019 classic JSON is what provisioning loads
			if err := sdkErr(d.UnmarshalJSONStrict(raw)); err != nil {
				t.Fatalf("strict decode: %v", err)
			}
			if err := sdkErr(d.Validate()); err != nil {
				t.Fatalf("validate: %v", err)
			}
			if d.Uid == nil || *d.Uid == "" || d.Title == nil || *d.Title == "" {
				t.Error("dashboard needs a uid and a title")
			}
		})
	}
}

// sdkErr turns the SDK's empty cog.BuildErrors (a non-nil error interface
// holding a nil slice) into nil.
func sdkErr(err error) error {
	if be, ok := err.(cog.BuildErrors); ok && len(be) == 0 {
		return nil
	}
	return err
}

// TestVariables: a datasource variable named datasource (Prometheus), an
// instance variable whose All value matches series without an instance
// label (one agent's own store), and every panel and target on ${datasource}.
func TestVariables(t *testing.T) {
	for _, f := range dashboardFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, d := load(t, f)
			var ds, inst bool
			for _, v := range d.Templating.List {
				switch v.Name {
				case "datasource":
					ds = v.Type == "datasource" && string(v.Query) == `"prometheus"`
				case "instance":
					inst = v.Type == "query" && v.IncludeAll && v.AllValue == ".*" &&
						v.Datasource != nil && v.Datasource.UID == "${datasource}"
				}
			}
			if !ds || !inst {
				t.Errorf("datasource variable ok=%v, instance variable ok=%v", ds, inst)
			}
			var walk func(ps []rawPanel)
			walk = func(ps []rawPanel) {
				for _, p := range ps {
					walk(p.Panels)
					if p.Type == "row" {
						continue
					}
					if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
						t.Errorf("panel %q: datasource %+v, want ${datasource}", p.Title, p.Datasource)
					}
					if len(p.Targets) == 0 {
						t.Errorf("panel %q has no query", p.Title)
					}
					for _, tg := range p.Targets {
						if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
							t.Errorf("panel %q %s: datasource %+v", p.Title, tg.RefID, tg.Datasource)
						}
					}
				}
			}
			walk(d.Panels)
		})
	}
}

// instanceSentinel stands for $instance while parsing, so the test can see
// that every selector filters on it.
const instanceSentinel = "INSTANCE_SENTINEL"

// expand replaces Grafana's variables with values PromQL accepts: the
// monitor and category variables by their All value (.*), $__range by the
// rate interval.
func expand(expr, instance, rateInterval string) string {
	return strings.NewReplacer(
		"$__rate_interval", rateInterval, "${__rate_interval}", rateInterval,
		"$__interval", rateInterval, "$__range", rateInterval, "${__range}", rateInterval,
		"$instance", instance, "${instance}", instance,
		"$monitor", ".*", "${monitor}", ".*", "$category", ".*", "${category}", ".*",
	).Replace(expr)
}

// TestQueriesParse: every query parses as PromQL and every selector filters
// on instance=~"$instance".
func TestQueriesParse(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	for _, q := range queries(t) {
		expr, err := p.ParseExpr(expand(q.expr, instanceSentinel, "1m"))
		if err != nil {
			t.Errorf("%s: %v\n%s", q, err, q.expr)
			continue
		}
		for _, sel := range parser.ExtractSelectors(expr) {
			if !filters(sel, "instance", instanceSentinel) {
				t.Errorf("%s: selector %v does not filter on instance=~\"$instance\"", q, sel)
			}
		}
	}
}

// TestScopeVariablesApply: in a dashboard with a monitor (category)
// variable, every selector of a per-monitor (per-category) family filters
// on monitor=~"$monitor" (category=~"$category"), so the variables do
// narrow every panel.
func TestScopeVariablesApply(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	scoped := map[string]string{ // family prefix -> variable
		"netsight_monitor_bytes": "monitor", "netsight_monitor_retransmits": "monitor", "netsight_monitor_rtos": "monitor",
		"netsight_monitor_connections": "monitor", "netsight_monitor_rtt": "monitor", "netsight_monitor_handshake": "monitor",
		"netsight_monitor_verdict": "monitor", "netsight_monitor_health_indicator": "monitor",
		"netsight_traffic_": "category",
	}
	for _, f := range dashboardFiles(t) {
		_, d := load(t, f)
		vars := map[string]bool{}
		for _, v := range d.Templating.List {
			vars[v.Name] = true
		}
		checked := 0
		for _, q := range queries(t) {
			if q.dashboard != d.Title {
				continue
			}
			e := strings.NewReplacer("$monitor", "MONITOR_SENTINEL", "$category", "CATEGORY_SENTINEL").Replace(q.expr)
			expr, err := p.ParseExpr(expand(e, ".*", "1m"))
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			for _, sel := range parser.ExtractSelectors(expr) {
				name := ""
				for _, m := range sel {
					if m.Name == model.MetricNameLabel {
						name = m.Value
					}
				}
				for prefix, v := range scoped {
					if !strings.HasPrefix(name, prefix) || !vars[v] {
						continue
					}
					checked++
					if !filters(sel, v, strings.ToUpper(v)+"_SENTINEL") {
						t.Errorf("%s: selector %v does not filter on %s=~\"$%s\"", q, sel, v, v)
					}
				}
			}
		}
		t.Logf("%s: %d scoped selectors checked", d.Title, checked)
		if (vars["monitor"] || vars["category"]) && checked == 0 {
			t.Errorf("%s has scope variables but no scoped selector", d.Title)
		}
	}
}

// filters: sel has label=~value.
func filters(sel []*labels.Matcher, label, value string) bool {
	for _, m := range sel {
		if m.Name == label && m.Type == labels.MatchRegexp && m.Value == value {
			return true
		}
	}
	return false
}

// metricNames returns the metric names a query selects.
func metricNames(t *testing.T, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expand(expr, ".*", "1m"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sel := range parser.ExtractSelectors(e) {
		for _, m := range sel {
			if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
				names = append(names, m.Value)
			}
		}
	}
	return names
}

var (
	backticked = regexp.MustCompile("`(netsight_[a-z0-9_{},]+)`")
	braces     = regexp.MustCompile(`^(.*)\{([^}]*)\}(.*)$`)
)

// documented reads docs/metrics.md: every `netsight_...` name in backticks,
// with {a,b} alternatives expanded.
func documented(t *testing.T) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(agenttest.RepoRoot(t), "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	var add func(s string)
	add = func(s string) {
		m := braces.FindStringSubmatch(s)
		if m == nil {
			out[s] = true
			return
		}
		for alt := range strings.SplitSeq(m[2], ",") {
			add(m[1] + alt + m[3])
		}
	}
	for _, m := range backticked.FindAllStringSubmatch(string(raw), -1) {
		add(m[1])
	}
	return out
}

// TestMetricsDocumented: every metric a dashboard names is in docs/metrics.md
// (histogram _bucket/_sum/_count series under their family's name).
func TestMetricsDocumented(t *testing.T) {
	docs := documented(t)
	for _, q := range queries(t) {
		names := metricNames(t, q.expr)
		if len(names) == 0 {
			t.Errorf("%s selects no metric by name", q)
		}
		for _, n := range names {
			family := n
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(n, suf); ok && docs[base] {
					family = base
				}
			}
			if !docs[family] {
				t.Errorf("%s: metric %s is not in docs/metrics.md", q, n)
			}
		}
	}
}

// enaOnly names the panels whose metrics only AWS ENA interfaces export;
// the lab has no ENA device, so for them the lab test checks that the query
// runs, not that it returns data.
var enaOnly = map[string]bool{
	"NIC allowance exceeded":              true,
	"NIC connection tracking utilisation": true,
}

// labConfig runs every collector the dashboards read with short intervals,
// probes to loopback (ICMP, and TCP to a listener of the test), and two
// monitors besides the implicit all: loopback (every connection here) and
// one for the listener's port.
const labConfig = `store:
  scrape_interval: 1s
monitors:
  evaluate_every: 1s
  window: 10s
  items:
    - name: loopback
      remote:
        cidrs: [127.0.0.0/8]
    - name: probe-port
      remote:
        ports: [%[1]d]
collectors:
  conntrack:
    interval: 1s
  flows:
    interval: 1s
  sockets:
    interval: 1s
  probe:
    period: 2s
    targets:
      - address: 127.0.0.1
        protocol: icmp
        interval: 200ms
      - address: 127.0.0.1
        protocol: tcp
        port: %[1]d
        interval: 200ms
`

type rangeResponse struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	} `json:"data"`
	Error string `json:"error"`
}

// TestPanelsReturnData runs the agent (root, every default collector, two
// monitors), lets it record ~12 s of loopback probes and TCP connections
// until the monitors have counted them, then runs every panel query through
// /api/v1/query_range as Grafana would ($instance, $monitor, $category =
// All = .*) and requires from each at least one sample that is a number
// (ENA-only panels: a successful query).
func TestPanelsReturnData(t *testing.T) {
	agenttest.RequireRoot(t)
	ln := agenttest.Listen(t)
	a := agenttest.Start(t, agenttest.Options{Config: fmt.Sprintf(labConfig, ln.Port)})

	// Wait until every probe series has one finished period and flows have
	// counted connections (the probes' own TCP connections), 40 s at most.
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	start := time.Now()
	for _, ready := range []string{
		`count(netsight_probe_period_rtt_avg_seconds) >= 2`,
		`count(netsight_probe_period_loss_ratio) >= 2`,
		`sum(netsight_flow_rtt_seconds_count) > 0`,
		`count_over_time(netsight_conntrack_entries[1m]) >= 5`,
		`sum(netsight_monitor_connections_total{monitor="probe-port",result="ok"}) > 0`,
		`sum(netsight_monitor_rtt_seconds_count{monitor="loopback"}) > 0`,
		`sum(netsight_traffic_bytes_total{category="host"}) > 0`,
		`count(netsight_monitor_verdict{monitor="loopback"} == 1) == 1`,
	} {
		for {
			var r rangeResponse
			err := a.GetJSON(ctx, "/api/v1/query?query="+url.QueryEscape(ready), &r)
			if err == nil && len(r.Data.Result) > 0 {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("agent never had %s (%v)\n%s", ready, err, a.Log())
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	// Two more store rounds, so that the last evaluation step of the range
	// queries below has every series.
	time.Sleep(2500 * time.Millisecond)
	t.Logf("agent ready for queries after %s", time.Since(start).Round(time.Second))

	end := time.Now()
	for _, q := range queries(t) {
		expr := expand(q.expr, ".*", "10s")
		v := url.Values{}
		v.Set("query", expr)
		v.Set("start", fmt.Sprintf("%.3f", float64(end.Add(-time.Minute).UnixMilli())/1e3))
		v.Set("end", fmt.Sprintf("%.3f", float64(end.UnixMilli())/1e3))
		v.Set("step", "2")
		var r rangeResponse
		if err := a.GetJSON(ctx, "/api/v1/query_range?"+v.Encode(), &r); err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		if r.Status != "success" || r.Data.ResultType != "matrix" {
			t.Errorf("%s: status %q type %q error %q", q, r.Status, r.Data.ResultType, r.Error)
			continue
		}
		samples, numbers := 0, 0
		for _, s := range r.Data.Result {
			samples += len(s.Values)
			for _, v := range s.Values {
				// A value is [time, "string"]; NaN (a quantile of no
				// observations, 0/0) is a sample that draws nothing.
				if str, ok := v[1].(string); ok {
					if f, err := strconv.ParseFloat(str, 64); err == nil && !math.IsNaN(f) {
						numbers++
					}
				}
			}
		}
		switch {
		case enaOnly[q.panel]:
			t.Logf("%s: ENA-only, %d series (no ENA device in the lab)", q, len(r.Data.Result))
		case numbers == 0:
			t.Errorf("%s: no data (%d samples, none a number) for %s", q, samples, expr)
		default:
			t.Logf("%s: %d series, %d samples, %d numbers", q, len(r.Data.Result), samples, numbers)
		}
	}
	checkVerdictPanels(t, a)
	checkVariables(t, a)
}

var labelValuesCall = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// checkVariables runs every query variable as Grafana does
// (label_values(selector, label) = GET /api/v1/label/<label>/values with
// match[]) against the agent: each must succeed, and monitor and category
// must list values (instance has none on one agent's own store: All).
func checkVariables(t *testing.T, a *agenttest.Agent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, f := range dashboardFiles(t) {
		_, d := load(t, f)
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			var q string
			if err := json.Unmarshal(v.Query, &q); err != nil {
				t.Errorf("%s: variable %s: query is not a string: %s", d.Title, v.Name, v.Query)
				continue
			}
			m := labelValuesCall.FindStringSubmatch(q)
			if m == nil {
				t.Errorf("%s: variable %s: %q is not label_values(selector, label)", d.Title, v.Name, q)
				continue
			}
			var r struct {
				Status string   `json:"status"`
				Data   []string `json:"data"`
			}
			path := "/api/v1/label/" + m[2] + "/values?match[]=" + url.QueryEscape(expand(m[1], ".*", "10s"))
			if err := a.GetJSON(ctx, path, &r); err != nil || r.Status != "success" {
				t.Errorf("%s: variable %s: %s: %v %s", d.Title, v.Name, path, err, r.Status)
				continue
			}
			t.Logf("%s: variable %s: %v", d.Title, v.Name, r.Data)
			if v.Name != "instance" && len(r.Data) == 0 {
				t.Errorf("%s: variable %s lists no values", d.Title, v.Name)
			}
		}
	}
}

// checkVerdictPanels: the "Verdict per monitor" timeline, read through its
// value mappings, names the verdict GET /api/v1/health gives for every
// monitor (both asked within one evaluation; retried when a verdict
// changed between the two).
func checkVerdictPanels(t *testing.T, a *agenttest.Agent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, f := range dashboardFiles(t) {
		raw, d := load(t, f)
		var full struct {
			Panels []struct {
				Title       string `json:"title"`
				FieldConfig struct {
					Defaults struct {
						Mappings []struct {
							Options map[string]struct {
								Text string `json:"text"`
							} `json:"options"`
						} `json:"mappings"`
					} `json:"defaults"`
				} `json:"fieldConfig"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(raw, &full); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range full.Panels {
			if p.Title != "Verdict per monitor" {
				continue
			}
			found = true
			if len(p.Targets) != 1 || len(p.FieldConfig.Defaults.Mappings) != 1 {
				t.Fatalf("%s: verdict panel needs one query and one value mapping", d.Title)
			}
			names := p.FieldConfig.Defaults.Mappings[0].Options
			var mismatch string
			for range 5 {
				var health struct {
					Monitors []struct {
						Name    string `json:"name"`
						Verdict string `json:"verdict"`
					} `json:"monitors"`
				}
				var r struct {
					Data struct {
						Result []struct {
							Metric map[string]string `json:"metric"`
							Value  [2]any            `json:"value"`
						} `json:"result"`
					} `json:"data"`
				}
				if err := a.GetJSON(ctx, "/api/v1/health", &health); err != nil {
					t.Fatal(err)
				}
				if err := a.GetJSON(ctx, "/api/v1/query?query="+url.QueryEscape(expand(p.Targets[0].Expr, ".*", "10s")), &r); err != nil {
					t.Fatal(err)
				}
				panel := map[string]string{}
				for _, s := range r.Data.Result {
					code, _ := s.Value[1].(string)
					name, ok := names[code]
					if !ok {
						t.Fatalf("%s: verdict code %q of %s has no mapping", d.Title, code, s.Metric["monitor"])
					}
					panel[s.Metric["monitor"]] = name.Text
				}
				mismatch = ""
				for _, m := range health.Monitors {
					if panel[m.Name] != m.Verdict {
						mismatch += fmt.Sprintf(" %s: panel %q, API %q;", m.Name, panel[m.Name], m.Verdict)
					}
				}
				if len(health.Monitors) == 0 {
					mismatch = " no monitors in /api/v1/health"
				}
				if mismatch == "" {
					t.Logf("%s: verdict panel agrees with /api/v1/health on %d monitors: %v", d.Title, len(health.Monitors), panel)
					break
				}
				time.Sleep(time.Second)
			}
			if mismatch != "" {
				t.Errorf("%s: verdict panel disagrees with /api/v1/health:%s", d.Title, mismatch)
			}
		}
		if !found {
			t.Errorf("%s: no \"Verdict per monitor\" panel", d.Title)
		}
	}
}

// TestStrictDecodeRejects: the strict decode does catch an unknown panel
// field and a missing required field (the check above can fail).
func TestStrictDecodeRejects(t *testing.T) {
	raw, _ := load(t, dashboardFiles(t)[0])
	for name, edit := range map[string]func(m map[string]any){
		"unknown panel field": func(m map[string]any) { m["panels"].([]any)[1].(map[string]any)["bogus"] = 1 },
		"unknown option": func(m map[string]any) {
			m["panels"].([]any)[1].(map[string]any)["options"].(map[string]any)["bogus"] = 1
		},
		"panel without type": func(m map[string]any) { delete(m["panels"].([]any)[1].(map[string]any), "type") },
	} {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		bad, _ := json.Marshal(m)
		var d dashboard.Dashboard //lint:ignore SA1019 classic JSON is what provisioning loads
		if err := sdkErr(d.UnmarshalJSONStrict(bad)); err == nil {
			t.Errorf("%s: strict decode accepted it", name)
		}
	}
}
