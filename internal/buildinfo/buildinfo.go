// Package buildinfo reports netsight's version, VCS revision and Go version
// and exports them as netsight_build_info.
package buildinfo

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Version is set at link time: -ldflags "-X github.com/netsight/netsight/internal/buildinfo.Version=v1.2.3".
var Version = "dev"

// Revision returns the VCS revision the binary was built from, or "unknown".
func Revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if dirty {
				rev += "-dirty"
			}
			return rev
		}
	}
	return "unknown"
}

// GoVersion is the toolchain that built the binary.
func GoVersion() string { return runtime.Version() }

// String is the one-line version banner.
func String() string {
	return "netsight " + Version + " (revision " + Revision() + ", " + GoVersion() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")"
}

// Collector returns the netsight_build_info gauge (always 1).
func Collector() prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "netsight_build_info",
		Help: "A metric with a constant '1' value labelled by version, revision and goversion from which netsight was built.",
	}, []string{"version", "revision", "goversion"})
	g.WithLabelValues(Version, Revision(), GoVersion()).Set(1)
	return g
}
