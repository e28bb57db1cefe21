package top

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/netsight/netsight/flow"
)

// AgentSource reads a running agent: GET /api/v1/flows for the
// connections, /metrics for the host pane and /api/v1/status/collectors
// for the collectors' reasons.
type AgentSource struct {
	// URL is the agent's base URL (http://127.0.0.1:19977).
	URL *url.URL
	// Client carries the auth and TLS options (and its own timeout).
	Client *http.Client
	// Limit is the most connections asked for (the API's limit, 1..10000).
	Limit int
}

// maxAgentBody bounds one answer read from the agent.
const maxAgentBody = 64 << 20

// Name is the agent's URL.
func (a *AgentSource) Name() string { return a.URL.Redacted() }

// Snapshot reads the agent now.
func (a *AgentSource) Snapshot(ctx context.Context, f flow.Filter) (*Snapshot, error) {
	limit := a.Limit
	if limit <= 0 {
		limit = 10000
	}
	snap := &Snapshot{Time: time.Now()}
	var flows struct {
		Backend   string            `json:"backend"`
		Truncated bool              `json:"truncated"`
		Flows     []json.RawMessage `json:"flows"`
	}
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if f.Remote.IsValid() {
		q.Set("remote", f.Remote.String())
	}
	if f.Port != 0 {
		q.Set("port", strconv.Itoa(int(f.Port)))
	}
	body, err := a.get(ctx, "/api/v1/flows?"+q.Encode(), "application/json")
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, &flows); err != nil {
		return nil, fmt.Errorf("agent /api/v1/flows: decode: %w", err)
	}
	snap.Backend, snap.Truncated = flows.Backend, flows.Truncated
	snap.Flows = make([]flow.Record, len(flows.Flows))
	snap.Labels = make(map[uint64]Label, len(flows.Flows))
	for i, raw := range flows.Flows {
		if err := json.Unmarshal(raw, &snap.Flows[i]); err != nil {
			return nil, fmt.Errorf("agent /api/v1/flows: flows[%d]: %w", i, err)
		}
		// The agent names places as it sees them (its host's namespaces
		// and cgroups).
		var l struct {
			NetNSName string `json:"netns_name"`
			Workload  string `json:"workload"`
			HostNetNS bool   `json:"host_netns"`
		}
		if err := json.Unmarshal(raw, &l); err != nil {
			return nil, fmt.Errorf("agent /api/v1/flows: flows[%d]: %w", i, err)
		}
		snap.Labels[snap.Flows[i].ID] = Label{NetNSName: l.NetNSName, Workload: l.Workload, HostNetNS: l.HostNetNS}
	}

	body, err = a.get(ctx, "/metrics", "text/plain;version=0.0.4")
	if err != nil {
		return nil, err
	}
	mfs, err := ParseMetrics(body)
	if err != nil {
		return nil, fmt.Errorf("agent /metrics: %w", err)
	}
	snap.Host = HostFromMetrics(mfs)

	// The status API adds the reasons; an older agent without it still
	// gives up/down from /metrics.
	if body, err := a.get(ctx, "/api/v1/status/collectors", "application/json"); err == nil {
		var st []CollectorState
		if json.Unmarshal(body, &st) == nil {
			snap.Host.MergeCollectors(st)
		}
	}
	return snap, nil
}

func (a *AgentSource) get(ctx context.Context, path, accept string) ([]byte, error) {
	u := a.URL.JoinPath()
	p, q, _ := strings.Cut(path, "?")
	u.Path = strings.TrimSuffix(u.Path, "/") + p
	u.RawQuery = q
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", p, err)
	}
	req.Header.Set("Accept", accept)
	resp, err := a.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", p, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAgentBody+1))
	if err != nil {
		return nil, fmt.Errorf("agent %s: read: %w", p, err)
	}
	if len(body) > maxAgentBody {
		return nil, fmt.Errorf("agent %s: answer larger than %d bytes", p, maxAgentBody)
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		return nil, fmt.Errorf("agent %s: %s: %s", p, resp.Status, msg)
	}
	return body, nil
}

// ParseMetrics parses the Prometheus text format.
func ParseMetrics(b []byte) ([]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	m, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	out := make([]*dto.MetricFamily, 0, len(m))
	for _, mf := range m {
		out = append(out, mf)
	}
	return out, nil
}
