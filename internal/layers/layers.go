package layers

import (
	"fmt"
	"slices"
	"strings"
)

// Module is netsight's module path.
const Module = "github.com/netsight/netsight"

// Layer ranks: a package may import packages of a lower rank only, with the
// exceptions Check lists.
const (
	rankBottom  = 0 // config, internal/buildinfo, internal/logutil, internal/memlimit, internal/termcolor
	rankKernel  = 1 // internal/kernel
	rankCore    = 2 // flow, tcpanalysis, probe
	rankParts   = 3 // web, export, store, monitor, collector
	rankAgent   = 4 // agent, collector/all (the list of collectors)
	rankCommand = 5 // cmd, bench
)

// rank returns the layer of a package path relative to the module, and
// whether the rule knows it.
func rank(p string) (int, bool) {
	top, _, _ := strings.Cut(p, "/")
	switch {
	case p == "config" || p == "internal/buildinfo" || p == "internal/logutil" || p == "internal/memlimit" ||
		p == "internal/termcolor":
		return rankBottom, true
	case p == "internal/kernel":
		return rankKernel, true
	case top == "flow" || top == "tcpanalysis" || top == "probe":
		return rankCore, true
	case p == "agent" || p == "collector/all":
		return rankAgent, true
	case top == "web" || top == "export" || top == "store" || top == "monitor" || top == "collector" || p == "internal/hostcheck" || p == "internal/top":
		return rankParts, true
	case top == "cmd" || top == "bench" || top == "deploy":
		return rankCommand, true
	case p == "internal/testlab" || p == "internal/metrictest":
		return rankParts, true // test helpers: see testOnly
	case p == "docs" || p == "internal/layers" || p == "internal/receiver" || p == "internal/e2e":
		return rankCommand, true
	}
	return 0, false
}

// testOnly are helpers for tests and benchmarks, never for the agent.
var testOnly = []string{"internal/testlab", "internal/metrictest", "internal/receiver", "internal/e2e"}

// group is the unit within the parts layer: "collector/flows" for
// collector/flows/ebpf, "web" for web/dashboard, "collector" for the seam,
// "export" for every output and their shared delivery core.
func group(p string) string {
	parts := strings.Split(p, "/")
	if parts[0] == "collector" && len(parts) > 1 {
		return parts[0] + "/" + parts[1]
	}
	return parts[0]
}

// isSource reports whether p is a source (a collector, not the seam).
func isSource(p string) bool { return strings.HasPrefix(p, "collector/") && p != "collector/all" }

// Check returns every violation of the import rule in graph (package ->
// its non-test imports; paths relative to the module, other modules
// ignored), sorted.
func Check(graph map[string][]string) []string {
	var out []string
	for from, imps := range graph {
		rf, ok := rank(from)
		if !ok {
			out = append(out, fmt.Sprintf("%s: not placed in a layer (add it to internal/layers)", from))
			continue
		}
		for _, to := range imps {
			rt, ok := rank(to)
			if !ok {
				continue // reported as the importing side
			}
			if why := violation(from, to, rf, rt); why != "" {
				out = append(out, fmt.Sprintf("%s imports %s: %s", from, to, why))
			}
		}
	}
	slices.Sort(out)
	return out
}

func violation(from, to string, rf, rt int) string {
	switch {
	case to == "agent" && !strings.HasPrefix(from, "cmd/"):
		return "nothing but cmd imports agent"
	case slices.Contains(testOnly, to) && rf != rankCommand:
		return "test helpers are for tests only"
	case isSource(from) && group(to) != group(from) && to != "collector" && rt >= rankParts:
		return "a source imports no other source, web, store, monitor or output"
	case rt < rf:
		return ""
	case rt == rf && rf == rankCore:
		return "" // flow, tcpanalysis and probe are one layer
	case rt == rf && (group(to) == group(from) || to == "collector" || rf == rankCommand):
		return ""
	case rt == rf:
		return "imports a sibling of its layer"
	default:
		return "imports upward"
	}
}
