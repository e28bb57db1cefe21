package health

import (
	"time"
)

// Verdict is one of a fixed set.
type Verdict string

// The verdicts. The degraded ones are listed in the order rules are tried:
// the first that fires is the primary verdict.
const (
	InsufficientData  Verdict = "insufficient_data"
	Healthy           Verdict = "healthy"
	CloudNICLimit     Verdict = "cloud_nic_limit"
	HostConntrack     Verdict = "host_conntrack"
	HostStack         Verdict = "host_stack"
	LocalApplication  Verdict = "local_application"
	RemoteApplication Verdict = "remote_application"
	PathDegraded      Verdict = "path_degraded"
	RemoteDegraded    Verdict = "remote_degraded"
)

// Verdicts is the fixed set, in the order the state-set metric lists it.
var Verdicts = []Verdict{InsufficientData, Healthy, CloudNICLimit, HostConntrack, HostStack,
	LocalApplication, RemoteApplication, PathDegraded, RemoteDegraded}

// Degraded reports whether v is one of the degraded verdicts.
func (v Verdict) Degraded() bool { return v != InsufficientData && v != Healthy && v != "" }

// Outside reports whether v places the trouble outside this host (the
// network health indicator: path, remote host or remote application).
func (v Verdict) Outside() bool {
	return v == PathDegraded || v == RemoteDegraded || v == RemoteApplication
}

// priority orders degraded verdicts (lower first).
func (v Verdict) priority() int {
	for i, d := range Verdicts {
		if d == v {
			return i
		}
	}
	return len(Verdicts)
}

// Worst is the overall verdict of a set: the first degraded one in rule
// order, else healthy when any monitor is healthy, else insufficient_data.
func Worst(vs []Verdict) Verdict {
	worst := InsufficientData
	for _, v := range vs {
		switch {
		case v.Degraded() && (!worst.Degraded() || v.priority() < worst.priority()):
			worst = v
		case v == Healthy && !worst.Degraded():
			worst = Healthy
		}
	}
	return worst
}

// Confidence of a verdict.
type Confidence string

// Confidence levels.
const (
	High   Confidence = "high"
	Medium Confidence = "medium"
	Low    Confidence = "low"
)

// Evidence is the numbers behind a verdict or finding (names in snake
// case, ratios as fractions, times in seconds).
type Evidence map[string]any

// Finding is one rule's conclusion.
type Finding struct {
	Verdict Verdict `json:"verdict"`
	Summary string  `json:"summary"`
	// Scope is where path_degraded applies: "zone:NAME", "category:NAME"
	// or "all".
	Scope string `json:"scope,omitempty"`
	// Culprit is the remote address, interface or listener named.
	Culprit  string   `json:"culprit,omitempty"`
	Evidence Evidence `json:"evidence,omitempty"`
	// strength is how far past its entry threshold the signal is (1 =
	// at the threshold), for the confidence.
	strength float64
	// remotes is how many active remotes the judgement rests on.
	remotes int
}

// Transition is one change of a monitor's verdict.
type Transition struct {
	At      time.Time `json:"at"`
	Verdict Verdict   `json:"verdict"`
}

// MonitorVerdict is one monitor's verdict as GET /api/v1/health shows it.
type MonitorVerdict struct {
	Name       string     `json:"name"`
	Verdict    Verdict    `json:"verdict"`
	Since      time.Time  `json:"since"`
	Confidence Confidence `json:"confidence"`
	Summary    string     `json:"summary"`
	Scope      string     `json:"scope,omitempty"`
	Culprit    string     `json:"culprit,omitempty"`
	Evidence   Evidence   `json:"evidence"`
	// Findings are the other rules that fired, and notes that explain
	// what was discounted (spurious retransmissions, smoothed RTT).
	Findings []Finding `json:"findings"`
	// Transitions are the last changes of the verdict, oldest first (at
	// most MaxTransitions), for the dashboard's timeline.
	Transitions []Transition `json:"transitions"`
	// WindowSeconds is the window the verdict judged.
	WindowSeconds float64 `json:"window_seconds"`
}

// Report is GET /api/v1/health.
type Report struct {
	// Verdict is the worst over the monitors (Worst).
	Verdict  Verdict          `json:"verdict"`
	At       time.Time        `json:"at"`
	Monitors []MonitorVerdict `json:"monitors"`
}

// Monitor returns the named monitor's verdict.
func (r Report) Monitor(name string) (MonitorVerdict, bool) {
	for _, m := range r.Monitors {
		if m.Name == name {
			return m, true
		}
	}
	return MonitorVerdict{}, false
}
