package memlimit

import (
	"log/slog"
	"math"
	"os"
	"runtime/debug"

	aml "github.com/KimMachineGun/automemlimit/memlimit"
)

// Ratio is the part of the cgroup's memory limit used as the soft limit:
// the rest is headroom for memory the Go heap does not account (stacks,
// eBPF maps and socket buffers charged to the cgroup, the TSDB's mmapped
// chunks).
const Ratio = 0.85

// Source tells where the limit came from.
type Source string

// Sources of the soft memory limit.
const (
	FromEnv    Source = "GOMEMLIMIT environment variable"
	FromConfig Source = "limits.memory"
	FromCgroup Source = "cgroup memory limit"
	NoLimit    Source = "none"
)

// Choice is the soft memory limit in force after Apply.
type Choice struct {
	// Limit in bytes (math.MaxInt64: none).
	Limit  int64
	Source Source
	// Cgroup is the cgroup's memory limit in bytes (0: none found).
	Cgroup uint64
}

// env abstracts the process environment for tests.
type env struct {
	lookup func(string) (string, bool)
	cgroup func() (uint64, error)
	set    func(int64) int64 // debug.SetMemoryLimit
}

var osEnv = env{lookup: os.LookupEnv, cgroup: aml.FromCgroup, set: debug.SetMemoryLimit}

// Apply sets the soft memory limit from configured (limits.memory, bytes;
// 0: derive from the cgroup) and logs the choice.
func Apply(configured int64, logger *slog.Logger) Choice {
	c := choose(osEnv, configured)
	if logger == nil {
		return c
	}
	attrs := []any{"source", string(c.Source)}
	if c.Limit != math.MaxInt64 {
		attrs = append(attrs, "gomemlimit_bytes", c.Limit)
	}
	if c.Cgroup > 0 {
		attrs = append(attrs, "cgroup_limit_bytes", c.Cgroup)
	}
	if c.Source == NoLimit {
		logger.Info("no soft memory limit: no GOMEMLIMIT, limits.memory or cgroup memory limit", attrs...)
	} else {
		logger.Info("soft memory limit set", attrs...)
	}
	return c
}

func choose(e env, configured int64) Choice {
	// Any error (no limit, no cgroup, unreadable) means no cgroup limit.
	cg, err := e.cgroup()
	if err != nil || cg >= math.MaxInt64 {
		cg = 0
	}
	if v, ok := e.lookup("GOMEMLIMIT"); ok && v != "" {
		return Choice{Limit: e.set(-1), Source: FromEnv, Cgroup: cg}
	}
	if configured > 0 {
		e.set(configured)
		return Choice{Limit: configured, Source: FromConfig, Cgroup: cg}
	}
	if cg > 0 {
		l := int64(float64(cg) * Ratio)
		e.set(l)
		return Choice{Limit: l, Source: FromCgroup, Cgroup: cg}
	}
	return Choice{Limit: e.set(-1), Source: NoLimit}
}
