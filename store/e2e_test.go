package store_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netsight/netsight/internal/testlab"
)

// buildNetsight builds ./cmd/netsight into a temp dir.
func buildNetsight(t *testing.T) string {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	bin := filepath.Join(t.TempDir(), "netsight")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/netsight")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/netsight: %v\n%s", err, out)
	}
	return bin
}

// agentProc is a running `netsight run` subprocess.
type agentProc struct {
	cmd  *exec.Cmd
	base string
	mu   sync.Mutex
	log  []string
	done chan struct{}
}

var dashboardRE = regexp.MustCompile(`msg="netsight is serving" dashboard=(http://[^ ]+/)`)

// startBinary runs `netsight run` with no config file: only the listen
// address, the data dir and a 1 s store interval are set by flags.
func startBinary(t *testing.T, bin, dataDir string) *agentProc {
	t.Helper()
	return startCmd(t, exec.Command(bin, "run", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--set", "store.scrape_interval=1s"))
}

// startCmd starts a prepared `netsight run` command and waits until it
// prints its dashboard URL.
func startCmd(t *testing.T, cmd *exec.Cmd) *agentProc {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &agentProc{cmd: cmd, done: make(chan struct{})}
	urlCh := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log = append(p.log, line)
			p.mu.Unlock()
			if m := dashboardRE.FindStringSubmatch(line); m != nil {
				urlCh <- m[1]
			}
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	select {
	case u := <-urlCh:
		p.base = strings.TrimSuffix(u, "/")
	case <-p.done:
		t.Fatalf("netsight exited before serving:\n%s", p.logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("netsight did not print its dashboard URL:\n%s", p.logs())
	}
	return p
}

func (p *agentProc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.log, "\n")
}

type promResp struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	} `json:"data"`
	Error string `json:"error"`
}

func query(t *testing.T, base, path string, v url.Values) promResp {
	t.Helper()
	resp, err := http.PostForm(base+path, v)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r promResp
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if r.Status != "success" {
		t.Fatalf("%s %v: %s", path, v, r.Error)
	}
	return r
}

// TestKill9KeepsHistory is the lab acceptance test: run the real binary with
// zero config, query count({__name__=~"netsight_.+"}), kill -9 it, restart
// on the same data dir, and check query_range returns every point seen
// before the kill (the WAL is written on every commit, so a kill loses at
// most the round in flight). promtool queries the running agent too.
func TestKill9KeepsHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary: skipped with -short")
	}
	bin := buildNetsight(t)
	dataDir := t.TempDir()
	p := startBinary(t, bin, dataDir)

	// Zero-config start-up: one line per collector saying enabled or why not.
	resp, err := http.Get(p.base + "/api/v1/status/collectors")
	if err != nil {
		t.Fatal(err)
	}
	var statuses []struct{ Name, State string }
	if err := json.NewDecoder(resp.Body).Decode(&statuses); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(statuses) == 0 {
		t.Fatal("no collectors linked")
	}
	logs := p.logs()
	for _, s := range statuses {
		re := regexp.MustCompile(`msg="collector (enabled|disabled|idle|not supported)[^"]*".* collector=` + regexp.QuoteMeta(s.Name) + `( |$)`)
		if n := len(re.FindAllString(logs, -1)); n != 1 {
			t.Errorf("collector %s (%s): %d start-up lines, want 1\n%s", s.Name, s.State, n, logs)
		}
	}

	// Wait for a few ingest rounds.
	count := 0.0
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		r := query(t, p.base, "/api/v1/query", url.Values{"query": {`count({__name__=~"netsight_.+"})`}})
		if len(r.Data.Result) == 1 {
			count, _ = strconv.ParseFloat(r.Data.Result[0].Value[1].(string), 64)
			rr := query(t, p.base, "/api/v1/query", url.Values{"query": {`count_over_time(netsight_store_head_series[1m])`}})
			if len(rr.Data.Result) == 1 {
				if n, _ := strconv.ParseFloat(rr.Data.Result[0].Value[1].(string), 64); n >= 5 {
					break
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	if count < 20 {
		t.Fatalf(`count({__name__=~"netsight_.+"}) = %v, want >= 20 series`, count)
	}
	t.Logf(`count({__name__=~"netsight_.+"}) = %v`, count)

	promtool(t, p.base)

	start := time.Now().Add(-time.Minute)
	rangeQ := func(base string, end time.Time) []float64 {
		r := query(t, base, "/api/v1/query_range", url.Values{
			"query": {`timestamp(netsight_store_head_series)`},
			"start": {strconv.FormatInt(start.Unix(), 10)}, "end": {strconv.FormatFloat(float64(end.UnixMilli())/1000, 'f', 3, 64)},
			"step": {"0.2"}, // finer than the 1 s interval: every sample shows
		})
		if len(r.Data.Result) != 1 {
			t.Fatalf("query_range: %d series", len(r.Data.Result))
		}
		// timestamp() returns each step's underlying sample time: the
		// distinct values are the samples themselves.
		seen := map[float64]bool{}
		for _, v := range r.Data.Result[0].Values {
			f, _ := strconv.ParseFloat(v[1].(string), 64)
			seen[f] = true
		}
		out := make([]float64, 0, len(seen))
		for f := range seen {
			out = append(out, f)
		}
		sort.Float64s(out)
		return out
	}
	// Compare up to a cut-off safely before the query, so that no round is
	// half-committed at the cut-off; the kill follows the query at once.
	time.Sleep(time.Second)
	killAt := time.Now().Add(-time.Second)
	before := rangeQ(p.base, killAt)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if len(before) < 5 {
		t.Fatalf("only %d samples before the kill", len(before))
	}

	p2 := startBinary(t, bin, dataDir)
	if m := regexp.MustCompile(`msg="store opened" .*replayed_series=(\d+)`).FindStringSubmatch(p2.logs()); m == nil || m[1] == "0" {
		t.Errorf("restart did not replay series from the WAL:\n%s", p2.logs())
	}
	after := rangeQ(p2.base, killAt)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("samples before the kill changed across kill -9 + restart:\nbefore %v\nafter  %v", before, after)
	}
	t.Logf("%d samples from before kill -9 all returned after restart (last %.3f, cut-off %.3f)",
		len(after), after[len(after)-1], float64(killAt.UnixMilli())/1000)

	// And the restarted agent keeps appending to the same series.
	time.Sleep(2500 * time.Millisecond)
	if now := rangeQ(p2.base, time.Now()); len(now) <= len(before) {
		t.Errorf("no new samples after restart: %d <= %d", len(now), len(before))
	}
	_ = p2.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p2.done:
	case <-time.After(15 * time.Second):
		t.Error("netsight did not stop on SIGTERM")
	}
	if !strings.Contains(p2.logs(), "shutting down") {
		t.Errorf("no clean shutdown:\n%s", p2.logs())
	}
}

// promtool runs Debian's promtool against the agent, as an independent
// client of the Prometheus HTTP API.
func promtool(t *testing.T, base string) {
	t.Helper()
	bin := testlab.RequireBinary(t, "promtool")
	if bin == "" {
		return
	}
	run := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := run("query", "instant", base, `count({__name__=~"netsight_.+"})`)
	if !regexp.MustCompile(`^\{\} => \d+ @\[\d+(\.\d+)?\]`).MatchString(out) {
		t.Errorf("promtool query instant: %q", out)
	}
	out = run("query", "instant", "-o", "json", base, `netsight_store_scrape_interval_seconds`)
	if !strings.Contains(out, `"__name__":"netsight_store_scrape_interval_seconds"`) || !strings.Contains(out, `"1"]`) {
		t.Errorf("promtool query instant -o json: %q", out)
	}
	now := time.Now()
	out = run("query", "range", "--start", now.Add(-time.Minute).Format(time.RFC3339), "--end", now.Format(time.RFC3339),
		"--step", "1s", base, `netsight_store_head_series`)
	if !strings.Contains(out, "netsight_store_head_series =>") || strings.Count(out, "@[") < 3 {
		t.Errorf("promtool query range: %q", out)
	}
	out = run("query", "series", "--match", `netsight_collector_up`, base)
	if !strings.Contains(out, `__name__="netsight_collector_up"`) && !strings.Contains(out, `netsight_collector_up{`) {
		t.Errorf("promtool query series: %q", out)
	}
	out = run("query", "labels", base, "__name__")
	if !strings.Contains(out, "netsight_store_head_series") {
		t.Errorf("promtool query labels: %q", out)
	}
	t.Logf("promtool query instant/range/series/labels against %s: ok", base)
}
