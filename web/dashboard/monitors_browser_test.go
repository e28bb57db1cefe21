package dashboard_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/netsight/netsight/internal/testlab"
)

type monitorsState struct {
	State      string
	Rendered   int
	Monitors   int
	TopRows    int
	TopMonitor string
	Categories int
	Errors     []string
	Fetches    struct{ OK, Failed int }
}

// TestDashboardMonitors: the Monitors view in headless Chromium shows one
// row per monitor with sparklines, the top contributors of the selected
// monitor (a click selects another), and the categories with traffic; no
// console errors, no failed fetch.
func TestDashboardMonitors(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	chromium := testlab.RequireBinary(t, "chromium")
	srv := loopbackServer(t)
	cfg := filepath.Join(t.TempDir(), "netsight.yaml")
	if err := os.WriteFile(cfg, []byte(`topology:
  imds: "off"
monitors:
  items:
    - {name: loopback, remote: {cidrs: [127.0.0.0/8]}}
    - {name: web, remote: {ports: [443]}}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	base := startAgentWith(t, cfg, map[string]string{"store.enabled": "false"})
	loopbackConns(t, srv, 6)
	ctx, problems := openBrowser(t, chromium)
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("load dashboard: %v", err)
	}
	// The flows back end reports the loopback connections within its poll.
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`(() => {
		const m = window.netsightMonitors;
		if (!m || m.rendered < 1) return false;
		if (m.topRows === 0) document.getElementById("refresh").click();
		return m.topRows > 0;
	})()`, chromedp.WithPollingTimeout(40*time.Second), chromedp.WithPollingInterval(time.Second))); err != nil {
		st, _ := chromedp.Run(tctx, chromedp.Evaluate[monitorsState](`window.netsightMonitors`))
		t.Fatalf("monitors view never showed contributors: %v (%+v)", err, st)
	}
	rows, err := chromedp.Run(tctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#monitors-table tbody tr")).map(tr => tr.dataset.monitor)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0] != "all" || rows[1] != "loopback" || rows[2] != "web" {
		t.Errorf("monitor rows %v, want all, loopback, web", rows)
	}
	sparks, err := chromedp.Run(tctx, chromedp.Evaluate[int](`document.querySelectorAll("#monitors-table svg.spark polyline").length`))
	if err != nil || sparks != 9 {
		t.Errorf("%d sparklines (%v), want 3 per monitor", sparks, err)
	}
	// The loopback monitor's contributor is the echo server (all has
	// whatever else this host does).
	if _, err := chromedp.Run(tctx, chromedp.Evaluate[bool](`(() => {
		document.querySelector('#monitors-table tr[data-monitor="loopback"]').click();
		return true;
	})()`)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`window.netsightMonitors.topMonitor === "loopback" && window.netsightMonitors.topRows > 0`,
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Errorf("selecting the loopback monitor: %v", err)
	}
	remote, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.querySelector("#monitors-top tbody tr td").textContent`))
	if err != nil || remote != "127.0.0.1" {
		t.Errorf("top contributor of loopback %q (%v), want 127.0.0.1", remote, err)
	}
	cats, err := chromedp.Run(tctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#monitors-categories tbody tr[data-category]")).map(tr => tr.dataset.category)`))
	if err != nil || len(cats) == 0 || cats[0] != "host" {
		t.Errorf("categories %v (%v), want host first", cats, err)
	}
	// Select the "web" monitor (no traffic on port 443) and rank by bytes.
	if _, err := chromedp.Run(tctx, chromedp.Evaluate[bool](`(() => {
		document.querySelector('#monitors-table tr[data-monitor="web"]').click();
		document.querySelector('#monitors-metric button[data-metric="bytes"]').click();
		return true;
	})()`)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`window.netsightMonitors.topMonitor === "web" &&
		document.getElementById("monitors-top-note").textContent.includes("by bytes")`,
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Errorf("selecting a monitor: %v", err)
	}
	if sel, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.querySelector('#monitors-table tr[aria-selected="true"]').dataset.monitor`)); err != nil || sel != "web" {
		t.Errorf("selected row %q (%v)", sel, err)
	}
	st, err := chromedp.Run(tctx, chromedp.Evaluate[monitorsState](`window.netsightMonitors`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("monitors view: %+v", st)
	if st.Fetches.Failed != 0 || len(st.Errors) != 0 {
		t.Errorf("failed fetches: %+v", st)
	}
	for _, p := range problems() {
		t.Errorf("browser: %s", p)
	}
	shot, err := chromedp.Run(tctx, chromedp.FullScreenshot(90))
	if err == nil {
		path := filepath.Join(artifactDir(t), "dashboard-monitors.png")
		if err := os.WriteFile(path, shot, 0o644); err == nil {
			t.Logf("screenshot: %s", path)
		}
	}
}
