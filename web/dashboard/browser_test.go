package dashboard_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netsight/netsight/agent"
	_ "github.com/netsight/netsight/collector/all"
	"github.com/netsight/netsight/internal/testlab"
	"github.com/netsight/netsight/store"
	_ "github.com/netsight/netsight/web/dashboard"
)

// startAgent runs the whole agent in-process (every linked collector, the
// store, the dashboard) on a free loopback port with a temp data dir, and
// waits until the store holds a few rounds of data.
func startAgent(t *testing.T, configFile string) string {
	t.Helper()
	base := startAgentWith(t, configFile, nil)
	// Wait for at least 8 ingest rounds so charts have lines, not dots.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape("count_over_time(netsight_store_head_series[1m]) >= 8"))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), `"result":[{`) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("store has no data after 30s")
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Give the loopback probes one complete period (not fatal: the probe
	// collector belongs to another package and may be off on this host).
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape("count(netsight_probe_period_loss_ratio)"))
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), `"result":[{`) {
			break
		}
	}
	return base
}

// startAgentWith runs the agent in-process with extra overrides and returns
// its base URL once it listens.
func startAgentWith(t *testing.T, configFile string, extra map[string]string) string {
	t.Helper()
	addrCh := make(chan string, 1)
	overrides := map[string]string{
		"server.listen":         "127.0.0.1:0",
		"data_dir":              t.TempDir(),
		"store.scrape_interval": "1s",
		"log.level":             "warn",
	}
	for k, v := range extra {
		overrides[k] = v
	}
	a, err := agent.New(agent.Options{
		ConfigFile: configFile,
		Overrides:  overrides,
		LogOutput:  io.Discard,
		OnListen:   func(addr string) { addrCh <- addr },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("agent did not stop")
		}
	})
	var addr string
	select {
	case addr = <-addrCh:
	case err := <-done:
		t.Fatalf("agent stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not start listening")
	}
	return "http://" + addr
}

func artifactDir(t *testing.T) string {
	if d := os.Getenv("NETSIGHT_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// pageState is window.netsight, the dashboard's self-report.
type pageState struct {
	Fetches struct {
		OK     int `json:"ok"`
		Failed int `json:"failed"`
	} `json:"fetches"`
	Errors         []string `json:"errors"`
	Rendered       int      `json:"rendered"`
	Charts         int      `json:"charts"`
	ChartsWithData int      `json:"chartsWithData"`
	Flows          string   `json:"flows"`
}

type canvasInfo struct {
	W, H    float64
	Section string
}

// TestDashboardInChromium loads the dashboard in headless Chromium, light and
// dark: no console errors or exceptions, every data fetch succeeds, charts
// render as non-empty canvases, the health cards and collectors table are
// filled; screenshots are written as artifacts.
func TestDashboardInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	chromium := testlab.RequireBinary(t, "chromium")
	srv := loopbackServer(t)
	// Probes to loopback only (TCP to our echo server, ICMP to 127.0.0.1),
	// so the probe panels have data.
	cfg := filepath.Join(t.TempDir(), "netsight.yaml")
	_, port, _ := net.SplitHostPort(srv)
	if err := os.WriteFile(cfg, []byte(`collectors:
  probe:
    targets:
      - {name: loopback-tcp, address: 127.0.0.1, protocol: tcp, port: `+port+`, interval: 500ms, period: 2s}
      - {name: loopback-icmp, address: 127.0.0.1, protocol: icmp, interval: 500ms, period: 2s}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	base := startAgent(t, cfg)
	loopbackConns(t, srv, 6) // after start: the eBPF flow back end sees new connections
	dir := artifactDir(t)

	for _, theme := range []string{"light", "dark"} {
		t.Run(theme, func(t *testing.T) {
			ctx, problems := openBrowser(t, chromium)
			tctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
			defer cancelT()

			if err := chromedp.Do(tctx,
				chromedp.Navigate(base+"/?range=15m&theme="+theme),
				chromedp.WaitVisible(chromedp.CSS(".card[data-status]")),
			); err != nil {
				t.Fatalf("load dashboard: %v", err)
			}
			if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`window.netsight && window.netsight.rendered >= 1`,
				chromedp.WithPollingTimeout(45*time.Second))); err != nil {
				t.Fatalf("dashboard did not finish rendering: %v", err)
			}
			st, err := chromedp.Run(tctx, chromedp.Evaluate[pageState](`window.netsight`))
			if err != nil {
				t.Fatal(err)
			}
			canvases, err := chromedp.Run(tctx, chromedp.Evaluate[[]canvasInfo](`Array.from(document.querySelectorAll(".chart canvas")).map(c => {
				const r = c.getBoundingClientRect();
				return {W: r.width, H: r.height, Section: c.closest(".section").id};
			})`))
			if err != nil {
				t.Fatal(err)
			}
			cards, err := chromedp.Run(tctx, chromedp.Evaluate[int](`document.querySelectorAll(".card[data-status]").length`))
			if err != nil {
				t.Fatal(err)
			}
			collectorRows, err := chromedp.Run(tctx, chromedp.Evaluate[int](`document.querySelectorAll("#collectors tbody tr").length`))
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(st.Flows, "shown") {
				checkFlowSort(t, tctx)
			}
			// Let uPlot finish its rAF-batched draw before the screenshot.
			if err := chromedp.Do(tctx, chromedp.Sleep(300*time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			shot, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "dashboard-"+theme+".png")
			if err := os.WriteFile(path, shot, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot: %s", path)
			t.Logf("page: %d fetches ok, %d charts with data of %d, flows table %s", st.Fetches.OK, st.ChartsWithData, st.Charts, st.Flows)
			if img, err := png.Decode(bytes.NewReader(shot)); err != nil {
				t.Errorf("screenshot is not a PNG: %v", err)
			} else if b := img.Bounds(); b.Dx() < 1000 || b.Dy() < 800 {
				t.Errorf("screenshot %dx%d, want a full page", b.Dx(), b.Dy())
			}

			if theme2, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.documentElement.dataset.theme`)); err != nil || theme2 != theme {
				t.Errorf("theme = %q (%v), want %s", theme2, err, theme)
			}
			// Interaction: switch to the 1h range and toggle the theme; the
			// page re-renders without errors.
			if _, err := chromedp.Run(tctx, chromedp.Evaluate[bool](`(() => {
				Array.from(document.querySelectorAll("#ranges button")).find(b => b.textContent === "1h").click();
				document.getElementById("theme").click();
				return true;
			})()`)); err != nil {
				t.Fatal(err)
			}
			if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`window.netsight.rendered >= 3 && !document.querySelector("#refresh.spin")`,
				chromedp.WithPollingTimeout(45*time.Second))); err != nil {
				t.Errorf("no re-render after range and theme change: %v", err)
			}
			after, err := chromedp.Run(tctx, chromedp.Evaluate[pageState](`window.netsight`))
			if err != nil {
				t.Fatal(err)
			}
			if after.Fetches.Failed != 0 || after.ChartsWithData == 0 {
				t.Errorf("after range/theme change: %+v", after)
			}
			if u, err := chromedp.Run(tctx, chromedp.Evaluate[string](`location.search`)); err != nil || !strings.Contains(u, "range=1h") {
				t.Errorf("URL after range change: %q %v", u, err)
			}
			for _, p := range problems() {
				t.Errorf("browser: %s", p)
			}
			if st.Fetches.Failed != 0 || len(st.Errors) != 0 {
				t.Errorf("failed data fetches: %d: %v", st.Fetches.Failed, st.Errors)
			}
			if st.Fetches.OK < 10 {
				t.Errorf("only %d successful data fetches", st.Fetches.OK)
			}
			agentCharts := 0
			for _, c := range canvases {
				if c.W < 150 || c.H < 100 {
					t.Errorf("canvas in %s has size %.0fx%.0f", c.Section, c.W, c.H)
				}
				if c.Section == "agent" {
					agentCharts++
				}
			}
			// The agent's own section always has data: collector durations,
			// CPU, memory, store series and disk.
			if agentCharts < 5 || st.ChartsWithData != len(canvases) {
				t.Errorf("charts with data: %d canvases (%d in agent), page says %d of %d", len(canvases), agentCharts, st.ChartsWithData, st.Charts)
			}
			if cards < 5 || collectorRows < 1 {
				t.Errorf("cards=%d collector rows=%d", cards, collectorRows)
			}
		})
	}
}

// checkFlowSort clicks the RTT header of the flows table and checks the rows
// come out sorted descending, then ascending on a second click.
func checkFlowSort(t *testing.T, ctx context.Context) {
	t.Helper()
	for _, want := range []string{"descending", "ascending"} {
		col, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`(() => {
			const th = document.querySelector('#flows-table th[data-key="srtt_seconds"]');
			th.click();
			const idx = Array.from(th.parentNode.children).indexOf(th);
			return Array.from(document.querySelectorAll('#flows-table tbody tr'))
				.filter(tr => tr.children.length > idx).map(tr => parseFloat(tr.children[idx].dataset.v)).filter(v => !isNaN(v));
		})()`))
		if err != nil {
			t.Fatalf("sort flows: %v", err)
		}
		sort, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#flows-table th[data-key="srtt_seconds"]').getAttribute("aria-sort")`))
		if err != nil || sort != want {
			t.Errorf("aria-sort = %q (%v), want %s", sort, err, want)
		}
		for i := 1; i < len(col); i++ {
			if (want == "descending" && col[i] > col[i-1]) || (want == "ascending" && col[i] < col[i-1]) {
				t.Errorf("flows not sorted %s by RTT at row %d: %v", want, i, col)
				break
			}
		}
		t.Logf("flows table: %d rows sorted %s by RTT", len(col), want)
	}
}

// loopbackServer is a TCP echo server on 127.0.0.1 for the test.
func loopbackServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// loopbackConns holds n TCP connections to addr open for the test, so the
// flows collector (when it runs) has rows for the flows table.
func loopbackConns(t *testing.T, addr string, n int) {
	t.Helper()
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_, _ = c.Write(bytes.Repeat([]byte{'x'}, 1000*(i+1)))
	}
}

// openBrowser starts headless Chromium with the CI flags and a fresh profile,
// and records console errors, uncaught exceptions and error log entries
// (failed loads). problems returns what was recorded so far.
func openBrowser(t *testing.T, chromium string) (ctx context.Context, problems func() []string) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	var mu sync.Mutex
	var seen []string
	err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				seen = append(seen, "console."+string(ev.Type)+": "+strings.Join(parts, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			seen = append(seen, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, msg))
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				seen = append(seen, "log "+string(ev.Entry.Source)+": "+ev.Entry.Text+" "+ev.Entry.URL)
			}
		}
	})
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// Copy under the lock; never hold it across a chromedp call: the
	// listener runs in the tab's message loop.
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// TestDashboardStoreDisabled: with store.enabled: false the page degrades to
// collector status (and flows) without errors, and says why.
func TestDashboardStoreDisabled(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	chromium := testlab.RequireBinary(t, "chromium")
	base := startAgentWith(t, "", map[string]string{"store.enabled": "false"})
	ctx, problems := openBrowser(t, chromium)
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`window.netsight && window.netsight.rendered >= 1`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("dashboard did not render: %v", err)
	}
	verdict, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.getElementById("verdict").innerText`))
	if err != nil || !strings.Contains(verdict, "store.enabled: false") {
		t.Errorf("verdict %q (%v): want it to name store.enabled: false", verdict, err)
	}
	n, err := chromedp.Run(tctx, chromedp.Evaluate[int](`document.querySelectorAll("#collectors tbody tr").length + (document.getElementById("sections").hidden ? 1000 : 0)`))
	if err != nil || n < 1001 {
		t.Errorf("want collector rows and hidden charts, got %d (%v)", n, err)
	}
	shot, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	if err == nil {
		path := filepath.Join(artifactDir(t), "dashboard-store-disabled.png")
		if err := os.WriteFile(path, shot, 0o644); err == nil {
			t.Logf("screenshot: %s", path)
		}
	}
	for _, p := range problems() {
		t.Errorf("browser: %s", p)
	}
}

// TestDashboardStoreDown: a store that cannot open (non-sequential WAL
// segments) is shown as down with its reason and hint, the page degrades to
// collector status without errors, and it says collectors keep running.
func TestDashboardStoreDown(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	chromium := testlab.RequireBinary(t, "chromium")
	dataDir := t.TempDir()
	tsdbDir := filepath.Join(dataDir, store.SubDir)
	s, err := store.Open(store.Options{Dir: tsdbDir, Gatherer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ingest(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tsdbDir, "wal", "00000007"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	base := startAgentWith(t, "", map[string]string{"data_dir": dataDir})
	ctx, problems := openBrowser(t, chromium)
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`window.netsight && window.netsight.rendered >= 1`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("dashboard did not render: %v", err)
	}
	alert, err := chromedp.Run(tctx, chromedp.Evaluate[string](`(function(){var a=document.getElementById("store-alert"); return a.hidden ? "" : a.innerText})()`))
	if err != nil || !strings.Contains(alert, "Store down") || !strings.Contains(alert, "not sequential") ||
		!strings.Contains(alert, "move "+tsdbDir+" aside or set store.enabled: false") || !strings.Contains(alert, "collectors and /metrics keep running") {
		t.Errorf("store alert %q (%v)", alert, err)
	}
	verdict, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.getElementById("verdict").innerText`))
	if err != nil || !strings.Contains(verdict, "the store is down") {
		t.Errorf("verdict %q (%v)", verdict, err)
	}
	n, err := chromedp.Run(tctx, chromedp.Evaluate[int](`document.querySelectorAll("#collectors tbody tr").length + (document.getElementById("sections").hidden ? 1000 : 0)`))
	if err != nil || n < 1001 {
		t.Errorf("want collector rows and hidden charts, got %d (%v)", n, err)
	}
	shot, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	if err == nil {
		path := filepath.Join(artifactDir(t), "dashboard-store-down.png")
		if err := os.WriteFile(path, shot, 0o644); err == nil {
			t.Logf("screenshot: %s", path)
		}
	}
	for _, p := range problems() {
		t.Errorf("browser: %s", p)
	}
}
