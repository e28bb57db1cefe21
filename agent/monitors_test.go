package agent_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// An IMDS that refuses the token, or never answers: the agent starts
// anyway, and /api/v1/monitors says why the topology lacks it.
func TestAgentIMDSDownStartsAnyway(t *testing.T) {
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "forbidden", http.StatusForbidden)
	}))
	defer refuse.Close()
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang }))
	defer slow.Close()
	defer close(hang)
	for _, c := range []struct{ name, url, want string }{
		{"token refused", refuse.URL, "imds token refused: HTTP 403"},
		{"timeout", slow.URL, "imds token:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := startAgent(t, "collectors:"+allOff+"topology:\n  imds: \"on\"\n  imds_endpoint: "+c.url+
				"\nmonitors:\n  items:\n    - name: web\n      remote: {ports: [443]}\n")
			var last string
			for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				var body struct {
					Monitors []struct {
						Name string `json:"name"`
					} `json:"monitors"`
					Topology []struct {
						Source, State, Detail string
					} `json:"topology"`
				}
				last = get(t, base+"/api/v1/monitors")
				if err := json.Unmarshal([]byte(last), &body); err != nil {
					t.Fatal(err)
				}
				if len(body.Monitors) != 2 || body.Monitors[0].Name != "all" || body.Monitors[1].Name != "web" {
					t.Fatalf("monitors: %s", last)
				}
				for _, s := range body.Topology {
					if s.Source == "imds" && s.State == "error" && strings.Contains(s.Detail, c.want) {
						return
					}
				}
			}
			t.Fatalf("no imds error %q in /api/v1/monitors: %s", c.want, last)
		})
	}
}
