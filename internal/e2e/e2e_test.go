package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/netsight/netsight/internal/testlab"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// agentBinary builds the agent once per test binary.
func agentBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "netsight-e2e-")
		if binErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		binPath, binErr = Build(ctx, binDir)
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// labAgent is an agent under test with its memory accounting.
type labAgent struct {
	*Agent
	cg *testlab.Cgroup
}

// startLabAgent runs the agent inside ns, in a fresh cgroup limited to
// memMax, with the given YAML config.
func startLabAgent(t *testing.T, ns *testlab.NetNS, memMax int64, config string) *labAgent {
	t.Helper()
	return startLabAgentOpts(t, memMax, Options{NS: ns, Config: config})
}

// startLabAgentOpts is startLabAgent with more options (binary, cgroup and
// data dir are filled in).
func startLabAgentOpts(t *testing.T, memMax int64, o Options) *labAgent {
	t.Helper()
	cg := testlab.NewCgroup(t, memMax)
	bin := agentBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	o.Binary, o.Cgroup, o.DataDir = bin, cg, filepath.Join(t.TempDir(), "data")
	a, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	la := &labAgent{Agent: a, cg: cg}
	t.Cleanup(func() {
		if err := a.Stop(); err != nil {
			t.Errorf("agent stop: %v\n%s", err, a.Logs())
		}
		if t.Failed() {
			t.Logf("agent log tail:\n%s", a.Logs())
		}
	})
	return la
}

// alive fails the test if the agent exited or was OOM-killed.
func (a *labAgent) alive(t *testing.T) {
	t.Helper()
	if ok, err := a.Exited(); ok {
		m, _ := a.cg.Memory()
		t.Fatalf("agent exited (%v); cgroup: %+v\n%s", err, m, a.Logs())
	}
	if m, err := a.cg.Memory(); err == nil && m.OOMKills > 0 {
		t.Fatalf("OOM kill in the agent's cgroup: %+v", m)
	}
}

// metrics scrapes /metrics, failing the test on error.
func (a *labAgent) metrics(t *testing.T) Metrics {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := a.Metrics(ctx)
	if err != nil {
		a.alive(t)
		t.Fatal(err)
	}
	return m
}

// proc reads the agent's /proc figures, failing the test on error.
func (a *labAgent) proc(t *testing.T) testlab.ProcStats {
	t.Helper()
	p, err := a.Proc()
	if err != nil {
		a.alive(t)
		t.Fatal(err)
	}
	return p
}

// waitMetric scrapes until cond holds on the metrics or timeout passes, and
// returns the last scrape.
func (a *labAgent) waitMetric(t *testing.T, timeout time.Duration, what string, cond func(Metrics) bool) Metrics {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m := a.metrics(t)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s", what, timeout)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// checkMemory asserts the agent stayed under rssMax (peak RSS from
// /proc/PID/status VmHWM) and its cgroup never OOM-killed, and logs the
// figures.
func (a *labAgent) checkMemory(t *testing.T, rssMax int64) testlab.ProcStats {
	t.Helper()
	a.alive(t)
	p := a.proc(t)
	m, err := a.cg.Memory()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("memory: RSS %s, peak RSS %s (bound %s); cgroup peak %s of limit %s, limit hits %d, OOM kills %d; fds %d, threads %d",
		testlab.MiB(p.RSS), testlab.MiB(p.PeakRSS), testlab.MiB(rssMax), testlab.MiB(m.Peak), testlab.MiB(m.Limit), m.LimitHits, m.OOMKills, p.FDs, p.Threads)
	if p.PeakRSS > rssMax {
		t.Errorf("peak RSS %s exceeds the bound %s", testlab.MiB(p.PeakRSS), testlab.MiB(rssMax))
	}
	if m.OOMKills > 0 {
		t.Errorf("%d OOM kills in the agent's cgroup", m.OOMKills)
	}
	return p
}

const mib = 1 << 20

// baseConfig is the config of every flood test: the store on (it scrapes
// the agent's own /metrics, as in production), fast collector intervals so
// the tests see their metrics quickly, extra sections appended.
func baseConfig(extra string) string {
	return fmt.Sprintf(`log:
  level: info
store:
  scrape_interval: 2s
%s`, extra)
}
