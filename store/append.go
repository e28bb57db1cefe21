package store

import (
	"errors"
	"math"
	"strconv"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
)

// appendCache maps a gathered series' identity to its labels and TSDB
// reference, so that a steady-state ingest allocates nothing per series and
// skips the TSDB's label hashing. Series missing from a gather get a
// staleness marker (like a Prometheus scrape) and are dropped from the
// cache, which therefore stays as large as the registry's current output.
type appendCache struct {
	m map[string]*cacheEntry
	// meta holds each family's type and help as last gathered (for
	// /api/v1/metadata); metaChanged says it differs from the published copy.
	meta        map[string]Metadata
	metaChanged bool
	gen         uint64
	key         []byte
	sb          labels.ScratchBuilder
}

type cacheEntry struct {
	ref  storage.SeriesRef
	lset labels.Labels
	gen  uint64
}

func newAppendCache() *appendCache {
	return &appendCache{m: map[string]*cacheEntry{}, meta: map[string]Metadata{}, sb: labels.NewScratchBuilder(8)}
}

// Separators that cannot occur in valid UTF-8 label names or values.
const (
	sepName  = '\xff'
	sepValue = '\xfe'
)

// appender is one ingest round over an appendCache.
type appender struct {
	c   *appendCache
	app storage.Appender
	t   int64
	res IngestResult
	err error
}

// add appends one float sample for the series name{lps..., extraName=extraValue}.
func (a *appender) add(name string, lps []*dto.LabelPair, extraName, extraValue string, v float64) {
	if a.err != nil {
		return
	}
	c := a.c
	c.key = append(c.key[:0], name...)
	for _, lp := range lps {
		c.key = append(c.key, sepName)
		c.key = append(c.key, lp.GetName()...)
		c.key = append(c.key, sepValue)
		c.key = append(c.key, lp.GetValue()...)
	}
	if extraName != "" {
		c.key = append(c.key, sepName)
		c.key = append(c.key, extraName...)
		c.key = append(c.key, sepValue)
		c.key = append(c.key, extraValue...)
	}
	e, ok := c.m[string(c.key)]
	if !ok {
		c.sb.Reset()
		c.sb.Add(model.MetricNameLabel, name)
		for _, lp := range lps {
			if lp.GetValue() != "" { // empty label == absent label in Prometheus
				c.sb.Add(lp.GetName(), lp.GetValue())
			}
		}
		if extraName != "" {
			c.sb.Add(extraName, extraValue)
		}
		c.sb.Sort()
		e = &cacheEntry{lset: c.sb.Labels()}
		c.m[string(c.key)] = e
	}
	if e.gen == c.gen {
		// The same series twice in one gather (a buggy collector): keep the first.
		return
	}
	e.gen = c.gen
	ref, err := a.app.Append(e.ref, e.lset, a.t, v)
	switch {
	case err == nil:
		e.ref = ref
		a.res.Series++
	case isSampleRejection(err):
		a.res.Rejected++
	default:
		a.err = err
	}
}

func isSampleRejection(err error) bool {
	return errors.Is(err, storage.ErrOutOfOrderSample) || errors.Is(err, storage.ErrDuplicateSampleForTimestamp) ||
		errors.Is(err, storage.ErrTooOldSample) || errors.Is(err, storage.ErrOutOfBounds)
}

// append writes every sample of mfs at time t (ms) through app and marks the
// series that disappeared since the last call as stale.
func (c *appendCache) append(app storage.Appender, mfs []*dto.MetricFamily, t int64) (IngestResult, error) {
	c.gen++
	a := &appender{c: c, app: app, t: t}
	for _, mf := range mfs {
		name := mf.GetName()
		c.noteMetadata(mf)
		for _, m := range mf.Metric {
			lps := m.Label
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				a.add(name, lps, "", "", m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				a.add(name, lps, "", "", m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				a.add(name, lps, "", "", m.GetUntyped().GetValue())
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				for _, q := range s.Quantile {
					a.add(name, lps, "quantile", formatFloat(q.GetQuantile()), q.GetValue())
				}
				a.add(name+"_sum", lps, "", "", s.GetSampleSum())
				a.add(name+"_count", lps, "", "", float64(s.GetSampleCount()))
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := m.GetHistogram()
				count := float64(h.GetSampleCount())
				if h.SampleCountFloat != nil {
					count = h.GetSampleCountFloat()
				}
				sawInf := false
				for _, b := range h.Bucket {
					ub := b.GetUpperBound()
					sawInf = sawInf || math.IsInf(ub, 1)
					v := float64(b.GetCumulativeCount())
					if b.CumulativeCountFloat != nil {
						v = b.GetCumulativeCountFloat()
					}
					a.add(name+"_bucket", lps, "le", formatFloat(ub), v)
				}
				if !sawInf {
					a.add(name+"_bucket", lps, "le", "+Inf", count)
				}
				a.add(name+"_sum", lps, "", "", h.GetSampleSum())
				a.add(name+"_count", lps, "", "", count)
			}
		}
	}
	if a.err != nil {
		return a.res, a.err
	}
	for k, e := range c.m {
		if e.gen == c.gen {
			continue
		}
		delete(c.m, k)
		if _, err := app.Append(e.ref, e.lset, t, math.Float64frombits(value.StaleNaN)); err == nil {
			a.res.Stale++
		} else if !isSampleRejection(err) {
			return a.res, err
		}
	}
	return a.res, nil
}

// formatFloat renders le/quantile values the way the text exposition format
// (and so a Prometheus scrape) does.
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func (c *appendCache) noteMetadata(mf *dto.MetricFamily) {
	typ := "unknown"
	switch mf.GetType() {
	case dto.MetricType_COUNTER:
		typ = "counter"
	case dto.MetricType_GAUGE:
		typ = "gauge"
	case dto.MetricType_SUMMARY:
		typ = "summary"
	case dto.MetricType_HISTOGRAM:
		typ = "histogram"
	case dto.MetricType_GAUGE_HISTOGRAM:
		typ = "gaugehistogram"
	}
	md := Metadata{Type: typ, Help: mf.GetHelp(), Unit: mf.GetUnit()}
	if old, ok := c.meta[mf.GetName()]; !ok || old != md {
		c.meta[mf.GetName()] = md
		c.metaChanged = true
	}
}
