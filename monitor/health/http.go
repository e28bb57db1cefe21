package health

import (
	"encoding/json"
	"net/http"
)

// Route is the pattern the agent mounts Handler on.
const Route = "GET /api/v1/health"

// Reporter gives the current report (an *Engine, or a stand-in that says
// insufficient_data when monitors do not run).
type Reporter interface{ Report() Report }

// Handler serves GET /api/v1/health: the last evaluation's Report;
// ?monitor=NAME keeps that monitor only (404 when it does not exist).
func Handler(r Reporter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rep := Report{Verdict: InsufficientData, Monitors: []MonitorVerdict{}}
		if r != nil {
			rep = r.Report()
		}
		if rep.Monitors == nil {
			rep.Monitors = []MonitorVerdict{}
		}
		if name := req.URL.Query().Get("monitor"); name != "" {
			m, ok := rep.Monitor(name)
			if !ok {
				http.Error(w, "no monitor "+name, http.StatusNotFound)
				return
			}
			rep.Monitors = []MonitorVerdict{m}
			rep.Verdict = m.Verdict
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	})
}
