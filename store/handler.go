package store

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/netsight/netsight/internal/buildinfo"
)

// APIRoutes are the query API's routes (also answered, with an
// "unavailable" error, when the store is disabled). Handler and
// DisabledHandler serve all of them; the agent mounts them on these
// patterns.
var APIRoutes = []string{
	"GET /api/v1/query", "POST /api/v1/query",
	"GET /api/v1/query_range", "POST /api/v1/query_range",
	"GET /api/v1/series", "POST /api/v1/series",
	"GET /api/v1/labels", "POST /api/v1/labels",
	"GET /api/v1/query_exemplars", "POST /api/v1/query_exemplars",
	"GET /api/v1/label/{name}/values",
	"GET /api/v1/metadata",
	"GET /api/v1/status/buildinfo",
}

// Handler is the Prometheus-compatible query API over s (every route of
// APIRoutes).
func Handler(s *Store, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	NewAPI(s, serverBuildInfo(), logger).Register(mux.Handle)
	return mux
}

// DisabledHandler answers the query API when the store is disabled:
// buildinfo as usual, every other route with Prometheus' "unavailable"
// error (not 404), so Grafana and the dashboard say why there is no data.
func DisabledHandler() http.Handler {
	bi := serverBuildInfo()
	apiErr := &apiError{ErrUnavailable, errors.New("the embedded store is disabled (store.enabled: false)")}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/status/buildinfo" {
			(&API{}).respond(w, apiResult{data: bi})
			return
		}
		(&API{}).respondError(w, apiErr)
	})
}

// serverBuildInfo answers /api/v1/status/buildinfo. "version" is the
// Prometheus release whose PromQL engine and TSDB are embedded (clients such
// as Grafana gate features on it); netsight's own version is in "branch"
// ("netsight-<version>") and "revision".
func serverBuildInfo() BuildInfo {
	return BuildInfo{
		Version:   prometheusVersion(),
		Revision:  buildinfo.Revision(),
		Branch:    "netsight-" + buildinfo.Version,
		BuildUser: "netsight",
		GoVersion: buildinfo.GoVersion(),
	}
}

// prometheusVersion maps the Go module version of github.com/prometheus/prometheus
// (v0.MMM.P for Prometheus M.MM.P since 3.0) to the release it was cut from.
func prometheusVersion() string {
	const fallback = "3.16.0"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return fallback
	}
	for _, d := range bi.Deps {
		if d.Path != "github.com/prometheus/prometheus" {
			continue
		}
		if v := moduleToRelease(d.Version); v != "" {
			return v
		}
	}
	return fallback
}

func moduleToRelease(v string) string {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) != 3 || parts[0] != "0" {
		return ""
	}
	mm, err := strconv.Atoi(parts[1])
	if err != nil || mm < 100 {
		return ""
	}
	patch, _, _ := strings.Cut(parts[2], "-")
	return fmt.Sprintf("%d.%d.%s", mm/100, mm%100, patch)
}
