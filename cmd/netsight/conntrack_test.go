package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	ctcollector "github.com/netsight/netsight/collector/conntrack"
	"github.com/netsight/netsight/internal/kernel"
	"github.com/netsight/netsight/internal/termcolor"
	"github.com/netsight/netsight/internal/testlab"
)

var updateGolden = flag.Bool("update-conntrack", false, "rewrite testdata/conntrack_*.golden")

// guidePipeline is the EC2 connection-tracking guide's exact `ss | awk` pipeline.
const guidePipeline = `ss -A tcp,udp state all | awk 'NR > 1 && $6 !~ /0.0.0.0:\*/ && $6 !~ /\[::\]:\*/ && $6 !~ /127.0.0.1:/ && $6 !~ /\[::ffff:127.0.0.1\]/ && $6 != "*:*" {print $6}' | wc -l`

// TestConntrackCommandInNamespace holds N connections in a lab namespace with
// a ct rule and compares `netsight conntrack --json`, run in that namespace,
// with `conntrack -C` and the guide pipeline.
func TestConntrackCommandInNamespace(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test: runs in the full (non -short) pass")
	}
	testlab.RequireRoot(t)
	testlab.RequireBinary(t, "conntrack")
	testlab.RequireBinary(t, "ss")
	testlab.RequireBinary(t, "nft")
	ns := testlab.NewNetNS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, cmd := range [][]string{
		{"nft", "add table inet t; add chain inet t c { type filter hook output priority 0; }; add rule inet t c ct state established accept"},
		{"ip", "addr", "add", "10.78.0.1/32", "dev", "lo"},
	} {
		if out, err := ns.Run(ctx, cmd[0], cmd[1:]...); err != nil {
			t.Fatalf("%v %s", err, out)
		}
	}
	srv := ns.StartSinkServer(t, "10.78.0.1:0") // holds the server ends open
	const n = 50
	held, err := ns.HoldConns(ctx, srv.Addr(), n)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	time.Sleep(100 * time.Millisecond)

	var stdout, stderr bytes.Buffer
	var code int
	if err := ns.Do(func() error {
		code = runMain(ctx, []string{"conntrack", "--json", "--sample", "0"}, &stdout, &stderr)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var rep map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	ctC := toolCount(t, ns, ctx, "conntrack", "-C")
	seed := toolCount(t, ns, ctx, "sh", "-c", guidePipeline)
	entries, tracked := rep["entries"].(float64), rep["tracked_connections"].(float64)
	t.Logf("netsight entries=%v conntrack -C=%d; netsight tracked_connections=%v guide pipeline=%d", entries, ctC, tracked, seed)
	if d := int(entries) - ctC; d < -2 || d > 2 {
		t.Errorf("entries = %v, conntrack -C = %d", entries, ctC)
	}
	if d := int(tracked) - seed; d < -2 || d > 2 {
		t.Errorf("tracked_connections = %v, guide pipeline = %d", tracked, seed)
	}
	if entries < n || tracked < 2*n {
		t.Errorf("entries %v < %d or tracked %v < %d", entries, n, tracked, 2*n)
	}
	if rep["max"].(float64) <= 0 {
		t.Errorf("max = %v", rep["max"])
	}
	if _, ok := rep["allowance_available"]; ok {
		t.Error("allowance_available present without an ENA interface")
	}
}

func toolCount(t *testing.T, ns *testlab.NetNS, ctx context.Context, name string, args ...string) int {
	t.Helper()
	out, err := ns.Run(ctx, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("%s output %q", name, out)
	}
	return v
}

// TestConntrackRender checks the human and JSON output for a host with an
// ENA interface (data as read from the nic fixtures).
func TestConntrackRender(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	f := func(v float64) *float64 { return &v }
	rep := &conntrackReport{
		Loaded: true, Entries: 1200, Max: 262144, Usage: 1200.0 / 262144,
		GrowthPerSecond: f(2.5), ExhaustionSeconds: f((262144 - 1200) / 2.5), ForecastBasis: "non_time_wait_entries",
		Dump: ctcollector.DumpResult{Mode: "full", Seen: 1200, States: []ctcollector.StateCount{
			{Family: "ipv4", Protocol: "tcp", State: "established", Entries: 1100},
			{Family: "ipv4", Protocol: "udp", State: "assured", Entries: 60},
			{Family: "ipv4", Protocol: "tcp", State: "time_wait", Entries: 40},
		}},
		Stats:   map[string]uint64{"insert_failed": 3, "drop": 1, "early_drop": 0, "invalid": 17, "search_restart": 0},
		Tracked: 1171,
		Interfaces: []conntrackNICAllowances{
			{Device: "ens5", Driver: "ena", Available: u(307829), Exceeded: map[string]uint64{
				"bw_in_allowance_exceeded": 1840, "bw_out_allowance_exceeded": 97, "pps_allowance_exceeded": 4,
				"conntrack_allowance_exceeded": 12, "linklocal_allowance_exceeded": 3}},
			{Device: "ens6", Driver: "ena", Exceeded: map[string]uint64{"conntrack_allowance_exceeded": 0}},
		},
		AllowanceAvailable: u(307829), SupportedTotal: u(309000), Utilisation: f(1171.0 / 309000),
	}
	var human, js bytes.Buffer
	renderConntrack(&human, termcolor.Painter{}, rep)
	enc := json.NewEncoder(&js)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		t.Fatal(err)
	}
	goldenFile(t, "conntrack_ena.golden", human.String())
	goldenFile(t, "conntrack_ena_json.golden", js.String())
	for _, k := range []string{`"entries": 1200`, `"max": 262144`, `"tracked_connections": 1171`, `"allowance_available": 307829`, `"supported_total": 309000`} {
		if !strings.Contains(js.String(), k) {
			t.Errorf("JSON lacks %s", k)
		}
	}
}

func TestConntrackFlags(t *testing.T) {
	for _, args := range [][]string{{"--sample", "-1s"}, {"--over-limit", "drop"}, {"--max-dump-entries", "-1"}} {
		var out, errb bytes.Buffer
		if code := runMain(context.Background(), append([]string{"conntrack"}, args...), &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
}

func goldenFile(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update-conntrack)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs; got:\n%s", p, got)
	}
}

// enaSource serves the nic collector's ENA fixtures as two interfaces.
type enaSource struct{}

func (enaSource) Interfaces() ([]string, error) { return []string{"ens5", "ens6", "lo"}, nil }
func (enaSource) Driver(string) (string, error) { return "ena", nil }
func (enaSource) Close() error                  { return nil }
func (enaSource) Stats(iface string) ([]kernel.NICStat, error) {
	f := map[string]string{"ens5": "ena_ens5.txt", "ens6": "ena_ens6_old_driver.txt"}[iface]
	if f == "" {
		return nil, kernel.ErrNoNICStats
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "collector", "nic", "testdata", f))
	if err != nil {
		return nil, err
	}
	return kernel.ParseEthtoolStats(b)
}

// TestConntrackReportENA checks the ENA part of the report: available summed
// over interfaces, supported_total = available + tracked, utilisation.
func TestConntrackReportENA(t *testing.T) {
	rep, err := buildConntrackReport(context.Background(), 0, 0, ctcollector.OverLimitSkip,
		func() (kernel.NICSource, error) { return enaSource{}, nil })
	if err != nil {
		t.Fatal(err)
	}
	if rep.AllowanceAvailable == nil || *rep.AllowanceAvailable != 307829 {
		t.Fatalf("allowance_available = %v, want 307829 (ens5; ens6's old driver has none)", rep.AllowanceAvailable)
	}
	if rep.SupportedTotal == nil || *rep.SupportedTotal != 307829+rep.Tracked {
		t.Errorf("supported_total = %v, want 307829 + tracked %d", rep.SupportedTotal, rep.Tracked)
	}
	if rep.Utilisation == nil || *rep.Utilisation != float64(rep.Tracked)/float64(307829+rep.Tracked) {
		t.Errorf("utilisation = %v", rep.Utilisation)
	}
	if len(rep.Interfaces) != 2 || rep.Interfaces[0].Exceeded["conntrack_allowance_exceeded"] != 12 || rep.Interfaces[1].Available != nil {
		t.Errorf("interfaces = %+v", rep.Interfaces)
	}
}

// TestConntrackForecastExcludesTimeWait: a table that grows only by
// TIME_WAIT entries (connection churn) is not forecast to fill; growth of
// the other entries is; without a dump the forecast uses all entries and
// says so.
func TestConntrackForecastExcludesTimeWait(t *testing.T) {
	dump := func(est, tw float64) ctcollector.DumpResult {
		return ctcollector.DumpResult{Mode: "full", States: []ctcollector.StateCount{
			{Family: "ipv4", Protocol: "tcp", State: "established", Entries: est},
			{Family: "ipv4", Protocol: "tcp", State: "time_wait", Entries: tw},
		}}
	}
	t0 := time.Unix(1000, 0)
	t1 := t0.Add(10 * time.Second)
	tests := []struct {
		name      string
		d0, d1    ctcollector.DumpResult
		err1      error
		c0, c1    uint64
		basis     string
		rate      float64
		exhausted bool
	}{
		{"TIME_WAIT churn", dump(100, 1000), dump(100, 6000), nil, 1100, 6100, "non_time_wait_entries", 0, false},
		{"leak", dump(100, 1000), dump(600, 1000), nil, 1100, 1600, "non_time_wait_entries", 50, true},
		{"no dump", ctcollector.DumpResult{Mode: "unavailable"}, ctcollector.DumpResult{Mode: "unavailable"}, errors.New("EPERM"), 1100, 6100, "all_entries", 500, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := &conntrackReport{Loaded: true, Max: 262144}
			conntrackForecast(rep, t0, tt.c0, tt.d0, nil, t1, tt.c1, tt.d1, tt.err1)
			if rep.ForecastBasis != tt.basis || rep.GrowthPerSecond == nil || math.Abs(*rep.GrowthPerSecond-tt.rate) > 1e-9 ||
				(rep.ExhaustionSeconds != nil) != tt.exhausted {
				t.Errorf("basis %q rate %v exhaustion %v", rep.ForecastBasis, rep.GrowthPerSecond, rep.ExhaustionSeconds)
			}
			if tt.basis == "all_entries" && !strings.Contains(rep.ForecastNote, "TIME_WAIT entries not excluded") {
				t.Errorf("note %q", rep.ForecastNote)
			}
			var out bytes.Buffer
			renderConntrack(&out, termcolor.Painter{}, rep)
			want := map[string]string{"non_time_wait_entries": "TIME_WAIT entries excluded", "all_entries": "from all entries: per-state dump unavailable"}[tt.basis]
			if !strings.Contains(out.String(), want) {
				t.Errorf("text lacks %q:\n%s", want, out.String())
			}
		})
	}
}

// TestConntrackSampleTimeWaitChurn: short connections in a lab namespace
// fill the conntrack table with TIME_WAIT entries (they expire by
// themselves after 2 minutes). `conntrack --sample` forecasts from the
// other entries and says so: its growth stays near zero while the growth of
// all entries (the same command without the per-state dump) is large.
func TestConntrackSampleTimeWaitChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test: runs in the full (non -short) pass")
	}
	testlab.RequireRoot(t)
	testlab.RequireBinary(t, "nft")
	ns := testlab.NewNetNS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, cmd := range [][]string{
		{"nft", "add table inet t; add chain inet t c { type filter hook output priority 0; }; add rule inet t c ct state established accept"},
		{"ip", "addr", "add", "10.78.0.1/32", "dev", "lo"},
	} {
		if out, err := ns.Run(ctx, cmd[0], cmd[1:]...); err != nil {
			t.Fatalf("%v %s", err, out)
		}
	}
	srv := ns.StartEchoServer(t, "10.78.0.1:0")
	churnCtx, stopChurn := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = ns.ShortConns(churnCtx, testlab.ShortConnsConfig{Target: srv.Addr(), Count: 20000, Bytes: 10, Concurrency: 4, Timeout: 25 * time.Second})
	}()
	defer func() { stopChurn(); <-done }()
	time.Sleep(time.Second) // churn under way

	sample := func(args ...string) conntrackReport {
		t.Helper()
		var stdout, stderr bytes.Buffer
		var code int
		if err := ns.Do(func() error {
			code = runMain(ctx, append([]string{"conntrack", "--json", "--sample", "2s"}, args...), &stdout, &stderr)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		var rep conntrackReport
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			t.Fatalf("%v: %s", err, stdout.String())
		}
		if rep.GrowthPerSecond == nil {
			t.Fatalf("no growth measured: %s", stdout.String())
		}
		return rep
	}
	nonTW := sample()
	all := sample("--max-dump-entries", "0")
	t.Logf("growth: %.1f non-TIME_WAIT entries/s (%s), %.1f entries/s (%s: %s); %d entries",
		*nonTW.GrowthPerSecond, nonTW.ForecastBasis, *all.GrowthPerSecond, all.ForecastBasis, all.ForecastNote, all.Entries)
	if nonTW.ForecastBasis != "non_time_wait_entries" || all.ForecastBasis != "all_entries" {
		t.Errorf("bases %q and %q", nonTW.ForecastBasis, all.ForecastBasis)
	}
	if *all.GrowthPerSecond < 20 {
		t.Fatalf("churn too slow to tell (%.1f entries/s)", *all.GrowthPerSecond)
	}
	if g := *nonTW.GrowthPerSecond; math.Abs(g) > 0.1**all.GrowthPerSecond {
		t.Errorf("non-TIME_WAIT growth %.1f/s, want near 0 (all entries grow %.1f/s)", g, *all.GrowthPerSecond)
	}
}
