package nic

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gather runs one Update on the calling goroutine (so inside ns.Do it reads
// that namespace) and returns "name{labels}" -> value.
func gatherErr(c interface {
	Update(context.Context, chan<- prometheus.Metric) error
}) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch := make(chan prometheus.Metric, 1<<14)
	err := c.Update(ctx, ch)
	close(ch)
	out := map[string]float64{}
	for m := range ch {
		k, v := metricKey(m)
		out[k] = v
	}
	return out, err
}

func metricKey(m prometheus.Metric) (string, float64) {
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		panic(err)
	}
	name := m.Desc().String()
	// Desc.String: Desc{fqName: "x", help: ...}
	if i := strings.Index(name, `fqName: "`); i >= 0 {
		name = name[i+9:]
		name = name[:strings.Index(name, `"`)]
	}
	var labels []string
	for _, l := range pb.GetLabel() {
		labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	sort.Strings(labels)
	key := name
	if len(labels) > 0 {
		key += "{" + strings.Join(labels, ",") + "}"
	}
	var v float64
	switch {
	case pb.Gauge != nil:
		v = pb.GetGauge().GetValue()
	case pb.Counter != nil:
		v = pb.GetCounter().GetValue()
	case pb.Untyped != nil:
		v = pb.GetUntyped().GetValue()
	}
	return key, v
}
