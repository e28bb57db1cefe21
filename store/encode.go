package store

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
)

// appendQueryData encodes {"resultType":...,"result":...} exactly as the
// Prometheus HTTP API does. Float points are written by hand: a 1 h range over
// thousands of series is millions of points, and encoding/json's reflection
// per point would dominate the query's latency.
//
// Encoding stops with an *errTooLarge as soon as b exceeds limit bytes
// (limit <= 0: no limit), so an answer over the cap is never built whole.
func appendQueryData(b []byte, v parser.Value, limit int) ([]byte, error) {
	b = append(b, `{"resultType":"`...)
	b = append(b, v.Type()...)
	b = append(b, `","result":`...)
	var err error
	switch v := v.(type) {
	case promql.Matrix:
		b = append(b, '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendMetric(b, s.Metric); err != nil {
				return nil, err
			}
			if len(s.Floats) > 0 {
				b = append(b, `,"values":[`...)
				for j, p := range s.Floats {
					if j > 0 {
						b = append(b, ',')
					}
					b = appendPoint(b, p.T, p.F)
				}
				b = append(b, ']')
			}
			if len(s.Histograms) > 0 {
				h, err := json.Marshal(s.Histograms)
				if err != nil {
					return nil, err
				}
				b = append(b, `,"histograms":`...)
				b = append(b, h...)
			}
			b = append(b, '}')
			if limit > 0 && len(b) > limit {
				return nil, &errTooLarge{len(b)}
			}
		}
		b = append(b, ']')
	case promql.Vector:
		b = append(b, '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendMetric(b, s.Metric); err != nil {
				return nil, err
			}
			if s.H != nil {
				h, err := json.Marshal(promql.HPoint{T: s.T, H: s.H})
				if err != nil {
					return nil, err
				}
				b = append(b, `,"histogram":`...)
				b = append(b, h...)
			} else {
				b = append(b, `,"value":`...)
				b = appendPoint(b, s.T, s.F)
			}
			b = append(b, '}')
			if limit > 0 && len(b) > limit {
				return nil, &errTooLarge{len(b)}
			}
		}
		b = append(b, ']')
	case promql.Scalar:
		b = appendPoint(b, v.T, v.V)
	case promql.String:
		s, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		b = append(b, s...)
	default:
		return nil, fmt.Errorf("unexpected result type %T", v)
	}
	return append(b, '}'), nil
}

// errTooLarge: the encoded answer reached n bytes, over the limit.
type errTooLarge struct{ n int }

func (e *errTooLarge) Error() string { return fmt.Sprintf("answer larger than %d bytes", e.n) }

func appendMetric(b []byte, l labels.Labels) ([]byte, error) {
	m, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	b = append(b, `{"metric":`...)
	return append(b, m...), nil
}

// appendPoint writes [<seconds>,"<value>"] like Prometheus' jsonutil.
func appendPoint(b []byte, t int64, f float64) []byte {
	b = append(b, '[')
	if t < 0 {
		b = append(b, '-')
		t = -t
	}
	b = strconv.AppendInt(b, t/1000, 10)
	if frac := t % 1000; frac != 0 {
		b = append(b, '.')
		if frac < 100 {
			b = append(b, '0')
		}
		if frac < 10 {
			b = append(b, '0')
		}
		b = strconv.AppendInt(b, frac, 10)
	}
	b = append(b, `,"`...)
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	return append(b, `"]`...)
}
