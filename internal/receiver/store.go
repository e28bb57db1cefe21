package receiver

import (
	"context"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// Store is a real TSDB standing in for netsight's embedded store: each Add
// is one "scrape" of Series with values from Value.
type Store struct {
	*tsdb.DB
	Series []labels.Labels
	Value  func(i int, ts int64) float64
}

// NewStore opens an empty TSDB in a temporary directory.
func NewStore(t testing.TB, series []labels.Labels, v func(i int, ts int64) float64) *Store {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &Store{DB: db, Series: series, Value: v}
}

// Add appends one sample per series at ts in one commit.
func (s *Store) Add(t testing.TB, ts int64) {
	app := s.Appender(context.Background())
	for i, l := range s.Series {
		if _, err := app.Append(0, l, ts, s.Value(i, ts)); err != nil {
			t.Error(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Error(err)
	}
}

// Local reads the samples of series matching nameRE in [from, to]; rename
// maps a metric name to the receiver's (nil: unchanged). Staleness markers,
// NaN and ±Inf are skipped when skipNonFinite is set.
func (s *Store) Local(t testing.TB, nameRE string, from, to int64, rename func(string) string, skipNonFinite bool) Samples {
	t.Helper()
	q, err := s.Querier(from, to)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	out := Samples{}
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", nameRE))
	var it chunkenc.Iterator
	for ss.Next() {
		it = ss.At().Iterator(it)
		m := ss.At().Labels().Map()
		if rename != nil {
			m["__name__"] = rename(m["__name__"])
		}
		name := SeriesString(m)
		for it.Next() == chunkenc.ValFloat {
			ts, v := it.At()
			if skipNonFinite && (value.IsStaleNaN(v) || v != v || v > 1.7976931348623157e308 || v < -1.7976931348623157e308) {
				continue
			}
			out[Key{Series: name, T: ts}] = v
		}
	}
	if ss.Err() != nil {
		t.Fatal(ss.Err())
	}
	return out
}
