package store

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/internal/buildinfo"
)

// APIRoutes are the query API's routes (also answered, with an
// "unavailable" error, when the store is down or disabled).
var APIRoutes = []string{
	"GET /api/v1/query", "POST /api/v1/query",
	"GET /api/v1/query_range", "POST /api/v1/query_range",
	"GET /api/v1/series", "POST /api/v1/series",
	"GET /api/v1/labels", "POST /api/v1/labels",
	"GET /api/v1/query_exemplars", "POST /api/v1/query_exemplars",
	"GET /api/v1/label/{name}/values",
	"GET /api/v1/metadata",
}

// NewAgentHandle builds the agent's store from the config: <data_dir>/tsdb,
// locked by <data_dir>/netsight.lock. The handle never fails the agent: a
// store that cannot open is reported down (netsight_store_up 0,
// /api/v1/status/store) and retried; with store.enabled: false every API
// route answers "unavailable". Mount its routes with Register.
func NewAgentHandle(cfg config.Store, dataDir string, g prometheus.Gatherer, r prometheus.Registerer, logger *slog.Logger) *Handle {
	if !cfg.StoreEnabled() {
		logger.Info("store disabled (store.enabled: false): no history, the query API and dashboard charts answer 'unavailable'")
	}
	return NewHandle(HandleOptions{
		Options: Options{
			Dir:            filepath.Join(dataDir, SubDir),
			Interval:       cfg.ScrapeInterval,
			Retention:      cfg.Retention,
			RetentionBytes: cfg.RetentionSize,
			Gatherer:       g,
			Registerer:     r,
			Logger:         logger,
			Query:          LimitsFromConfig(cfg.Query),
		},
		LockDir:   dataDir,
		BuildInfo: serverBuildInfo(),
		Disabled:  !cfg.StoreEnabled(),
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
