package otlp

import (
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"

	"github.com/netsight/netsight/export/delivery"
	"github.com/netsight/netsight/internal/buildinfo"
)

// Resource returns netsight's resource attributes.
func Resource() *resourcepb.Resource {
	host, _ := os.Hostname()
	return &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
		strAttr("service.name", "netsight"),
		strAttr("service.instance.id", host),
		strAttr("host.name", host),
		strAttr("service.version", buildinfo.Version),
	}}
}

func strAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// histKey identifies one histogram data point: base name, labels without
// le (as a string), timestamp.
type histKey struct {
	base, lset string
	t          int64
}

type histPoint struct {
	attrs   []*commonpb.KeyValue
	buckets map[float64]float64 // le -> cumulative count
	sum     float64
	count   float64
	has     int // bit 1: sum, bit 2: count, bit 4: buckets
}

// Encode builds the export request for b. Staleness markers become data
// points flagged "no recorded value".
func Encode(b *delivery.Batch, res *resourcepb.Resource) *colmetricspb.ExportMetricsServiceRequest {
	// Which bases have _bucket series in this batch: their _sum and _count
	// join the histogram.
	bases := map[string]bool{}
	for _, s := range b.Series {
		if n := s.Labels.Get(model.MetricNameLabel); strings.HasSuffix(n, "_bucket") && s.Labels.Has("le") {
			bases[strings.TrimSuffix(n, "_bucket")] = true
		}
	}
	metrics := map[string]*metricspb.Metric{}
	var order []string
	get := func(name string, mk func() *metricspb.Metric) *metricspb.Metric {
		m, ok := metrics[name]
		if !ok {
			m = mk()
			metrics[name] = m
			order = append(order, name)
		}
		return m
	}
	hists := map[histKey]*histPoint{}
	var histOrder []histKey
	for _, s := range b.Series {
		name := s.Labels.Get(model.MetricNameLabel)
		base, part := histPart(name, bases)
		if part != "" {
			le := s.Labels.Get("le")
			lset := labels.NewBuilder(s.Labels).Del(model.MetricNameLabel, "le").Labels()
			for _, p := range s.Samples {
				k := histKey{base, lset.String(), p.T}
				hp, ok := hists[k]
				if !ok {
					hp = &histPoint{attrs: attrs(lset), buckets: map[float64]float64{}}
					hists[k] = hp
					histOrder = append(histOrder, k)
				}
				switch part {
				case "bucket":
					ub, err := strconv.ParseFloat(le, 64)
					if err == nil {
						hp.buckets[ub] = p.V
						hp.has |= 4
					}
				case "sum":
					hp.sum, hp.has = p.V, hp.has|1
				case "count":
					hp.count, hp.has = p.V, hp.has|2
				}
			}
			continue
		}
		at := attrs(labels.NewBuilder(s.Labels).Del(model.MetricNameLabel).Labels())
		if isCounter(name) {
			m := get(name, func() *metricspb.Metric {
				return &metricspb.Metric{Name: name, Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
					AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE, IsMonotonic: true}}}
			})
			sum := m.GetSum()
			for _, p := range s.Samples {
				sum.DataPoints = append(sum.DataPoints, numberPoint(at, p))
			}
			continue
		}
		m := get(name, func() *metricspb.Metric {
			return &metricspb.Metric{Name: name, Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{}}}
		})
		g := m.GetGauge()
		for _, p := range s.Samples {
			g.DataPoints = append(g.DataPoints, numberPoint(at, p))
		}
	}
	for _, k := range histOrder {
		hp := hists[k]
		m := get(k.base, func() *metricspb.Metric {
			return &metricspb.Metric{Name: k.base, Data: &metricspb.Metric_Histogram{Histogram: &metricspb.Histogram{
				AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE}}}
		})
		h := m.GetHistogram()
		h.DataPoints = append(h.DataPoints, histogramPoint(k.t, hp))
	}
	out := make([]*metricspb.Metric, 0, len(order))
	for _, n := range order {
		out = append(out, metrics[n])
	}
	return &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource: res,
		ScopeMetrics: []*metricspb.ScopeMetrics{{
			Scope:   &commonpb.InstrumentationScope{Name: "github.com/netsight/netsight", Version: buildinfo.Version},
			Metrics: out,
		}},
	}}}
}

// histPart tells whether name is part of a histogram whose base has
// buckets in the batch: ("base", "bucket"|"sum"|"count") or ("", "").
func histPart(name string, bases map[string]bool) (string, string) {
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if b := strings.TrimSuffix(name, suf); b != name && bases[b] {
			return b, suf[1:]
		}
	}
	return "", ""
}

func isCounter(name string) bool {
	return strings.HasSuffix(name, "_total") || strings.HasSuffix(name, "_count") || strings.HasSuffix(name, "_sum")
}

func attrs(ls labels.Labels) []*commonpb.KeyValue {
	out := make([]*commonpb.KeyValue, 0, ls.Len())
	ls.Range(func(l labels.Label) { out = append(out, strAttr(l.Name, l.Value)) })
	return out
}

func numberPoint(at []*commonpb.KeyValue, p delivery.Sample) *metricspb.NumberDataPoint {
	dp := &metricspb.NumberDataPoint{Attributes: at, TimeUnixNano: uint64(p.T) * 1e6,
		Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: p.V}}
	if value.IsStaleNaN(p.V) {
		dp.Flags = uint32(metricspb.DataPointFlags_DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK)
		dp.Value = &metricspb.NumberDataPoint_AsDouble{AsDouble: 0}
	}
	return dp
}

// histogramPoint turns cumulative le buckets into OTLP's per-bucket counts
// with explicit bounds (the +Inf bucket is the last count).
func histogramPoint(t int64, hp *histPoint) *metricspb.HistogramDataPoint {
	bounds := make([]float64, 0, len(hp.buckets))
	for ub := range hp.buckets {
		if !math.IsInf(ub, 1) {
			bounds = append(bounds, ub)
		}
	}
	sort.Float64s(bounds)
	counts := make([]uint64, 0, len(bounds)+1)
	prev := 0.0
	for _, ub := range bounds {
		c := hp.buckets[ub]
		counts = append(counts, uint64(max(c-prev, 0)))
		prev = c
	}
	total := hp.count
	if inf, ok := hp.buckets[math.Inf(1)]; ok && hp.has&2 == 0 {
		total = inf
	}
	counts = append(counts, uint64(max(total-prev, 0)))
	dp := &metricspb.HistogramDataPoint{Attributes: hp.attrs, TimeUnixNano: uint64(t) * 1e6,
		Count: uint64(total), ExplicitBounds: bounds, BucketCounts: counts}
	if hp.has&1 != 0 {
		s := hp.sum
		dp.Sum = &s
	}
	if value.IsStaleNaN(hp.sum) || value.IsStaleNaN(hp.count) {
		dp.Flags = uint32(metricspb.DataPointFlags_DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK)
	}
	return dp
}
