package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/netsight/netsight/flow"
)

// FlowsPattern is the route of the flow API.
const FlowsPattern = "GET /api/v1/flows"

// FlowReader is what the flow API reads: the agent's per-connection table
// (a *flow.Table).
type FlowReader interface {
	Flows(f flow.Filter) []flow.Record
	// Source names the source feeding the table ("ebpf", "sockdiag",
	// "capture"; "" when none).
	Source() string
}

// FlowsHandler serves GET /api/v1/flows from the table t.
//
// Query parameters: remote (address or CIDR), port (local or remote),
// min_retransmissions, direction (client|server), netns (network namespace
// inode), limit (default 1000, at most 10000).
func FlowsHandler(t FlowReader) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := ParseFilter(r.URL.Query())
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		limit := f.Limit
		f.Limit = limit + 1
		flows := t.Flows(f)
		truncated := len(flows) > limit
		if truncated {
			flows = flows[:limit]
		}
		writeJSON(w, http.StatusOK, apiResponse{Backend: t.Source(), Flows: flows, Truncated: truncated})
	})
}

type apiResponse struct {
	Backend   string        `json:"backend"`
	Truncated bool          `json:"truncated"`
	Flows     []flow.Record `json:"flows"`
}

// MaxLimit caps the limit parameter of the flow API.
const MaxLimit = 10000

// ParseFilter parses the flow API's query parameters.
func ParseFilter(q map[string][]string) (flow.Filter, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[len(v)-1]
		}
		return ""
	}
	f := flow.Filter{Limit: 1000}
	var errs []error
	if v := get("remote"); v != "" {
		p, err := parsePrefix(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("remote: %w", err))
		}
		f.Remote = p
	}
	if v := get("port"); v != "" {
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil || n == 0 {
			errs = append(errs, fmt.Errorf("port: want 1-65535, got %q", v))
		}
		f.Port = uint16(n)
	}
	if v := get("min_retransmissions"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("min_retransmissions: want a non-negative integer, got %q", v))
		}
		f.MinRetransmits = n
	}
	if v := get("direction"); v != "" {
		d, err := flow.ParseDirection(v)
		if err != nil {
			errs = append(errs, err)
		}
		f.Direction = d
	}
	if v := get("netns"); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			errs = append(errs, fmt.Errorf("netns: want a network namespace inode (1-4294967295), got %q", v))
		}
		f.NetNS = uint32(n)
	}
	if v := get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			errs = append(errs, fmt.Errorf("limit: want 1-%d, got %q", MaxLimit, v))
		}
		f.Limit = n
	}
	return f, errors.Join(errs...)
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("want an address or CIDR, got %q", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("want an address or CIDR, got %q", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}
