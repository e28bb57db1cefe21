package dashboard_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/netsight/netsight/internal/testlab"
	"github.com/netsight/netsight/monitor/health"
)

// TestHealthBannerInChromium: the banner leads with the health verdict of
// GET /api/v1/health (not a blanket "Network healthy"), with its sentence,
// and the Health block has one row and one timeline per monitor, in light
// and dark, with no browser errors.
func TestHealthBannerInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	chromium := testlab.RequireBinary(t, "chromium")
	cfg := filepath.Join(t.TempDir(), "netsight.yaml")
	if err := os.WriteFile(cfg, []byte(`monitors:
  evaluate_every: 1s
  window: 5s
  items:
    - {name: loopback, remote: {cidrs: ["127.0.0.0/8"]}}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	base := startAgentWith(t, cfg, nil)
	srv := loopbackServer(t)
	loopbackConns(t, srv, 4)

	var rep health.Report
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/api/v1/health")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&rep)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Monitors) == 2 && len(rep.Monitors[0].Transitions) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health report without the two monitors: %+v", rep)
		}
		time.Sleep(300 * time.Millisecond)
	}

	for _, theme := range []string{"light", "dark"} {
		t.Run(theme, func(t *testing.T) {
			ctx, problems := openBrowser(t, chromium)
			tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			if err := chromedp.Do(tctx, chromedp.Navigate(base+"/?range=15m&theme="+theme)); err != nil {
				t.Fatal(err)
			}
			if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`window.NetsightHealth && window.NetsightHealth.applied >= 1 && window.netsight.rendered >= 1 && document.querySelectorAll("#health-table tbody tr[data-monitor]").length === 2`,
				chromedp.WithPollingTimeout(45*time.Second))); err != nil {
				t.Fatalf("health not rendered: %v", err)
			}
			type view struct {
				Verdict, Status, Text, Sub string
				Fetched                    string
				Rows, Timelines, Segments  int
				Monitors                   []string
			}
			v, err := chromedp.Run(tctx, chromedp.Evaluate[view](`(() => {
				const b = document.getElementById("verdict");
				return {Fetched: window.NetsightHealth.report.verdict, Verdict: b.dataset.verdict, Status: b.dataset.status,
					Text: document.getElementById("verdict-text").textContent,
					Sub: document.getElementById("verdict-sub").textContent,
					Rows: document.querySelectorAll("#health-table tbody tr[data-monitor]").length,
					Timelines: document.querySelectorAll("#health-table .health-timeline").length,
					Segments: document.querySelectorAll("#health-table .health-timeline span[data-verdict]").length,
					Monitors: Array.from(document.querySelectorAll("#health-table tbody tr[data-monitor]")).map(r => r.dataset.monitor)};
			})()`))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("banner %q %q (status %s); %d rows, %d segments", v.Text, v.Sub, v.Status, v.Rows, v.Segments)
			// The verdict moves with live traffic: the banner must show the
			// report the page fetched last.
			if v.Verdict == "" || v.Verdict != v.Fetched {
				t.Errorf("banner verdict %q, the page's last report says %q", v.Verdict, v.Fetched)
			}
			if want := map[string]string{"healthy": "ok", "insufficient_data": "nodata"}[v.Verdict]; want != "" && v.Status != want && v.Status != "warn" && v.Status != "crit" {
				t.Errorf("banner status %q for %s", v.Status, v.Verdict)
			}
			if v.Verdict != "healthy" && strings.Contains(v.Text, "Network healthy") {
				t.Errorf("banner claims %q with verdict %s", v.Text, v.Verdict)
			}
			if !strings.HasPrefix(v.Sub, "— ") || len(v.Sub) < 10 {
				t.Errorf("banner without the verdict's sentence: %q", v.Sub)
			}
			if v.Rows != 2 || v.Timelines != 2 || v.Segments < 2 || strings.Join(v.Monitors, ",") != "all,loopback" {
				t.Errorf("health block: %+v", v)
			}
			for _, p := range problems() {
				t.Errorf("browser: %s", p)
			}
		})
	}
}
