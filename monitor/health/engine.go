package health

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/netsight/netsight/monitor"
)

// Engine judges the monitors' windows. It is safe for concurrent use:
// Evaluate from the agent's evaluation loop, Report from HTTP handlers.
type Engine struct {
	cfg Config

	mu     sync.Mutex
	states map[string]*state
	hosts  history
	base   baselines
	last   Report
}

// state is one monitor's verdict with its hysteresis.
type state struct {
	cur       MonitorVerdict
	pending   Verdict // degraded verdict waiting for EnterAfter
	pendingN  int
	healthyN  int // consecutive evaluations without the current verdict
	lastEval  time.Time
	startedAt time.Time
}

// New returns an engine with cfg (zero fields take DefaultConfig's).
func New(cfg Config) *Engine {
	d := DefaultConfig()
	if cfg.Thresholds == (Thresholds{}) {
		cfg.Thresholds = d.Thresholds
	}
	if cfg.EnterAfter <= 0 {
		cfg.EnterAfter = d.EnterAfter
	}
	if cfg.LeaveAfter <= 0 {
		cfg.LeaveAfter = d.LeaveAfter
	}
	if cfg.MaxTransitions <= 0 {
		cfg.MaxTransitions = d.MaxTransitions
	}
	if cfg.MaxBaselines <= 0 {
		cfg.MaxBaselines = d.MaxBaselines
	}
	e := &Engine{cfg: cfg, states: map[string]*state{}}
	e.base.max = cfg.MaxBaselines
	return e
}

// Evaluate judges one evaluation: the windows of every monitor (ending at
// now) and the host's reading at now. It returns the report and keeps it
// for Report. Monitors absent from windows are forgotten.
func (e *Engine) Evaluate(now time.Time, windows []monitor.Window, host Host) Report {
	e.mu.Lock()
	defer e.mu.Unlock()
	span := 10 * time.Second
	for _, w := range windows {
		if d := w.End.Sub(w.Start); d > 0 {
			span = d
			break
		}
	}
	if host.At.IsZero() {
		host.At = now
	}
	e.hosts.add(host, span)
	hd := e.hosts.delta()

	seen := map[string]bool{}
	rep := Report{At: now}
	for i := range windows {
		w := &windows[i]
		seen[w.Name] = true
		st := e.states[w.Name]
		if st == nil {
			st = &state{startedAt: now, cur: MonitorVerdict{Name: w.Name, Verdict: InsufficientData, Since: now}}
			st.cur.Transitions = []Transition{{At: now, Verdict: InsufficientData}}
			e.states[w.Name] = st
		}
		j := e.judge(w, hd, st.cur.Verdict, now)
		e.step(st, j, now)
		st.cur.WindowSeconds = w.End.Sub(w.Start).Seconds()
		rep.Monitors = append(rep.Monitors, st.cur.clone())
	}
	// Baselines learn after judging, so an inflated window never lowers
	// the bar it is judged against.
	for i := range windows {
		for _, r := range windows[i].Remotes {
			if g := signals(r.Stats); g.latency > 0 {
				e.base.observe(r.Addr, now, g.latency, e.cfg.Thresholds.BaselineSpan)
			}
		}
	}
	for name := range e.states {
		if !seen[name] {
			delete(e.states, name)
		}
	}
	sort.Slice(rep.Monitors, func(a, b int) bool { return rep.Monitors[a].Name < rep.Monitors[b].Name })
	vs := make([]Verdict, len(rep.Monitors))
	for i, m := range rep.Monitors {
		vs[i] = m.Verdict
	}
	rep.Verdict = Worst(vs)
	e.last = rep
	return rep
}

// Report returns the last evaluation's report.
func (e *Engine) Report() Report {
	e.mu.Lock()
	defer e.mu.Unlock()
	rep := e.last
	rep.Monitors = make([]MonitorVerdict, len(e.last.Monitors))
	for i, m := range e.last.Monitors {
		rep.Monitors[i] = m.clone()
	}
	if rep.Verdict == "" {
		rep.Verdict = InsufficientData
	}
	return rep
}

// step applies the hysteresis to one judgement.
func (e *Engine) step(st *state, j judgement, now time.Time) {
	raw := Healthy
	var primary Finding
	if len(j.fired) > 0 {
		primary = j.fired[0]
		raw = primary.Verdict
	} else if !j.active {
		raw = InsufficientData
	}
	cur := st.cur.Verdict
	switch {
	case raw == cur:
		st.pending, st.pendingN, st.healthyN = "", 0, 0
	case raw.Degraded():
		// A degraded verdict (new, or another than the current one) must
		// hold EnterAfter evaluations in a row.
		if st.pending == raw {
			st.pendingN++
		} else {
			st.pending, st.pendingN = raw, 1
		}
		if st.pendingN >= e.cfg.EnterAfter {
			e.transition(st, raw, now)
		} else if cur.Degraded() {
			st.healthyN++
		}
	default: // healthy or insufficient_data while something else is current
		st.pending, st.pendingN = "", 0
		st.healthyN++
		need := e.cfg.EnterAfter
		if cur.Degraded() {
			need = e.cfg.LeaveAfter
		}
		if cur == InsufficientData && raw == Healthy {
			need = 1 // data arrived: nothing to hold back
		}
		if st.healthyN >= need {
			e.transition(st, raw, now)
		}
	}
	// Refresh what is shown: the current verdict's finding when it still
	// fires (held verdicts are judged by their exit thresholds), else the
	// last words stay with the numbers of now.
	v := st.cur.Verdict
	st.cur.Findings = st.cur.Findings[:0]
	var shown *Finding
	for i := range j.fired {
		f := j.fired[i]
		if f.Verdict == v && shown == nil {
			shown = &j.fired[i]
			continue
		}
		st.cur.Findings = append(st.cur.Findings, f)
	}
	st.cur.Findings = append(st.cur.Findings, j.notes...)
	switch {
	case shown != nil:
		st.cur.Summary, st.cur.Scope, st.cur.Culprit, st.cur.Evidence = shown.Summary, shown.Scope, shown.Culprit, shown.Evidence
		st.cur.Confidence = confidence(*shown, st.cur.Since, now)
	case v.Degraded():
		// Held while its signal is below the exit threshold: keep the
		// culprit, say it is clearing.
		st.cur.Summary = "clearing (" + itoa(st.healthyN) + " of " + itoa(e.cfg.LeaveAfter) + " evaluations without it): " + trimClearing(st.cur.Summary)
		st.cur.Confidence = Low
	default:
		st.cur.Summary, st.cur.Scope, st.cur.Culprit, st.cur.Evidence = j.summary, "", "", j.evidence
		st.cur.Confidence = Medium
		if v == InsufficientData {
			st.cur.Confidence = Low
		} else if n, _ := j.evidence["remotes_active"].(int); n >= 2 {
			st.cur.Confidence = High
		}
		if v == Healthy && raw.Degraded() {
			st.cur.Summary = "healthy; " + string(raw) + " pending (" + itoa(st.pendingN) + " of " + itoa(e.cfg.EnterAfter) + "): " + primary.Summary
		}
	}
	if st.cur.Findings == nil {
		st.cur.Findings = []Finding{}
	}
	st.lastEval = now
}

func (e *Engine) transition(st *state, v Verdict, now time.Time) {
	st.cur.Verdict, st.cur.Since = v, now
	st.pending, st.pendingN, st.healthyN = "", 0, 0
	st.cur.Transitions = append(st.cur.Transitions, Transition{At: now, Verdict: v})
	if n := len(st.cur.Transitions) - e.cfg.MaxTransitions; n > 0 {
		st.cur.Transitions = append([]Transition(nil), st.cur.Transitions[n:]...)
	}
}

// confidence: high when the signal is at least twice its threshold, held
// for a while and rests on more than one remote (or a host counter);
// low when it rests on one remote only.
func confidence(f Finding, since, now time.Time) Confidence {
	switch {
	case f.remotes == 1 && (f.Verdict == RemoteDegraded || f.Verdict == RemoteApplication):
		return Low
	case f.strength >= 2 && now.Sub(since) >= time.Second:
		return High
	}
	return Medium
}

func (m MonitorVerdict) clone() MonitorVerdict {
	m.Findings = append([]Finding{}, m.Findings...)
	m.Transitions = append([]Transition{}, m.Transitions...)
	ev := make(Evidence, len(m.Evidence))
	for k, v := range m.Evidence {
		ev[k] = v
	}
	m.Evidence = ev
	return m
}

func itoa(n int) string { return strconv.Itoa(n) }

func trimClearing(s string) string {
	for strings.HasPrefix(s, "clearing (") {
		i := strings.Index(s, "): ")
		if i < 0 {
			break
		}
		s = s[i+3:]
	}
	return s
}
