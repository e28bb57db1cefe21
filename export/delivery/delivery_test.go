package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
)

const step = 1000 // ms between samples in the test store

// openDB is a real TSDB holding nSeries series with one sample per second
// in [from, to] (ms), value = series*1e6 + t/1000.
func openDB(t *testing.T, nSeries int, from, to int64) *tsdb.DB {
	t.Helper()
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = 0
	db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	app := db.Appender(context.Background())
	for ts := from; ts <= to; ts += step {
		for i := 0; i < nSeries; i++ {
			l := labels.FromStrings("__name__", fmt.Sprintf("m_%d", i%3), "i", strconv.Itoa(i))
			if _, err := app.Append(0, l, ts, float64(i)*1e6+float64(ts/1000)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	return db
}

type key struct {
	series string
	t      int64
}

// recorder collects what a receiver acknowledged.
type recorder struct {
	mu      sync.Mutex
	got     map[key]float64
	dups    int
	batches []int
}

func newRecorder() *recorder { return &recorder{got: map[key]float64{}} }

func (r *recorder) add(b *Batch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, b.Len())
	for _, s := range b.Series {
		last := int64(math.MinInt64)
		for _, p := range s.Samples {
			if p.T <= last {
				panic("samples out of order in a batch")
			}
			last = p.T
			k := key{s.Labels.String(), p.T}
			if _, ok := r.got[k]; ok {
				r.dups++
			}
			r.got[k] = p.V
		}
	}
}

func (r *recorder) Send(_ context.Context, b *Batch) error { r.add(b); return nil }

// want lists the store's samples with after < t <= upTo.
func want(t *testing.T, db *tsdb.DB, after, upTo int64) map[key]float64 {
	t.Helper()
	d := &Delivery{o: Options{Source: db}, m: nil}
	d.matcher = labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")
	d.m = &metrics{dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"reason"})}
	series, err := d.read(context.Background(), after, upTo)
	if err != nil {
		t.Fatal(err)
	}
	out := map[key]float64{}
	for _, s := range series {
		for _, p := range s.Samples {
			out[key{s.Labels.String(), p.T}] = p.V
		}
	}
	return out
}

func setCursor(t *testing.T, dir, name string, ms int64) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := (cursor{path: filepath.Join(dir, name+".cursor.json")}).save(name, ms); err != nil {
		t.Fatal(err)
	}
}

func equal(t *testing.T, got, want map[key]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d samples, want %d", len(got), len(want))
	}
	bad := 0
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			if bad++; bad <= 5 {
				t.Errorf("sample %v: got %v (present %v), want %v", k, g, ok, v)
			}
		}
	}
}

func TestCursorSaveLoad(t *testing.T) {
	dir := t.TempDir()
	c := cursor{path: filepath.Join(dir, "vm.cursor.json")}
	if _, ok, err := c.load(); ok || err != nil {
		t.Fatalf("empty dir: ok=%v err=%v", ok, err)
	}
	for _, ms := range []int64{1, 1700000000123, 1700000000124} {
		if err := c.save("vm", ms); err != nil {
			t.Fatal(err)
		}
		got, ok, err := c.load()
		if !ok || err != nil || got != ms {
			t.Fatalf("load = %d %v %v, want %d", got, ok, err, ms)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}
	if err := os.WriteFile(c.path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.load(); err == nil {
		t.Error("a corrupt cursor loaded without error")
	}
}

func TestCut(t *testing.T) {
	var series []Series
	for i := 0; i < 7; i++ {
		s := Series{Labels: labels.FromStrings("i", strconv.Itoa(i))}
		for ts := int64(0); ts < 10; ts++ {
			if (int(ts)+i)%3 != 0 { // ragged: not every series at every timestamp
				s.Samples = append(s.Samples, Sample{T: ts, V: float64(ts)})
			}
		}
		series = append(series, s)
	}
	for _, max := range []int{1, 3, 5, 7, 100} {
		chunks := cut(series, max)
		total, prevUpTo := 0, int64(-1)
		for _, c := range chunks {
			if n := c.batch.Len(); n > max || n == 0 {
				t.Errorf("max %d: chunk of %d samples", max, n)
			}
			if c.upTo < prevUpTo {
				t.Errorf("max %d: chunks not in time order", max)
			}
			for _, s := range c.batch.Series {
				for _, p := range s.Samples {
					if p.T > c.upTo || (c.last && p.T <= prevUpTo && prevUpTo != c.upTo) {
						t.Errorf("max %d: sample at %d outside chunk (.., %d]", max, p.T, c.upTo)
					}
				}
			}
			if c.last {
				prevUpTo = c.upTo
			}
			total += c.batch.Len()
		}
		if want := (&Batch{Series: series}).Len(); total != want {
			t.Errorf("max %d: chunks hold %d samples, want %d", max, total, want)
		}
	}
}

func TestBatchSplitAndPrune(t *testing.T) {
	b := &Batch{Series: []Series{
		{Labels: labels.FromStrings("a", "1"), Samples: []Sample{{1, 1}, {2, 2}, {3, 3}}},
		{Labels: labels.FromStrings("a", "2"), Samples: []Sample{{1, 1}, {2, 2}}},
	}}
	l, r := b.split()
	if l.Len() != 2 || r.Len() != 3 {
		t.Errorf("split 5 into %d+%d", l.Len(), r.Len())
	}
	if n := b.pruneBefore(3); n != 4 || b.Len() != 1 {
		t.Errorf("pruneBefore(3) dropped %d, left %d", n, b.Len())
	}
}

// TestRoundDeliversExactly: one round sends every sample in (T, now-lag]
// exactly once, in batches of at most max_samples_per_send, and persists T.
func TestRoundDeliversExactly(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	from := now.Add(-10 * time.Minute).UnixMilli()
	db := openDB(t, 30, from, now.UnixMilli())
	dir := t.TempDir()
	start := from + 17*step
	setCursor(t, dir, "t", start)
	rec := newRecorder()
	d, err := New(Options{Name: "t", Dir: dir, Source: db, Sender: rec, Interval: time.Second, Lag: 5 * time.Second,
		MaxSamplesPerSend: 100, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	end := now.Add(-5 * time.Second).UnixMilli()
	equal(t, rec.got, want(t, db, start, end))
	if rec.dups != 0 {
		t.Errorf("%d duplicates", rec.dups)
	}
	for _, n := range rec.batches {
		if n > 100 {
			t.Errorf("batch of %d samples > max_samples_per_send 100", n)
		}
	}
	if got, _, _ := d.cur.load(); got != end {
		t.Errorf("persisted cursor %d, want %d", got, end)
	}
	if v := testutil.ToFloat64(d.m.sent); int(v) != len(rec.got) {
		t.Errorf("samples_sent_total %v, want %d", v, len(rec.got))
	}
}

// TestRestartResumes: a round cut short (the agent dies) is resumed by a
// new Delivery from the persisted cursor; nothing is lost and at most the
// batch in flight is sent twice.
func TestRestartResumes(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	from := now.Add(-5 * time.Minute).UnixMilli()
	db := openDB(t, 20, from, now.UnixMilli())
	dir := t.TempDir()
	setCursor(t, dir, "t", from-1)
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	dying := SenderFunc(func(ctx context.Context, b *Batch) error {
		if calls++; calls == 7 {
			rec.add(b) // delivered, but the agent dies before it learns so
			cancel()
			return ctx.Err()
		}
		rec.add(b)
		return nil
	})
	opts := Options{Name: "t", Dir: dir, Source: db, Sender: dying, Interval: time.Second, Lag: time.Second,
		MaxSamplesPerSend: 50, Now: func() time.Time { return now }}
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	_ = d.Round(ctx)
	opts.Sender = rec
	d2, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if d2.Acked() == from-1 {
		t.Error("cursor did not advance before the restart")
	}
	if err := d2.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	equal(t, rec.got, want(t, db, from-1, now.Add(-time.Second).UnixMilli()))
	if rec.dups > 50 {
		t.Errorf("%d duplicates after restart, want at most one batch (50)", rec.dups)
	}
}

// statusServer answers each request with the next status in codes (then
// 204), decoding the batch the sender posted as JSON.
type statusServer struct {
	*httptest.Server
	mu    sync.Mutex
	codes []int
	hdr   []http.Header
	times []time.Time
	rec   *recorder
}

func newStatusServer(t *testing.T, codes []int, hdr []http.Header) *statusServer {
	s := &statusServer{codes: codes, hdr: hdr, rec: newRecorder()}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.times = append(s.times, time.Now())
		var b wireBatch
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		code := http.StatusNoContent
		if len(s.codes) > 0 {
			code = s.codes[0]
			s.codes = s.codes[1:]
			if len(s.hdr) > 0 {
				for k, v := range s.hdr[0] {
					w.Header()[k] = v
				}
				s.hdr = s.hdr[1:]
			}
		}
		if code == http.StatusRequestEntityTooLarge && b.n() <= 10 {
			code = http.StatusNoContent
		}
		if code/100 == 2 {
			s.rec.add(b.batch())
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "status %d", code)
	}))
	t.Cleanup(s.Close)
	return s
}

type wireBatch struct {
	Series []struct {
		Labels  map[string]string
		Samples [][2]float64
	}
}

func (w wireBatch) n() int {
	n := 0
	for _, s := range w.Series {
		n += len(s.Samples)
	}
	return n
}

func (w wireBatch) batch() *Batch {
	var b Batch
	for _, s := range w.Series {
		ser := Series{Labels: labels.FromMap(s.Labels)}
		for _, p := range s.Samples {
			ser.Samples = append(ser.Samples, Sample{T: int64(p[0]), V: p[1]})
		}
		b.Series = append(b.Series, ser)
	}
	return &b
}

// jsonSender posts a batch as JSON and classifies the answer like every HTTP output.
func jsonSender(url string) Sender {
	return SenderFunc(func(ctx context.Context, b *Batch) error {
		var w wireBatch
		for _, s := range b.Series {
			var ws struct {
				Labels  map[string]string
				Samples [][2]float64
			}
			ws.Labels = s.Labels.Map()
			for _, p := range s.Samples {
				ws.Samples = append(ws.Samples, [2]float64{float64(p.T), p.V})
			}
			w.Series = append(w.Series, ws)
		}
		body, _ := json.Marshal(w)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		return Classify(resp, time.Now())
	})
}

func TestStatusCodeRules(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	from := now.Add(-time.Minute).UnixMilli()
	db := openDB(t, 10, from, now.UnixMilli())
	upTo := now.Add(-time.Second).UnixMilli()
	all := want(t, db, from-1, upTo)
	run := func(t *testing.T, codes []int, hdr []http.Header) (*statusServer, *Delivery) {
		srv := newStatusServer(t, codes, hdr)
		dir := t.TempDir()
		setCursor(t, dir, "t", from-1)
		d, err := New(Options{Name: "t", Dir: dir, Source: db, Sender: jsonSender(srv.URL), Interval: time.Second,
			Lag: time.Second, MaxSamplesPerSend: 100, MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
			Registerer: prometheus.NewRegistry(), Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := d.Round(ctx); err != nil {
			t.Fatal(err)
		}
		return srv, d
	}
	t.Run("400 drops one batch, later batches land", func(t *testing.T) {
		srv, d := run(t, []int{204, 400, 204}, nil)
		dropped := testutil.ToFloat64(d.m.dropped.WithLabelValues(reasonRejected))
		if dropped != 100 {
			t.Errorf("dropped{rejected} = %v, want 100 (one batch)", dropped)
		}
		if len(srv.rec.got)+int(dropped) != len(all) || len(srv.rec.got) < len(all)-100 {
			t.Errorf("delivered %d + dropped %v, want %d in all", len(srv.rec.got), dropped, len(all))
		}
		if d.Acked() != upTo {
			t.Errorf("cursor %d, want %d", d.Acked(), upTo)
		}
	})
	t.Run("422 and 404 drop too", func(t *testing.T) {
		_, d := run(t, []int{422, 404}, nil)
		if v := testutil.ToFloat64(d.m.dropped.WithLabelValues(reasonRejected)); v != 200 {
			t.Errorf("dropped{rejected} = %v, want 200", v)
		}
	})
	t.Run("429 with Retry-After: 3 waits 3s", func(t *testing.T) {
		srv, d := run(t, []int{204, 429}, []http.Header{{}, {"Retry-After": {"3"}}})
		equal(t, srv.rec.got, all)
		if gap := srv.times[2].Sub(srv.times[1]); gap < 3*time.Second {
			t.Errorf("retry after %v, want >= 3s", gap)
		}
		if v := testutil.ToFloat64(d.m.failed); v != 100 {
			t.Errorf("samples_failed_total = %v, want 100", v)
		}
	})
	t.Run("503 and 500 retried with backoff", func(t *testing.T) {
		srv, d := run(t, []int{503, 500, 502, 504}, nil)
		equal(t, srv.rec.got, all)
		if v := testutil.ToFloat64(d.m.batches.WithLabelValues("retried")); v != 4 {
			t.Errorf("batches{retried} = %v, want 4", v)
		}
	})
	t.Run("413 splits", func(t *testing.T) {
		srv, d := run(t, []int{413, 413, 413, 413, 413, 413, 413, 413, 413, 413, 413, 413, 413, 413, 413, 413}, nil)
		equal(t, srv.rec.got, all)
		if v := testutil.ToFloat64(d.m.batches.WithLabelValues("split")); v == 0 {
			t.Error("no split counted")
		}
		for _, n := range srv.rec.batches[:4] {
			if n > 10 {
				t.Errorf("batch of %d landed although the receiver takes at most 10", n)
			}
		}
	})
}

// TestMaxAge: a cursor older than max_age skips (and counts) what is too
// old; a batch that ages past max_age while the receiver fails is pruned;
// the output catches up.
func TestMaxAge(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	from := now.Add(-3 * time.Hour).UnixMilli()
	db := openDB(t, 2, from, now.UnixMilli())
	dir := t.TempDir()
	setCursor(t, dir, "t", from-1)
	rec := newRecorder()
	d, err := New(Options{Name: "t", Dir: dir, Source: db, Sender: rec, Interval: time.Second, Lag: time.Second,
		MaxAge: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	oldest := now.Add(-time.Hour).UnixMilli()
	tooOld := len(want(t, db, from-1, oldest-1))
	if v := testutil.ToFloat64(d.m.dropped.WithLabelValues(reasonTooOld)); int(v) != tooOld {
		t.Errorf("dropped{too_old} = %v, want %d", v, tooOld)
	}
	equal(t, rec.got, want(t, db, oldest-1, now.Add(-time.Second).UnixMilli()))

	// Receiver down while the clock runs past max_age: the aged part is pruned.
	clock := now
	var mu sync.Mutex
	fails := 0
	down := SenderFunc(func(ctx context.Context, b *Batch) error {
		mu.Lock()
		defer mu.Unlock()
		if fails < 3 {
			fails++
			clock = clock.Add(20 * time.Minute)
			return &Error{Kind: Retry, Err: fmt.Errorf("down")}
		}
		return rec.Send(ctx, b)
	})
	dir2 := t.TempDir()
	setCursor(t, dir2, "t", now.Add(-30*time.Minute).UnixMilli())
	d2, err := New(Options{Name: "t", Dir: dir2, Source: db, Sender: down, Interval: time.Second, Lag: time.Second,
		MaxAge: time.Hour, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }})
	if err != nil {
		t.Fatal(err)
	}
	if err := d2.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(d2.m.dropped.WithLabelValues(reasonTooOld)); v == 0 {
		t.Error("samples that aged past max_age during retries were not dropped")
	}
	if d2.Acked() < now.Add(-time.Second).UnixMilli() {
		t.Errorf("output did not catch up: cursor %v", time.UnixMilli(d2.Acked()))
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"3": 3 * time.Second, "": 0, "x": 0, "-1": 0, "100000": maxRetryAfter,
		"Thu, 01 Jan 2026 00:00:07 GMT": 7 * time.Second,
	} {
		if got := ParseRetryAfter(in, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}
