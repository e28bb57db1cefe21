package store

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/tsdb"
)

// Cost is what a query will evaluate, estimated from its syntax tree and
// the number of series each selector matches, before the engine runs it.
type Cost struct {
	// Steps of the outermost evaluation (1 for an instant query).
	Steps int64
	// MaxSubquerySteps is the most steps one subquery evaluates, and
	// Subquery that subquery's text.
	MaxSubquerySteps int64
	Subquery         string
	// Points is the most points one subquery materializes (its result
	// series times the steps that can hold data), an upper bound of what
	// the engine holds in memory for it.
	Points int64
	// Samples is the number of samples the evaluation touches: per
	// selector, series x steps x samples per step (1 for an instant
	// selector, range/interval+1 for a range selector).
	Samples int64
	// Series is the number of series the selectors match (summed).
	Series int64
}

// costEnv is what the estimator needs to know about the store.
type costEnv struct {
	// countSeries returns how many series match ms with samples in
	// [mint, maxt] (ms).
	countSeries func(ctx context.Context, mint, maxt int64, ms []*labels.Matcher) (int64, error)
	interval    time.Duration // ingest interval (samples per range window)
	lookback    time.Duration
	// subqueryStep is the step of a subquery written without one ([1h:]).
	subqueryStep func(rangeMillis int64) int64
	// dataMin, dataMax bound the store's samples (ms), so steps where no
	// data can exist do not count as points.
	dataMin, dataMax int64
}

// evalWindow is one evaluation grid: start, end and interval in ms
// (interval 0: one step).
type evalWindow struct{ start, end, interval int64 }

func (w evalWindow) steps() int64 {
	if w.interval <= 0 || w.end < w.start {
		return 1
	}
	return (w.end-w.start)/w.interval + 1
}

// stepsWithin counts the steps of w inside [lo, hi].
func (w evalWindow) stepsWithin(lo, hi int64) int64 {
	if w.interval <= 0 {
		if w.start < lo || w.start > hi {
			return 0
		}
		return 1
	}
	s, e := max(w.start, lo), min(w.end, hi)
	if e < s {
		return 0
	}
	// First grid point >= s.
	first := w.start + ceilDiv(s-w.start, w.interval)*w.interval
	if first > e {
		return 0
	}
	return (e-first)/w.interval + 1
}

func ceilDiv(a, b int64) int64 {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}

// errLimit is a query that exceeds a limit: a bad_data answer.
type errLimit struct{ msg string }

func (e *errLimit) Error() string { return e.msg }

// estimateCost walks expr evaluated over w and returns its cost, or an
// *errLimit as soon as a subquery exceeds maxSubquerySteps.
func estimateCost(ctx context.Context, expr parser.Expr, w evalWindow, env costEnv, maxSubquerySteps int64) (Cost, error) {
	e := &estimator{ctx: ctx, env: env, maxSteps: maxSubquerySteps}
	e.cost.Steps = w.steps()
	if _, err := e.walk(expr, w); err != nil {
		return e.cost, err
	}
	return e.cost, nil
}

type estimator struct {
	ctx      context.Context
	env      costEnv
	maxSteps int64
	cost     Cost
}

// walk returns an upper bound of the number of series node yields.
func (e *estimator) walk(node parser.Expr, w evalWindow) (int64, error) {
	switch n := node.(type) {
	case *parser.NumberLiteral, *parser.StringLiteral:
		return 1, nil
	case *parser.ParenExpr:
		return e.walk(n.Expr, w)
	case *parser.UnaryExpr:
		return e.walk(n.Expr, w)
	case *parser.StepInvariantExpr:
		return e.walk(n.Expr, w)
	case *parser.VectorSelector:
		return e.selector(n, w, 0)
	case *parser.MatrixSelector:
		vs, ok := n.VectorSelector.(*parser.VectorSelector)
		if !ok {
			return 0, fmt.Errorf("unexpected matrix selector operand %T", n.VectorSelector)
		}
		return e.selector(vs, w, n.Range)
	case *parser.SubqueryExpr:
		return e.subquery(n, w)
	case *parser.Call:
		return e.call(n, w)
	case *parser.AggregateExpr:
		return e.aggregate(n, w)
	case *parser.BinaryExpr:
		l, err := e.walk(n.LHS, w)
		if err != nil {
			return 0, err
		}
		r, err := e.walk(n.RHS, w)
		if err != nil {
			return 0, err
		}
		if n.Op == parser.LOR {
			return satAdd(l, r), nil
		}
		return max(l, r), nil
	default:
		return 0, fmt.Errorf("unexpected expression %T", node)
	}
}

func (e *estimator) selector(vs *parser.VectorSelector, w evalWindow, rng time.Duration) (int64, error) {
	off := vs.OriginalOffset.Milliseconds()
	start, end := w.start, w.end
	if vs.Timestamp != nil {
		start, end = *vs.Timestamp, *vs.Timestamp
	} else if vs.StartOrEnd == parser.START {
		end = start
	} else if vs.StartOrEnd == parser.END {
		start = end
	}
	back := rng.Milliseconds()
	if rng == 0 {
		back = e.env.lookback.Milliseconds()
	}
	n, err := e.env.countSeries(e.ctx, start-off-back, end-off, vs.LabelMatchers)
	if err != nil {
		return 0, err
	}
	perStep := int64(1)
	if rng > 0 && e.env.interval > 0 {
		perStep = rng.Milliseconds()/e.env.interval.Milliseconds() + 1
	}
	e.cost.Series = satAdd(e.cost.Series, n)
	e.cost.Samples = satAdd(e.cost.Samples, satMul(satMul(n, w.steps()), perStep))
	return n, nil
}

func (e *estimator) subquery(sq *parser.SubqueryExpr, w evalWindow) (int64, error) {
	rng := sq.Range.Milliseconds()
	step := sq.Step.Milliseconds()
	if step <= 0 && e.env.subqueryStep != nil {
		step = e.env.subqueryStep(rng)
	}
	if step <= 0 {
		step = time.Minute.Milliseconds()
	}
	off := sq.OriginalOffset.Milliseconds()
	start, end := w.start, w.end
	if sq.Timestamp != nil {
		start, end = *sq.Timestamp, *sq.Timestamp
	} else if sq.StartOrEnd == parser.START {
		end = start
	} else if sq.StartOrEnd == parser.END {
		start = end
	}
	// The engine's grid (promql subqueryEvaluationTimes): the parent's end
	// truncated to its last step, the start aligned to the subquery's step.
	if w.interval > 0 && sq.Timestamp == nil && sq.StartOrEnd == 0 {
		end = start + ((end-start)/w.interval)*w.interval
	}
	subStart := step * ((start - off - rng) / step)
	if subStart <= start-off-rng {
		subStart += step
	}
	sw := evalWindow{start: subStart, end: end - off, interval: step}
	steps := sw.steps()
	if steps > e.cost.MaxSubquerySteps {
		e.cost.MaxSubquerySteps, e.cost.Subquery = steps, sq.String()
	}
	if steps > e.maxSteps {
		return 0, &errLimit{fmt.Sprintf("subquery %s evaluates %d steps, more than the limit of %d (store.query.max_subquery_steps): use a coarser resolution, e.g. [%s:%s]",
			subqueryText(sq), steps, e.maxSteps, fmtDuration(sq.Range), suggestStep(sq.Range, e.maxSteps))}
	}
	n, err := e.walk(sq.Expr, sw)
	if err != nil {
		return 0, err
	}
	lo, hi := e.env.dataMin, e.env.dataMax+e.env.lookback.Milliseconds()
	if pts := satMul(n, sw.stepsWithin(lo, hi)); pts > e.cost.Points {
		e.cost.Points = pts
	}
	return n, nil
}

func (e *estimator) call(c *parser.Call, w evalWindow) (int64, error) {
	var n int64
	for _, a := range c.Args {
		k, err := e.walk(a, w)
		if err != nil {
			return 0, err
		}
		if t := a.Type(); t == parser.ValueTypeVector || t == parser.ValueTypeMatrix {
			n = max(n, k)
		}
	}
	switch c.Func.Name {
	case "scalar", "time", "vector", "absent", "absent_over_time", "pi":
		return 1, nil
	}
	if n == 0 {
		n = 1
	}
	return n, nil
}

func (e *estimator) aggregate(a *parser.AggregateExpr, w evalWindow) (int64, error) {
	if a.Param != nil {
		if _, err := e.walk(a.Param, w); err != nil {
			return 0, err
		}
	}
	n, err := e.walk(a.Expr, w)
	if err != nil {
		return 0, err
	}
	switch a.Op {
	case parser.TOPK, parser.BOTTOMK, parser.LIMITK:
		if k, ok := unparen(a.Param).(*parser.NumberLiteral); ok && k.Val >= 0 && k.Val < float64(n) {
			if a.Grouping == nil && !a.Without {
				return int64(k.Val), nil
			}
		}
		return n, nil
	case parser.COUNT_VALUES, parser.LIMIT_RATIO:
		return n, nil
	}
	if len(a.Grouping) == 0 && !a.Without {
		return 1, nil
	}
	return n, nil
}

func unparen(e parser.Expr) parser.Expr {
	for {
		p, ok := e.(*parser.ParenExpr)
		if !ok {
			return e
		}
		e = p.Expr
	}
}

func subqueryText(sq *parser.SubqueryExpr) string {
	s := sq.String()
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

// suggestStep is the smallest round step that keeps rng within maxSteps.
func suggestStep(rng time.Duration, maxSteps int64) string {
	for _, d := range []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour} {
		if int64(rng/d)+1 <= maxSteps {
			return fmtDuration(d)
		}
	}
	return fmtDuration(rng / time.Duration(maxSteps-1))
}

func fmtDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func satMul(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}

// indexSeriesCounter counts the series matching a selector from the index
// postings of the head and of each block overlapping [mint, maxt], without
// loading any labels or chunks. A series present in several blocks is
// counted once per block, so the count is the largest of the per-block
// counts: exact for stable series, an underestimate under heavy churn (the
// engine's own sample limit still applies at run time).
func indexSeriesCounter(db *tsdb.DB) func(ctx context.Context, mint, maxt int64, ms []*labels.Matcher) (int64, error) {
	count := func(ctx context.Context, ix tsdb.IndexReader, ms []*labels.Matcher) (int64, error) {
		defer ix.Close()
		p, err := tsdb.PostingsForMatchers(ctx, ix, ms...)
		if err != nil {
			return 0, err
		}
		var n int64
		for p.Next() {
			n++
			if n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return n, err
				}
			}
		}
		return n, p.Err()
	}
	return func(ctx context.Context, mint, maxt int64, ms []*labels.Matcher) (int64, error) {
		var most int64
		if h := db.Head(); h.NumSeries() > 0 && h.MaxTime() >= mint && h.MinTime() <= maxt {
			ix, err := h.Index()
			if err != nil {
				return 0, err
			}
			n, err := count(ctx, ix, ms)
			if err != nil {
				return 0, err
			}
			most = n
		}
		for _, b := range db.Blocks() {
			if b.MaxTime() < mint || b.MinTime() > maxt {
				continue
			}
			ix, err := b.Index()
			if err != nil {
				continue // being closed (compaction, retention)
			}
			n, err := count(ctx, ix, ms)
			if err != nil {
				return 0, err
			}
			most = max(most, n)
		}
		return most, nil
	}
}
