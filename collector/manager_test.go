package collector_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/config"
)

type fakeConfig struct {
	config.CollectorCommon `yaml:",inline"`
	Mode                   string `yaml:"mode"`
}

func (c *fakeConfig) Validate() error { return c.ValidateCommon() }

var fakeDesc = prometheus.NewDesc("netsight_fake_value", "test value", nil, nil)

// fake is a collector whose behaviour the test picks through Mode.
type fake struct {
	mode    string
	kill    chan struct{} // closing it kills Run's background reader
	updates atomic.Int64
	running atomic.Bool
	closed  atomic.Bool
}

func (f *fake) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	n := f.updates.Add(1)
	switch f.mode {
	case "slow":
		<-ctx.Done()
		return ctx.Err()
	case "flaky":
		if n%2 == 0 {
			return errors.New("flaky failure")
		}
	}
	ch <- prometheus.MustNewConstMetric(fakeDesc, prometheus.GaugeValue, float64(n))
	return nil
}

func (f *fake) Run(ctx context.Context) error {
	f.running.Store(true)
	defer f.running.Store(false)
	select {
	case <-ctx.Done():
		return nil
	case <-f.kill:
		return errors.New("reader died")
	}
}

func (f *fake) Close() error { f.closed.Store(true); return nil }

type fakeFactory struct {
	name  string
	built *fake
}

func (ff *fakeFactory) Type() string { return ff.name }
func (ff *fakeFactory) DefaultConfig() config.CollectorConfig {
	return &fakeConfig{CollectorCommon: config.CollectorCommon{Interval: 50 * time.Millisecond}}
}
func (ff *fakeFactory) Check(context.Context, config.CollectorConfig, collector.Deps) error {
	return nil
}
func (ff *fakeFactory) New(cfg config.CollectorConfig, _ collector.Deps) (collector.Collector, error) {
	c := cfg.(*fakeConfig)
	switch c.Mode {
	case "unsupported":
		return nil, collector.NotSupported("CAP_NET_ADMIN", errors.New("operation not permitted"))
	case "broken":
		return nil, errors.New("broken on purpose")
	}
	ff.built = &fake{mode: c.Mode, kill: make(chan struct{})}
	return ff.built, nil
}

var fakeF = &fakeFactory{name: "zfake"}

func init() { collector.Register(fakeF) }

func newManager(t *testing.T, mode string, enabled *bool) (*collector.Manager, *bytes.Buffer, error) {
	t.Helper()
	cfg := fakeF.DefaultConfig().(*fakeConfig)
	cfg.Mode, cfg.Enabled = mode, enabled
	var buf bytes.Buffer
	m, err := collector.NewManager(config.Collectors{"zfake": cfg}, collector.Deps{
		Logger: slog.New(slog.NewTextHandler(&buf, nil)),
	})
	return m, &buf, err
}

func gather(t *testing.T, m *collector.Manager, names ...string) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, n := range names {
			if mf.GetName() == n {
				for _, mm := range mf.GetMetric() {
					b.WriteString(n)
					for _, lp := range mm.GetLabel() {
						b.WriteString(" " + lp.GetName() + "=" + lp.GetValue())
					}
					b.WriteString("\n")
				}
			}
		}
	}
	return b.String()
}

func TestManagerRunsAndSnapshots(t *testing.T) {
	m, _, err := newManager(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m.Start(ctx)
	select {
	case <-m.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("not ready")
	}
	deadline := time.Now().Add(5 * time.Second)
	for fakeF.built.updates.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := fakeF.built.updates.Load(); n < 3 {
		t.Fatalf("only %d updates in 5s at a 50ms interval", n)
	}
	if !fakeF.built.running.Load() {
		t.Error("Run was not started")
	}
	if got := testutil.ToFloat64(prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
		m.Collect(filter(ch, "netsight_collector_up"))
	})); got != 1 {
		t.Errorf("collector_up = %v, want 1", got)
	}
	// Scrapes read the snapshot: they must not trigger updates.
	before := fakeF.built.updates.Load()
	for i := 0; i < 20; i++ {
		gather(t, m, "netsight_fake_value")
	}
	if after := fakeF.built.updates.Load(); after-before > 2 {
		t.Errorf("scrapes triggered updates: %d -> %d", before, after)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer scancel()
	if err := m.Stop(sctx); err != nil {
		t.Fatal(err)
	}
	if fakeF.built.running.Load() || !fakeF.built.closed.Load() {
		t.Error("Stop did not end Run and Close the collector")
	}
	if err := m.Stop(sctx); err != nil { // idempotent
		t.Fatal(err)
	}
}

// filter forwards only metrics of one family.
func filter(out chan<- prometheus.Metric, name string) chan<- prometheus.Metric {
	in := make(chan prometheus.Metric)
	go func() {
		for m := range in {
			if strings.Contains(m.Desc().String(), `"`+name+`"`) {
				out <- m
			}
		}
	}()
	return in
}

func TestManagerUnsupportedIsNotFatal(t *testing.T) {
	m, logs, err := newManager(t, "unsupported", nil)
	if err != nil {
		t.Fatalf("unsupported collector must not fail the agent: %v", err)
	}
	st := m.Status()
	var s collector.Status
	for _, x := range st {
		if x.Name == "zfake" {
			s = x
		}
	}
	if s.State != collector.StateUnsupported || !strings.Contains(s.Reason, "CAP_NET_ADMIN") || s.Up {
		t.Errorf("status = %+v", s)
	}
	out := gather(t, m, "netsight_collector_up")
	if !strings.Contains(out, "collector=zfake") {
		t.Errorf("unsupported collector must export up 0: %q", out)
	}
	if c := strings.Count(logs.String(), "collector not supported on this host"); c != 1 {
		t.Errorf("logged %d times, want once:\n%s", c, logs)
	}
	if err := m.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestManagerBrokenExplicitIsFatal(t *testing.T) {
	yes := true
	if _, _, err := newManager(t, "broken", &yes); err == nil || !strings.Contains(err.Error(), "collector zfake: broken on purpose") {
		t.Fatalf("explicitly enabled broken collector: err = %v", err)
	}
	m, _, err := newManager(t, "broken", nil)
	if err != nil {
		t.Fatalf("auto-enabled broken collector must not be fatal: %v", err)
	}
	if s := m.Status(); s[len(s)-1].State != collector.StateFailed {
		t.Errorf("state = %v", s[len(s)-1].State)
	}
}

func TestManagerDisabled(t *testing.T) {
	no := false
	m, _, err := newManager(t, "", &no)
	if err != nil {
		t.Fatal(err)
	}
	if out := gather(t, m, "netsight_collector_up"); strings.Contains(out, "zfake") {
		t.Errorf("disabled collector exported: %q", out)
	}
	// zfake is on by default: switching it off is no "opt-in".
	for _, s := range m.Status() {
		if s.Name == "zfake" && (s.Reason != "disabled in the config (collectors.zfake.enabled: false)" || s.State != collector.StateDisabled) {
			t.Errorf("status %+v", s)
		}
	}
}

func TestManagerTimeoutAndErrors(t *testing.T) {
	m, logs, err := newManager(t, "slow", nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	m.UpdateNow(context.Background())
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("update not bounded by the timeout: %v", d)
	}
	s := m.Status()[len(m.Status())-1]
	if s.Up || s.Errors != 1 || !strings.Contains(s.Reason, "deadline exceeded") {
		t.Errorf("status after timeout: %+v", s)
	}
	m.UpdateNow(context.Background())
	if c := strings.Count(logs.String(), "collector update failed"); c != 1 {
		t.Errorf("same failure logged %d times, want once", c)
	}
}

func TestManagerFlakyRecovers(t *testing.T) {
	m, logs, err := newManager(t, "flaky", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m.UpdateNow(ctx) // ok
	m.UpdateNow(ctx) // fails
	if s := m.Status()[len(m.Status())-1]; s.Up || s.Errors != 1 {
		t.Fatalf("after failure: %+v", s)
	}
	m.UpdateNow(ctx) // ok again
	s := m.Status()[len(m.Status())-1]
	if !s.Up || s.Errors != 1 || s.Reason != "" {
		t.Fatalf("after recovery: %+v", s)
	}
	if !strings.Contains(logs.String(), "collector update failed: recovered after 1 failures") {
		t.Errorf("no recovered line:\n%s", logs.String())
	}
	if !errors.Is(collector.NotSupported("x", nil), collector.ErrNotSupported) {
		t.Error("NotSupported must match ErrNotSupported")
	}
}

// A collector whose background reader dies stays down, netsight_collector_up
// 0 with the reason in its status, although its Updates keep succeeding.
func TestManagerDeadRunStaysDown(t *testing.T) {
	m, _, err := newManager(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m.Start(ctx)
	defer func() { _ = m.Stop(context.Background()) }()
	<-m.Ready()
	if got := upValue(t, m); got != 1 {
		t.Fatalf("up before the kill = %v, want 1", got)
	}
	f := fakeF.built
	close(f.kill)
	deadline := time.Now().Add(5 * time.Second)
	for f.running.Load() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// Several successful updates (interval 50ms) after the death.
	n := f.updates.Load()
	for f.updates.Load() < n+4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if f.updates.Load() < n+4 {
		t.Fatal("updates stopped after Run died")
	}
	if got := upValue(t, m); got != 0 {
		t.Errorf("up after the kill and %d good updates = %v, want 0", f.updates.Load()-n, got)
	}
	s := m.Status()[len(m.Status())-1]
	if s.Up || s.State != collector.StateFailed || !strings.Contains(s.Reason, "reader died") {
		t.Errorf("status: %+v", s)
	}
}

func upValue(t *testing.T, m *collector.Manager) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "netsight_collector_up" {
			continue
		}
		for _, mm := range mf.GetMetric() {
			for _, lp := range mm.GetLabel() {
				if lp.GetName() == "collector" && lp.GetValue() == "zfake" {
					return mm.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatal("no netsight_collector_up{collector=zfake}")
	return -1
}
