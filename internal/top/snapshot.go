package top

import (
	"context"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/netsight/netsight/flow"
)

// Source gives Snapshots: the local collectors or a running agent.
type Source interface {
	// Snapshot reads the connections that pass f and the host state now
	// (f is what a source can filter itself: Filter.Pushdown).
	Snapshot(ctx context.Context, f flow.Filter) (*Snapshot, error)
	// Name says where the data comes from ("local", an agent URL).
	Name() string
}

// Snapshot is what a Source saw at one moment.
type Snapshot struct {
	Time time.Time
	// Backend is the flow back end feeding the connections ("ebpf",
	// "sockdiag"; "" when none runs).
	Backend string
	Flows   []flow.Record
	// Labels name the places of connections by ID, when the source knows
	// them (an agent); the Names of the view name the others.
	Labels map[uint64]Label
	// Truncated is set when the source held more connections than it sent.
	Truncated bool
	Host      Host
}

// Host is the state of the host's shared resources.
type Host struct {
	Collectors []CollectorState `json:"collectors"`
	// Conntrack is nil when the conntrack collector reported nothing.
	Conntrack *Conntrack `json:"conntrack"`
	NICs      []NIC      `json:"nic_allowances"`
	Probes    []Probe    `json:"probes"`
}

// CollectorState is one collector's health.
type CollectorState struct {
	Name   string `json:"name"`
	State  string `json:"state"`
	Up     bool   `json:"up"`
	Reason string `json:"reason,omitempty"`
}

// Conntrack is the connection-tracking table.
type Conntrack struct {
	Entries float64 `json:"entries"`
	Limit   float64 `json:"limit"`
	// GrowthPerSecond is the table's growth rate (absent until measured).
	GrowthPerSecond *float64 `json:"growth_per_second,omitempty"`
	// ExhaustionSeconds is the time until the table is full at that rate;
	// nil when it is not growing.
	ExhaustionSeconds *float64 `json:"exhaustion_seconds"`
	InsertFailed      float64  `json:"insert_failed_total"`
	Drop              float64  `json:"drop_total"`
	EarlyDrop         float64  `json:"early_drop_total"`
}

// UsageRatio is Entries over Limit (0 when the limit is unknown).
func (c *Conntrack) UsageRatio() float64 {
	if c.Limit <= 0 {
		return 0
	}
	return c.Entries / c.Limit
}

// AllowanceKinds are the ENA allowance counters, in display order.
var AllowanceKinds = []string{"bw_in", "bw_out", "pps", "conntrack", "linklocal"}

// NIC is one interface's cloud allowance counters.
type NIC struct {
	Device string `json:"device"`
	// Exceeded counts packets queued or dropped because an allowance was
	// exceeded, by kind (AllowanceKinds).
	Exceeded map[string]float64 `json:"allowance_exceeded_total"`
	// ConntrackAvailable is conntrack_allowance_available, when reported.
	ConntrackAvailable *float64 `json:"conntrack_allowance_available,omitempty"`
}

// Probe is one probe target's last period.
type Probe struct {
	Target   string `json:"target"`
	Protocol string `json:"protocol"`
	// LossRatio and RTTAvgSeconds are those of the last period; nil when
	// nothing was sent (or nothing answered).
	LossRatio     *float64           `json:"loss_ratio"`
	RTTAvgSeconds *float64           `json:"rtt_avg_seconds"`
	Outcomes      map[string]float64 `json:"outcomes_total"`
}

// Failing reports whether the target's last period lost packets or the
// probes did not all succeed.
func (p *Probe) Failing() bool {
	if p.LossRatio != nil && *p.LossRatio > 0 {
		return true
	}
	for k, v := range p.Outcomes {
		if k != "ok" && v > 0 && p.Outcomes["ok"] == 0 {
			return true
		}
	}
	return false
}

// HostFromMetrics reads the host pane from gathered metric families (the
// local registry, or an agent's /metrics parsed).
func HostFromMetrics(mfs []*dto.MetricFamily) Host {
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	one := func(name string) (float64, bool) {
		mf := byName[name]
		if mf == nil || len(mf.GetMetric()) == 0 {
			return 0, false
		}
		return value(mf.GetMetric()[0]), true
	}
	var h Host
	if mf := byName["netsight_collector_up"]; mf != nil {
		for _, m := range mf.GetMetric() {
			up := value(m) == 1
			st := CollectorState{Name: label(m, "collector"), Up: up, State: "running"}
			if !up {
				st.State = "down"
			}
			h.Collectors = append(h.Collectors, st)
		}
		sort.Slice(h.Collectors, func(i, j int) bool { return h.Collectors[i].Name < h.Collectors[j].Name })
	}
	if n, ok := one("netsight_conntrack_entries"); ok {
		c := &Conntrack{Entries: n}
		c.Limit, _ = one("netsight_conntrack_entries_limit")
		if g, ok := one("netsight_conntrack_entries_growth_per_second"); ok {
			c.GrowthPerSecond = &g
		}
		if e, ok := one("netsight_conntrack_exhaustion_seconds"); ok && !math.IsInf(e, 0) && !math.IsNaN(e) {
			c.ExhaustionSeconds = &e
		}
		c.InsertFailed, _ = one("netsight_conntrack_insert_failed_total")
		c.Drop, _ = one("netsight_conntrack_drop_total")
		c.EarlyDrop, _ = one("netsight_conntrack_early_drop_total")
		h.Conntrack = c
	}
	nics := map[string]*NIC{}
	nic := func(dev string) *NIC {
		n := nics[dev]
		if n == nil {
			n = &NIC{Device: dev, Exceeded: map[string]float64{}}
			nics[dev] = n
		}
		return n
	}
	for _, kind := range AllowanceKinds {
		if mf := byName["netsight_nic_"+kind+"_allowance_exceeded_total"]; mf != nil {
			for _, m := range mf.GetMetric() {
				nic(label(m, "device")).Exceeded[kind] = value(m)
			}
		}
	}
	if mf := byName["netsight_nic_conntrack_allowance_available"]; mf != nil {
		for _, m := range mf.GetMetric() {
			v := value(m)
			nic(label(m, "device")).ConntrackAvailable = &v
		}
	}
	for _, n := range nics {
		h.NICs = append(h.NICs, *n)
	}
	sort.Slice(h.NICs, func(i, j int) bool { return h.NICs[i].Device < h.NICs[j].Device })

	probes := map[[2]string]*Probe{}
	probe := func(m *dto.Metric) *Probe {
		k := [2]string{label(m, "target"), label(m, "protocol")}
		p := probes[k]
		if p == nil {
			p = &Probe{Target: k[0], Protocol: k[1], Outcomes: map[string]float64{}}
			probes[k] = p
		}
		return p
	}
	if mf := byName["netsight_probe_target_info"]; mf != nil {
		for _, m := range mf.GetMetric() {
			probe(m)
		}
	}
	if mf := byName["netsight_probe_period_loss_ratio"]; mf != nil {
		for _, m := range mf.GetMetric() {
			v := value(m)
			probe(m).LossRatio = &v
		}
	}
	if mf := byName["netsight_probe_period_rtt_avg_seconds"]; mf != nil {
		for _, m := range mf.GetMetric() {
			v := value(m)
			probe(m).RTTAvgSeconds = &v
		}
	}
	if mf := byName["netsight_probe_results_total"]; mf != nil {
		for _, m := range mf.GetMetric() {
			probe(m).Outcomes[label(m, "outcome")] += value(m)
		}
	}
	for _, p := range probes {
		h.Probes = append(h.Probes, *p)
	}
	sort.Slice(h.Probes, func(i, j int) bool {
		return h.Probes[i].Target+"\x00"+h.Probes[i].Protocol < h.Probes[j].Target+"\x00"+h.Probes[j].Protocol
	})
	return h
}

// MergeCollectors overlays states with reasons (a status API, the local
// manager) on the states read from netsight_collector_up.
func (h *Host) MergeCollectors(states []CollectorState) {
	for _, s := range states {
		i := slices.IndexFunc(h.Collectors, func(c CollectorState) bool { return c.Name == s.Name })
		if i < 0 {
			h.Collectors = append(h.Collectors, s)
			continue
		}
		h.Collectors[i] = s
	}
	sort.Slice(h.Collectors, func(i, j int) bool { return h.Collectors[i].Name < h.Collectors[j].Name })
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return math.NaN()
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// stateName is the ss(8)-style name of a flow.Record state.
func stateName(r *flow.Record) string {
	if r.ConnectFailed {
		if r.ConnectResult != "" {
			return strings.ToUpper(r.ConnectResult)
		}
		return "FAILED"
	}
	switch r.State {
	case "established":
		return "ESTAB"
	case "close":
		return "CLOSED"
	case "":
		if r.Closed {
			return "CLOSED"
		}
		return "-"
	}
	return strings.ToUpper(strings.ReplaceAll(r.State, "_", "-"))
}
