package collectd

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"collectd.org/api"
	"collectd.org/format"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// DefaultExecInterval is collectd's default Interval, used when
// COLLECTD_INTERVAL is missing or unparsable.
const DefaultExecInterval = 10 * time.Second

// ParseInterval reads COLLECTD_INTERVAL: seconds as a decimal number,
// with a '.' or (in locales that use it, as collectd's Exec plugin does)
// a ',' as the decimal separator: "60", "60.000" and "60,000" are all 60s.
// Empty or invalid values give DefaultExecInterval and an error saying why.
func ParseInterval(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return DefaultExecInterval, fmt.Errorf("COLLECTD_INTERVAL is not set: using %s", DefaultExecInterval)
	}
	f, err := strconv.ParseFloat(strings.Replace(v, ",", ".", 1), 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return DefaultExecInterval, fmt.Errorf("COLLECTD_INTERVAL=%q is not a positive number of seconds: using %s", v, DefaultExecInterval)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// Hostname is COLLECTD_HOSTNAME, else the machine's hostname.
func Hostname() string {
	if h := os.Getenv("COLLECTD_HOSTNAME"); h != "" {
		return h
	}
	if h, err := os.Hostname(); err == nil {
		return h
	}
	return "localhost"
}

// WritePutval prints one PUTVAL line per sample gathered in mfs
// ("PUTVAL "host/plugin-instance/type-instance" interval=60.000 N:value"),
// sorted by identifier, skipping what collectd cannot take (NaN or ±Inf
// derives, summaries' quantiles are kept as gauges). It returns the number
// of lines.
func WritePutval(w io.Writer, mfs []*dto.MetricFamily, host string, interval time.Duration) (int, error) {
	type line struct {
		id api.Identifier
		v  api.Value
	}
	var lines []line
	add := func(name string, lps []*dto.LabelPair, extra []string, v float64) {
		b := labels.NewScratchBuilder(len(lps) + 2)
		b.Add(model.MetricNameLabel, name)
		for _, lp := range lps {
			b.Add(lp.GetName(), lp.GetValue())
		}
		for i := 0; i+1 < len(extra); i += 2 {
			b.Add(extra[i], extra[i+1])
		}
		b.Sort()
		id := Identify(b.Labels())
		if id.Kind == Derive && (math.IsNaN(v) || math.IsInf(v, 0)) {
			return
		}
		lines = append(lines, line{id.Identifier(host), id.Value(v)})
	}
	for _, mf := range mfs {
		name := mf.GetName()
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				add(name, m.GetLabel(), nil, m.GetCounter().GetValue())
			case m.Gauge != nil:
				add(name, m.GetLabel(), nil, m.GetGauge().GetValue())
			case m.Untyped != nil:
				add(name, m.GetLabel(), nil, m.GetUntyped().GetValue())
			case m.Histogram != nil:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					add(name+"_bucket", m.GetLabel(), []string{"le", strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)}, float64(b.GetCumulativeCount()))
				}
				add(name+"_sum", m.GetLabel(), nil, h.GetSampleSum())
				add(name+"_count", m.GetLabel(), nil, float64(h.GetSampleCount()))
			case m.Summary != nil:
				s := m.GetSummary()
				for _, q := range s.GetQuantile() {
					add(name, m.GetLabel(), []string{"quantile", strconv.FormatFloat(q.GetQuantile(), 'g', -1, 64)}, q.GetValue())
				}
				add(name+"_sum", m.GetLabel(), nil, s.GetSampleSum())
				add(name+"_count", m.GetLabel(), nil, float64(s.GetSampleCount()))
			}
		}
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].id.String() < lines[j].id.String() })
	p := format.NewPutval(w)
	for _, l := range lines {
		vl := api.ValueList{Identifier: l.id, Interval: interval, Values: []api.Value{l.v}}
		if err := p.Write(context.Background(), &vl); err != nil {
			return 0, err
		}
	}
	return len(lines), nil
}
