package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

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

// NotableReader is implemented by a FlowReader that keeps the closed
// connections that mattered after they leave the table (a *flow.Table).
type NotableReader interface {
	NotableClosed(since time.Time) []flow.NotableRecord
}

// Namer names network namespaces and workloads (a *kernel.Names).
type Namer interface {
	// NetNS is the `ip netns` name of a namespace inode, "" if none.
	NetNS(inode uint32) string
	// Workload is the container, pod or unit of a process (pid, and the
	// connection's cgroup ID), "" if none.
	Workload(pid uint32, cgroupID uint64) string
}

// FlowsOptions are the optional parts of the flow API.
type FlowsOptions struct {
	// Names adds netns_name and workload to each connection (nil: none).
	Names Namer
}

// FlowsHandler serves GET /api/v1/flows from the table t.
//
// Query parameters: remote (address or CIDR), port (local or remote),
// min_retransmissions, direction (client|server), netns (network namespace
// inode), limit (default 1000, at most 10000), closed_since (Unix seconds:
// also list, in notable_closed, the closed connections that mattered and
// have left the table since then).
func FlowsHandler(t FlowReader) http.Handler { return FlowsHandlerWith(t, FlowsOptions{}) }

// FlowsHandlerWith is FlowsHandler with options.
func FlowsHandlerWith(t FlowReader, o FlowsOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f, err := ParseFilter(q)
		var since time.Time
		if v := q.Get("closed_since"); v != "" {
			sec, perr := strconv.ParseFloat(v, 64)
			if perr != nil || sec < 0 || math.IsInf(sec, 0) || math.IsNaN(sec) {
				err = errors.Join(err, fmt.Errorf("closed_since: want Unix seconds, got %q", v))
			}
			since = time.Unix(0, int64(sec*1e9))
		}
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
		resp := apiResponse{Backend: t.Source(), Flows: make([]json.RawMessage, 0, len(flows)), Truncated: truncated}
		for i := range flows {
			resp.Flows = append(resp.Flows, decorate(&flows[i], o.Names, nil))
		}
		if nr, ok := t.(NotableReader); ok && !since.IsZero() {
			resp.NotableClosed = []json.RawMessage{}
			for _, n := range nr.NotableClosed(since) {
				if len(resp.NotableClosed) == limit {
					break
				}
				if f.Match(&n.Record) {
					resp.NotableClosed = append(resp.NotableClosed, decorate(&n.Record, o.Names, n.Reasons))
				}
			}
		}
		writeJSON(w, http.StatusOK, resp)
	})
}

// decorate is the JSON of r with netns_name, workload and notable added
// when known.
func decorate(r *flow.Record, names Namer, notable []string) json.RawMessage {
	b, err := json.Marshal(r)
	if err != nil || len(b) < 2 {
		return json.RawMessage("null")
	}
	var extra struct {
		NetNSName string   `json:"netns_name,omitempty"`
		Workload  string   `json:"workload,omitempty"`
		Notable   []string `json:"notable,omitempty"`
	}
	if names != nil {
		if r.NetNS != 0 && r.NetNS != flow.InitNetNSInode {
			extra.NetNSName = names.NetNS(r.NetNS)
		}
		extra.Workload = names.Workload(r.PID, r.CgroupID)
	}
	extra.Notable = notable
	if extra.NetNSName == "" && extra.Workload == "" && len(extra.Notable) == 0 {
		return b
	}
	x, err := json.Marshal(extra)
	if err != nil {
		return b
	}
	// {...record...} + {...extra...} -> {...record..., ...extra...}
	out := make([]byte, 0, len(b)+len(x))
	out = append(out, b[:len(b)-1]...)
	out = append(out, ',')
	return append(out, x[1:]...)
}

type apiResponse struct {
	Backend       string            `json:"backend"`
	Truncated     bool              `json:"truncated"`
	Flows         []json.RawMessage `json:"flows"`
	NotableClosed []json.RawMessage `json:"notable_closed,omitzero"`
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
		p, err := flow.ParsePrefix(v)
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

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}
