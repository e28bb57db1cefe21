package metrictest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/netsight/netsight/collector"
)

// UpdateTimeout bounds every Update these helpers run, on top of the
// caller's ctx, so that a stuck collector fails a test instead of hanging it.
const UpdateTimeout = 30 * time.Second

// chanSize is the buffer of the channel Gather hands to Update: Update runs
// synchronously, so every metric of one Update must fit.
const chanSize = 1 << 14

// Gather runs one Update of c on the calling goroutine (so that inside
// testlab's ns.Do it reads that namespace) and returns "name{labels}" ->
// value for every metric sent, as Key spells them. The error is Update's,
// joined with any metric that fails to encode. A metric sent twice under the
// same key keeps the last value.
func Gather(ctx context.Context, c collector.Collector) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, UpdateTimeout)
	defer cancel()
	ch := make(chan prometheus.Metric, chanSize)
	err := c.Update(ctx, ch)
	close(ch)
	out := map[string]float64{}
	for m := range ch {
		k, v, kerr := key(m)
		if kerr != nil {
			err = errors.Join(err, kerr)
			continue
		}
		out[k] = v
	}
	return out, err
}

// MustGather is Gather with context.Background() that fails tb on any
// error.
func MustGather(tb testing.TB, c collector.Collector) map[string]float64 {
	tb.Helper()
	m, err := Gather(context.Background(), c)
	if err != nil {
		tb.Fatalf("metrictest: update: %v", err)
	}
	return m
}

// Key returns m as `name{l1="v1",l2="v2"}` (labels sorted by name, no braces
// without labels) and its value: a gauge's, counter's or untyped metric's
// value, and the sample count of a histogram or summary. It panics if m
// cannot be encoded (a bug in the collector under test).
func Key(m prometheus.Metric) (string, float64) {
	k, v, err := key(m)
	if err != nil {
		panic(err)
	}
	return k, v
}

func key(m prometheus.Metric) (string, float64, error) {
	name, err := fqName(m.Desc())
	if err != nil {
		return "", 0, err
	}
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		return "", 0, fmt.Errorf("write %s: %w", name, err)
	}
	labels := make([]string, 0, len(pb.GetLabel()))
	for _, l := range pb.GetLabel() {
		labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	sort.Strings(labels)
	k := name
	if len(labels) > 0 {
		k += "{" + strings.Join(labels, ",") + "}"
	}
	var v float64
	switch {
	case pb.Gauge != nil:
		v = pb.GetGauge().GetValue()
	case pb.Counter != nil:
		v = pb.GetCounter().GetValue()
	case pb.Untyped != nil:
		v = pb.GetUntyped().GetValue()
	case pb.Histogram != nil:
		v = float64(pb.GetHistogram().GetSampleCount())
	case pb.Summary != nil:
		v = float64(pb.GetSummary().GetSampleCount())
	}
	return k, v, nil
}

// fqName reads the metric name out of Desc.String (`Desc{fqName: "x", ...}`):
// client_golang has no accessor for it.
func fqName(d *prometheus.Desc) (string, error) {
	if err := d.Err(); err != nil {
		return "", fmt.Errorf("invalid desc %s: %w", d, err)
	}
	s := d.String()
	const marker = "fqName: "
	i := strings.Index(s, marker)
	if i < 0 {
		return "", fmt.Errorf("no fqName in %s", s)
	}
	q, err := strconv.QuotedPrefix(s[i+len(marker):])
	if err != nil {
		return "", fmt.Errorf("fqName in %s: %w", s, err)
	}
	return strconv.Unquote(q)
}

// AsPrometheus adapts c to a prometheus.Collector the way the agent
// registers collectors: unchecked (Describe sends nothing), each Collect one
// Update bounded by UpdateTimeout. Collects are serialised; Update's error
// is dropped (the metrics sent before it still count).
func AsPrometheus(c collector.Collector) prometheus.Collector {
	return &adapter{c: c}
}

type adapter struct {
	mu sync.Mutex
	c  collector.Collector
}

func (*adapter) Describe(chan<- *prometheus.Desc) {}

func (a *adapter) Collect(ch chan<- prometheus.Metric) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), UpdateTimeout)
	defer cancel()
	_ = a.c.Update(ctx, ch)
}

// Lint registers c (through AsPrometheus) in a pedantic registry, gathers it
// once with testutil.GatherAndLint and fails tb once per promlint problem. A
// gathering error (inconsistent or invalid metrics) is fatal. It returns the
// gathered families, for further checks such as `promtool check metrics`.
func Lint(tb testing.TB, c collector.Collector) []*dto.MetricFamily {
	tb.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(AsPrometheus(c))
	var mfs []*dto.MetricFamily
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		var err error
		mfs, err = reg.Gather()
		return mfs, err
	})
	problems, err := testutil.GatherAndLint(g)
	if err != nil {
		tb.Fatalf("metrictest: %v", err)
	}
	for _, p := range problems {
		tb.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	return mfs
}
