package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/timestamp"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
	"golang.org/x/sync/semaphore"
)

// Error types of the Prometheus HTTP API ("errorType" in error responses).
const (
	ErrBadData     = "bad_data"
	ErrExecution   = "execution"
	ErrTimeout     = "timeout"
	ErrCanceled    = "canceled"
	ErrInternal    = "internal"
	ErrUnavailable = "unavailable"
	ErrNotFound    = "not_found"
)

// maxPointsPerSeries is Prometheus' limit on range query resolution.
const maxPointsPerSeries = 11000

// BuildInfo is served at /api/v1/status/buildinfo (Grafana reads it to
// detect the data source's flavour and version).
type BuildInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	Branch    string `json:"branch"`
	BuildUser string `json:"buildUser"`
	BuildDate string `json:"buildDate"`
	GoVersion string `json:"goVersion"`
}

// API serves the Prometheus-compatible HTTP query API over a Store.
type API struct {
	queryable storage.Queryable
	engine    *promql.Engine
	parser    parser.Parser
	buildInfo BuildInfo
	metadata  func() map[string][]Metadata
	logger    *slog.Logger
	now       func() time.Time

	limits     Limits
	heavy      *lane
	light      *lane
	respBudget *semaphore.Weighted
	budgetSize int64
	costEnv    func() costEnv
	m          *metrics
}

// Metadata is one entry of /api/v1/metadata.
type Metadata struct {
	Type string `json:"type"`
	Help string `json:"help"`
	Unit string `json:"unit"`
}

// NewAPI builds the API with the store's query limits (Options.Query): each
// query's cost is estimated before it runs; cheap ones take the light lane,
// the others the heavy lane (see Limits).
func NewAPI(s *Store, bi BuildInfo, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := s.opts.Query
	l.setDefaults()
	a := &API{
		queryable:  s.Queryable(),
		engine:     s.Engine(),
		parser:     parser.NewParser(parser.Options{}),
		buildInfo:  bi,
		metadata:   s.Metadata,
		logger:     logger,
		now:        time.Now,
		limits:     l,
		heavy:      newLane("heavy", l.MaxConcurrent, l.MaxQueued, l.QueueTimeout),
		light:      newLane("light", defaultLightSlots(), 4*defaultLightSlots(), l.QueueTimeout),
		budgetSize: responseBudgetFactor * l.MaxResponseBytes,
		m:          s.m,
	}
	a.respBudget = semaphore.NewWeighted(a.budgetSize)
	count := indexSeriesCounter(s.DB())
	a.costEnv = func() costEnv {
		mint := s.MinTime()
		return costEnv{
			countSeries:  count,
			interval:     s.opts.Interval,
			lookback:     s.opts.LookbackDelta,
			subqueryStep: defaultSubqueryStep,
			dataMin:      mint,
			dataMax:      s.opts.Now().UnixMilli(),
		}
	}
	return a
}

// Register adds the routes through handle (e.g. web.Server.Handle).
func (a *API) Register(handle func(pattern string, h http.Handler)) {
	for path, f := range map[string]apiFunc{
		"/api/v1/query":       a.query,
		"/api/v1/query_range": a.queryRange,
		"/api/v1/series":      a.series,
		"/api/v1/labels":      a.labelNames,
		// The store keeps no exemplars: like a Prometheus without exemplar
		// storage the answer is an empty list (Grafana asks when its
		// "Exemplars" toggle is on).
		"/api/v1/query_exemplars": a.queryExemplars,
	} {
		handle("GET "+path, a.wrap(f))
		handle("POST "+path, a.wrap(f))
	}
	handle("GET /api/v1/label/{name}/values", a.wrap(a.labelValues))
	handle("GET /api/v1/metadata", a.wrap(a.serveMetadata))
	handle("GET /api/v1/status/buildinfo", a.wrap(func(*http.Request) apiResult { return apiResult{data: a.buildInfo} }))
}

type apiError struct {
	typ string
	err error
}

type apiResult struct {
	data any
	// body is a pre-encoded answer up to and including its data (query
	// results: encoded once, in place, without a copy); respond appends the
	// rest.
	body     []byte
	done     func() // called once the answer is written (releases its budget)
	err      *apiError
	warnings annotations.Annotations
	query    string
}

type apiFunc func(r *http.Request) apiResult

func badData(err error, param string) apiResult {
	if param != "" {
		err = fmt.Errorf("invalid parameter %q: %w", param, err)
	}
	return apiResult{err: &apiError{ErrBadData, err}}
}

func (a *API) wrap(f apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			a.respondError(w, &apiError{ErrBadData, fmt.Errorf("error parsing form values: %w", err)})
			return
		}
		res := f(r)
		if res.done != nil {
			defer res.done()
		}
		if res.err != nil {
			a.respondError(w, res.err)
			return
		}
		a.respond(gzipWriter(w, r), res)
	})
}

const successPrefix = `{"status":"success","data":`

func (a *API) respond(w http.ResponseWriter, res apiResult) {
	warn, info := res.warnings.AsStrings(res.query, 10, 10)
	b := res.body // query results are encoded in place
	if b == nil {
		b = append(make([]byte, 0, 256), successPrefix...)
		d, err := json.Marshal(res.data)
		if err != nil {
			a.respondError(w, &apiError{ErrInternal, fmt.Errorf("encode response: %w", err)})
			return
		}
		b = append(b, d...)
	}
	for _, l := range []struct {
		key  string
		msgs []string
	}{{"warnings", warn}, {"infos", info}} {
		if len(l.msgs) > 0 {
			d, _ := json.Marshal(l.msgs)
			b = append(b, `,"`+l.key+`":`...)
			b = append(b, d...)
		}
	}
	b = append(b, '}')
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// gzipWriter compresses large responses for clients that accept gzip (a 1 h
// range over thousands of series is megabytes of JSON; Grafana and browsers
// send Accept-Encoding: gzip).
func gzipWriter(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		return w
	}
	return &gzResponse{ResponseWriter: w}
}

type gzResponse struct {
	http.ResponseWriter
	code int
}

func (g *gzResponse) WriteHeader(code int) { g.code = code }

// Write is called once with the whole body (see respond).
func (g *gzResponse) Write(b []byte) (int, error) {
	if g.code == 0 {
		g.code = http.StatusOK
	}
	h := g.ResponseWriter.Header()
	h.Add("Vary", "Accept-Encoding")
	if len(b) < 1024 {
		g.ResponseWriter.WriteHeader(g.code)
		return g.ResponseWriter.Write(b)
	}
	h.Set("Content-Encoding", "gzip")
	h.Del("Content-Length")
	g.ResponseWriter.WriteHeader(g.code)
	zw, _ := gzip.NewWriterLevel(g.ResponseWriter, gzip.BestSpeed)
	if _, err := zw.Write(b); err != nil {
		return 0, err
	}
	return len(b), zw.Close()
}

func (a *API) respondError(w http.ResponseWriter, e *apiError) {
	b, _ := json.Marshal(struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}{"error", e.typ, e.err.Error()})
	code := http.StatusInternalServerError
	switch e.typ {
	case ErrBadData:
		code = http.StatusBadRequest
	case ErrExecution:
		code = http.StatusUnprocessableEntity
	case ErrCanceled:
		code = 499
	case ErrTimeout, ErrUnavailable:
		code = http.StatusServiceUnavailable
	case ErrNotFound:
		code = http.StatusNotFound
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// queryCtx is the evaluation's context: the request's (so a client that
// goes away cancels its query) with the timeout parameter, at most
// store.query.timeout.
func (a *API) queryCtx(r *http.Request) (context.Context, context.CancelFunc, *apiError) {
	ctx := r.Context()
	limit := a.limits.Timeout
	if s := r.FormValue("timeout"); s != "" {
		d, err := parseDuration(s)
		if err != nil {
			return nil, nil, &apiError{ErrBadData, fmt.Errorf("invalid parameter %q: %w", "timeout", err)}
		}
		if d <= 0 {
			return nil, nil, &apiError{ErrBadData, fmt.Errorf("invalid parameter %q: timeout must be positive, got %s", "timeout", d)}
		}
		limit = min(limit, d)
	}
	c, cancel := context.WithTimeout(ctx, limit)
	return c, cancel, nil
}

func (a *API) queryOpts(r *http.Request) (promql.QueryOpts, error) {
	var lookback time.Duration
	if s := r.FormValue("lookback_delta"); s != "" {
		d, err := parseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("error parsing lookback delta duration: %w", err)
		}
		lookback = d
	}
	return promql.NewPrometheusQueryOpts(r.FormValue("stats") == "all", lookback, nil), nil
}

func (a *API) query(r *http.Request) apiResult {
	ts, err := parseTimeParam(r, "time", a.now())
	if err != nil {
		return badData(err, "time")
	}
	w := evalWindow{start: ts.UnixMilli(), end: ts.UnixMilli()}
	return a.exec(r, w, func(ctx context.Context, opts promql.QueryOpts) (promql.Query, error) {
		return a.engine.NewInstantQuery(ctx, a.queryable, opts, r.FormValue("query"), ts)
	})
}

func (a *API) queryRange(r *http.Request) apiResult {
	start, err := parseTime(r.FormValue("start"))
	if err != nil {
		return badData(err, "start")
	}
	end, err := parseTime(r.FormValue("end"))
	if err != nil {
		return badData(err, "end")
	}
	if end.Before(start) {
		return badData(errors.New("end timestamp must not be before start time"), "end")
	}
	step, err := parseDuration(r.FormValue("step"))
	if err != nil {
		return badData(err, "step")
	}
	if step <= 0 {
		return badData(errors.New("zero or negative query resolution step widths are not accepted. Try a positive integer"), "step")
	}
	if end.Sub(start)/step > maxPointsPerSeries {
		return apiResult{err: &apiError{ErrBadData, errors.New("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")}}
	}
	w := evalWindow{start: start.UnixMilli(), end: end.UnixMilli(), interval: step.Milliseconds()}
	return a.exec(r, w, func(ctx context.Context, opts promql.QueryOpts) (promql.Query, error) {
		return a.engine.NewRangeQuery(ctx, a.queryable, opts, r.FormValue("query"), start, end, step)
	})
}

func (a *API) exec(r *http.Request, w evalWindow, build func(context.Context, promql.QueryOpts) (promql.Query, error)) apiResult {
	ctx, cancel, aerr := a.queryCtx(r)
	if aerr != nil {
		return apiResult{err: aerr}
	}
	defer cancel()
	opts, err := a.queryOpts(r)
	if err != nil {
		return apiResult{err: &apiError{ErrBadData, err}}
	}
	qs := r.FormValue("query")
	expr, err := a.parser.ParseExpr(qs)
	if err != nil {
		return badData(err, "query")
	}
	// Estimate before anything is evaluated: reject what exceeds a limit,
	// pick the lane for the rest.
	cost, err := estimateCost(ctx, expr, w, a.costEnv(), int64(a.limits.MaxSubquerySteps))
	if err != nil {
		var el *errLimit
		if errors.As(err, &el) {
			a.reject("max_subquery_steps")
			return apiResult{err: &apiError{ErrBadData, err}}
		}
		return apiResult{err: toAPIError(fmt.Errorf("estimate query cost: %w", err))}
	}
	if cost.Points > int64(a.limits.MaxSamples) {
		a.reject("max_samples")
		return apiResult{err: &apiError{ErrBadData, fmt.Errorf(
			"subquery %s would hold about %d samples in memory, more than the limit of %d (store.query.max_samples): use a coarser resolution or a shorter range, or select fewer series",
			cost.Subquery, cost.Points, a.limits.MaxSamples)}}
	}
	ln := a.heavy
	if cost.Samples <= LightMaxCost {
		ln = a.light
	}
	release, err := ln.acquire(r.Context())
	if err != nil {
		switch {
		case errors.Is(err, errLaneFull):
			a.reject("queue_full")
			return apiResult{err: &apiError{ErrUnavailable, err}}
		case errors.Is(err, errQueueTimeout):
			a.reject("queue_timeout")
			return apiResult{err: &apiError{ErrUnavailable, err}}
		}
		return apiResult{err: toAPIError(err)}
	}
	slot := a.running(ln.name)
	defer func() {
		if release != nil {
			release()
			slot()
		}
	}()
	qry, err := build(ctx, opts)
	if err != nil {
		var (
			eqt promql.ErrQueryTimeout
			eqc promql.ErrQueryCanceled
		)
		if errors.As(err, &eqt) || errors.As(err, &eqc) {
			return apiResult{err: toAPIError(err)}
		}
		return badData(err, "query")
	}
	defer qry.Close()
	res := qry.Exec(ctx)
	if res.Err != nil {
		return apiResult{err: toAPIError(res.Err), warnings: res.Warnings, query: qs}
	}
	if n := minEncodedSize(res.Value); n > a.limits.MaxResponseBytes {
		a.reject("max_response_bytes")
		return apiResult{err: a.tooLarge(n, true)}
	}
	limit := len(successPrefix) + int(a.limits.MaxResponseBytes)
	body, err := appendQueryData(append(make([]byte, 0, min(encodedSizeHint(res.Value), limit+1024)), successPrefix...), res.Value, limit)
	if tl := (*errTooLarge)(nil); errors.As(err, &tl) {
		a.reject("max_response_bytes")
		return apiResult{err: a.tooLarge(int64(tl.n-len(successPrefix)), true)}
	}
	if err != nil {
		return apiResult{err: &apiError{ErrInternal, err}}
	}
	if n := int64(len(body) - len(successPrefix)); n > a.limits.MaxResponseBytes {
		a.reject("max_response_bytes")
		return apiResult{err: a.tooLarge(n, false)}
	}
	// The result is encoded: free the slot before the (possibly slow)
	// write. The answer's bytes count against the write budget until sent.
	release()
	slot()
	release = nil
	n := int64(cap(body))
	if !a.respBudget.TryAcquire(n) {
		a.reject("response_budget")
		return apiResult{err: &apiError{ErrUnavailable, fmt.Errorf(
			"answers being sent already hold %d MiB (3 x store.query.max_response_bytes): try again later", a.budgetSize>>20)}}
	}
	return apiResult{body: body, warnings: res.Warnings, query: qs, done: func() { a.respBudget.Release(n) }}
}

func (a *API) tooLarge(n int64, atLeast bool) *apiError {
	q := ""
	if atLeast {
		q = "at least "
	}
	return &apiError{ErrExecution, fmt.Errorf(
		"the answer would be %s%d bytes, more than the limit of %d (store.query.max_response_bytes): select fewer series or use a larger step",
		q, n, a.limits.MaxResponseBytes)}
}

// minEncodedSize is a lower bound of the JSON size of v (each float point
// is at least [t,"v"], 8 bytes), so a result far over the response cap is
// refused without encoding it.
func minEncodedSize(v parser.Value) int64 {
	var n int64
	switch v := v.(type) {
	case promql.Matrix:
		for _, s := range v {
			n += int64(8*len(s.Floats) + 16*len(s.Histograms) + 12)
		}
	case promql.Vector:
		n = int64(20 * len(v))
	}
	return n
}

// encodedSizeHint is the usual JSON size of v: ~24 bytes per float point
// ([1796062468.009,"1234.5"]) and ~128 per series for its labels.
func encodedSizeHint(v parser.Value) int {
	n := 1024
	switch v := v.(type) {
	case promql.Matrix:
		for _, s := range v {
			n += 24*len(s.Floats) + 128
		}
	case promql.Vector:
		n += 160 * len(v)
	}
	return n
}

func (a *API) reject(reason string) {
	if a.m != nil {
		a.m.queryRejected.WithLabelValues(reason).Inc()
	}
}

func (a *API) running(laneName string) func() {
	if a.m == nil {
		return func() {}
	}
	g := a.m.queryRunning.WithLabelValues(laneName)
	g.Inc()
	return g.Dec
}

func toAPIError(err error) *apiError {
	var (
		eqc promql.ErrQueryCanceled
		eqt promql.ErrQueryTimeout
		es  promql.ErrStorage
	)
	switch {
	case errors.As(err, &eqc), errors.Is(err, context.Canceled):
		return &apiError{ErrCanceled, err}
	case errors.As(err, &eqt), errors.Is(err, context.DeadlineExceeded):
		return &apiError{ErrTimeout, err}
	case errors.As(err, &es):
		return &apiError{ErrInternal, err}
	}
	return &apiError{ErrExecution, err}
}

// ---- metadata endpoints ----

var (
	minTime = time.Unix(math.MinInt64/1000+62135596801, 0).UTC()
	maxTime = time.Unix(math.MaxInt64/1000-62135596801, 999999999).UTC()
)

func (a *API) matchers(r *http.Request) ([][]*labels.Matcher, error) {
	sets, err := a.parser.ParseMetricSelectors(r.Form["match[]"])
	if err != nil {
		return nil, err
	}
outer:
	for _, ms := range sets {
		for _, m := range ms {
			if m != nil && !m.Matches("") {
				continue outer
			}
		}
		return nil, errors.New("match[] must contain at least one non-empty matcher")
	}
	return sets, nil
}

type rangeParams struct {
	start, end time.Time
	limit      int
	sets       [][]*labels.Matcher
}

func (a *API) rangeParams(r *http.Request) (rangeParams, apiResult, bool) {
	var p rangeParams
	var err error
	if p.limit, err = parseLimit(r.FormValue("limit")); err != nil {
		return p, badData(err, "limit"), false
	}
	if p.start, err = parseTimeParam(r, "start", minTime); err != nil {
		return p, badData(err, "start"), false
	}
	if p.end, err = parseTimeParam(r, "end", maxTime); err != nil {
		return p, badData(err, "end"), false
	}
	if p.sets, err = a.matchers(r); err != nil {
		return p, badData(err, "match[]"), false
	}
	return p, apiResult{}, true
}

func (a *API) labelNames(r *http.Request) apiResult {
	p, res, ok := a.rangeParams(r)
	if !ok {
		return res
	}
	return a.collectStrings(r, p, func(ctx context.Context, q storage.Querier, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelNames(ctx, &storage.LabelHints{}, ms...)
	})
}

func (a *API) labelValues(r *http.Request) apiResult {
	name := r.PathValue("name")
	if strings.HasPrefix(name, "U__") {
		name = model.UnescapeName(name, model.ValueEncodingEscaping)
	}
	if !model.UTF8Validation.IsValidLabelName(name) {
		return apiResult{err: &apiError{ErrBadData, fmt.Errorf("invalid label name: %q", name)}}
	}
	p, res, ok := a.rangeParams(r)
	if !ok {
		return res
	}
	return a.collectStrings(r, p, func(ctx context.Context, q storage.Querier, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelValues(ctx, name, &storage.LabelHints{}, ms...)
	})
}

func (a *API) collectStrings(r *http.Request, p rangeParams,
	f func(context.Context, storage.Querier, []*labels.Matcher) ([]string, annotations.Annotations, error)) apiResult {
	q, err := a.queryable.Querier(timestamp.FromTime(p.start), timestamp.FromTime(p.end))
	if err != nil {
		return apiResult{err: toAPIError(err)}
	}
	defer q.Close()
	sets := p.sets
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{nil}
	}
	seen := map[string]struct{}{}
	var warnings annotations.Annotations
	for _, ms := range sets {
		vals, ws, err := f(r.Context(), q, ms)
		if err != nil {
			return apiResult{err: &apiError{ErrExecution, err}}
		}
		warnings.Merge(ws)
		for _, v := range vals {
			seen[v] = struct{}{}
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	if p.limit > 0 && len(out) > p.limit {
		out = out[:p.limit]
		warnings = warnings.Add(errors.New("results truncated due to limit"))
	}
	return apiResult{data: out, warnings: warnings}
}

func (a *API) series(r *http.Request) apiResult {
	if len(r.Form["match[]"]) == 0 {
		return apiResult{err: &apiError{ErrBadData, errors.New("no match[] parameter provided")}}
	}
	p, res, ok := a.rangeParams(r)
	if !ok {
		return res
	}
	q, err := a.queryable.Querier(timestamp.FromTime(p.start), timestamp.FromTime(p.end))
	if err != nil {
		return apiResult{err: toAPIError(err)}
	}
	defer q.Close()
	hints := &storage.SelectHints{Start: timestamp.FromTime(p.start), End: timestamp.FromTime(p.end), Func: "series"}
	var set storage.SeriesSet
	if len(p.sets) > 1 {
		var sets []storage.SeriesSet
		for _, ms := range p.sets {
			sets = append(sets, q.Select(r.Context(), true, hints, ms...))
		}
		set = storage.NewMergeSeriesSet(sets, 0, storage.ChainedSeriesMerge)
	} else {
		set = q.Select(r.Context(), false, hints, p.sets[0]...)
	}
	out := []labels.Labels{}
	warnings := set.Warnings()
	for set.Next() {
		out = append(out, set.At().Labels())
		if p.limit > 0 && len(out) > p.limit {
			out = out[:p.limit]
			warnings = warnings.Add(errors.New("results truncated due to limit"))
			break
		}
	}
	if err := set.Err(); err != nil {
		return apiResult{err: toAPIError(err)}
	}
	return apiResult{data: out, warnings: warnings}
}

func (a *API) queryExemplars(r *http.Request) apiResult {
	start, err := parseTimeParam(r, "start", minTime)
	if err != nil {
		return badData(err, "start")
	}
	end, err := parseTimeParam(r, "end", maxTime)
	if err != nil {
		return badData(err, "end")
	}
	if end.Before(start) {
		return apiResult{err: &apiError{ErrBadData, errors.New("end timestamp must not be before start timestamp")}}
	}
	if _, err := a.parser.ParseExpr(r.FormValue("query")); err != nil {
		return apiResult{err: &apiError{ErrBadData, err}}
	}
	return apiResult{data: []struct{}{}}
}

func (a *API) serveMetadata(r *http.Request) apiResult {
	limit, err := parseLimit(r.FormValue("limit"))
	if err != nil {
		return badData(err, "limit")
	}
	md := a.metadata()
	if m := r.FormValue("metric"); m != "" {
		out := map[string][]Metadata{}
		if v, ok := md[m]; ok {
			out[m] = v
		}
		return apiResult{data: out}
	}
	if limit > 0 && len(md) > limit {
		names := make([]string, 0, len(md))
		for n := range md {
			names = append(names, n)
		}
		slices.Sort(names)
		out := make(map[string][]Metadata, limit)
		for _, n := range names[:limit] {
			out[n] = md[n]
		}
		md = out
	}
	return apiResult{data: md}
}

// ---- parameter parsing (same rules as Prometheus) ----

func parseLimit(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, errors.New("limit must be non-negative")
	}
	return n, nil
}

func parseTimeParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.FormValue(name)
	if v == "" {
		return def, nil
	}
	t, err := parseTime(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid time value for '%s': %w", name, err)
	}
	return t, nil
}

func parseTime(s string) (time.Time, error) {
	if t, err := strconv.ParseFloat(s, 64); err == nil {
		sec, ns := math.Modf(t)
		ns = math.Round(ns*1000) / 1000
		return time.Unix(int64(sec), int64(ns*float64(time.Second))).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	switch s {
	case minTime.Format(time.RFC3339Nano):
		return minTime, nil
	case maxTime.Format(time.RFC3339Nano):
		return maxTime, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

func parseDuration(s string) (time.Duration, error) {
	if d, err := strconv.ParseFloat(s, 64); err == nil {
		ts := d * float64(time.Second)
		if math.IsNaN(ts) || ts >= float64(math.MaxInt64) || ts < float64(math.MinInt64) {
			return 0, fmt.Errorf("cannot parse %q to a valid duration. It overflows int64", s)
		}
		return time.Duration(ts), nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
}
