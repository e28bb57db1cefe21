package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/netsight/netsight/internal/testlab"
)

// Package is the import path of the agent's main package.
const Package = "github.com/netsight/netsight/cmd/netsight"

// Build builds the agent binary (static, like `make build`) into dir and
// returns its path. It runs from the current directory, which must be inside
// the netsight module.
func Build(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "netsight")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, Package)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", Package, err, b)
	}
	return out, nil
}

// Options configures Start.
type Options struct {
	// Binary is the netsight executable (see Build).
	Binary string
	// NS is the namespace the agent runs in (with `ip netns exec`, so
	// /sys is the namespace's); nil runs it in the caller's namespace.
	NS *testlab.NetNS
	// HostMounts enters NS with `nsenter --net` instead, keeping the
	// host's mounts: /sys/fs/cgroup stays visible, so the eBPF flow back
	// end can attach (it sees the connections of every namespace), but
	// /sys/class/net shows the host's interfaces.
	HostMounts bool
	// Cgroup, when set, holds the agent from before its first instruction.
	Cgroup *testlab.Cgroup
	// Config is the YAML config file content. server.listen and data_dir
	// are set by flags: listen on a free loopback port, DataDir.
	Config string
	// DataDir is the store's directory (required).
	DataDir string
	// Env is added to the agent's environment (e.g. GOMEMLIMIT=...).
	Env []string
	// StartTimeout bounds the wait for "netsight is serving" (default 60s).
	StartTimeout time.Duration
}

// Agent is a running `netsight run`.
type Agent struct {
	cmd    *exec.Cmd
	addr   string
	client *http.Client
	logs   *tailBuffer
	done   chan struct{}
	err    error // set before done is closed
}

var servingRE = regexp.MustCompile(`"netsight is serving" dashboard=https?://([^/ ]+)/`)

// Start writes the config into DataDir's parent, starts the agent and waits
// until it serves. The agent's stderr is kept (its last 256 KiB) for Logs.
func Start(ctx context.Context, o Options) (*Agent, error) {
	if o.Binary == "" || o.DataDir == "" {
		return nil, errors.New("e2e start: binary and data dir must be set")
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("e2e start: %w", err)
	}
	cfgFile := filepath.Join(filepath.Dir(o.DataDir), filepath.Base(o.DataDir)+".yaml")
	if err := os.WriteFile(cfgFile, []byte(o.Config), 0o600); err != nil {
		return nil, fmt.Errorf("e2e start: %w", err)
	}
	args := []string{"run", "--config", cfgFile, "--listen", "127.0.0.1:0", "--data-dir", o.DataDir, "--log.format", "text"}
	// Not CommandContext: the agent's lifetime is Stop's business (and the
	// namespace's and the cgroup's cleanup kill it in any case).
	var cmd *exec.Cmd
	switch {
	case o.NS != nil && o.HostMounts:
		cmd = exec.Command("nsenter", append([]string{"--net=" + filepath.Join(testlab.NetnsDir, o.NS.Name), "--", o.Binary}, args...)...)
	case o.NS != nil:
		cmd = exec.Command("ip", append([]string{"netns", "exec", o.NS.Name, o.Binary}, args...)...)
	default:
		cmd = exec.Command(o.Binary, args...)
	}
	cmd.Env = append(os.Environ(), o.Env...)
	a := &Agent{cmd: cmd, logs: &tailBuffer{max: 256 << 10}, done: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("e2e start: %w", err)
	}
	cmd.Stdout = io.Discard
	if o.Cgroup != nil {
		err = o.Cgroup.Start(cmd)
	} else {
		err = cmd.Start()
	}
	if err != nil {
		return nil, fmt.Errorf("e2e start: %w", err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			a.logs.WriteLine(line)
			if m := servingRE.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		a.err = cmd.Wait()
		close(a.done)
	}()
	select {
	case a.addr = <-addr:
	case <-a.done:
		return nil, fmt.Errorf("e2e start: agent exited: %v\n%s", a.err, a.Logs())
	case <-time.After(o.StartTimeout):
		_ = a.Stop()
		return nil, fmt.Errorf("e2e start: agent did not serve within %s\n%s", o.StartTimeout, a.Logs())
	case <-ctx.Done():
		_ = a.Stop()
		return nil, ctx.Err()
	}
	tr := &http.Transport{MaxIdleConns: 4, IdleConnTimeout: 30 * time.Second}
	if o.NS != nil {
		ns := o.NS
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return ns.Dial(ctx, network, addr)
		}
	}
	a.client = &http.Client{Transport: tr, Timeout: 60 * time.Second}
	return a, nil
}

// Pid is the agent's process id.
func (a *Agent) Pid() int { return a.cmd.Process.Pid }

// Addr is the host:port the agent serves on (inside its namespace).
func (a *Agent) Addr() string { return a.addr }

// Logs returns the tail of the agent's log.
func (a *Agent) Logs() string { return a.logs.String() }

// Exited reports whether the agent has exited, and how.
func (a *Agent) Exited() (bool, error) {
	select {
	case <-a.done:
		return true, a.err
	default:
		return false, nil
	}
}

// Get fetches path (with its query) and returns the body; a status other
// than 200 is an error carrying the body.
func (a *Agent) Get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.addr+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return b, fmt.Errorf("get %s: %s: %.300s", path, resp.Status, b)
	}
	return b, nil
}

// QueryRange runs a query_range request against the store API and returns
// the body.
func (a *Agent) QueryRange(ctx context.Context, query string, start, end time.Time, step time.Duration) ([]byte, error) {
	v := url.Values{
		"query": {query},
		"start": {fmt.Sprintf("%.3f", float64(start.UnixMilli())/1000)},
		"end":   {fmt.Sprintf("%.3f", float64(end.UnixMilli())/1000)},
		"step":  {step.String()},
	}
	return a.Get(ctx, "/api/v1/query_range?"+v.Encode())
}

// Metrics scrapes /metrics.
func (a *Agent) Metrics(ctx context.Context) (Metrics, error) {
	b, err := a.Get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	return ParseMetrics(b)
}

// Proc reads the agent's RSS, peak RSS, fds and threads from /proc.
func (a *Agent) Proc() (testlab.ProcStats, error) { return testlab.ReadProcStats(a.Pid()) }

// Stop sends SIGTERM and waits up to 15 s, then kills. It returns the exit
// error of a process that did not exit cleanly on SIGTERM.
func (a *Agent) Stop() error {
	if ok, err := a.Exited(); ok {
		return err
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
		return a.err
	case <-time.After(15 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
		return errors.New("agent did not stop within 15s of SIGTERM")
	}
}

// Metrics are parsed /metrics families by name.
type Metrics map[string]*dto.MetricFamily

// ParseMetrics parses the Prometheus text format.
func ParseMetrics(b []byte) (Metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	return Metrics(fams), nil
}

// Sum adds the values of the series of family name whose labels include
// the given name, value pairs; histograms and summaries count their sample
// count. A missing family is 0.
func (m Metrics) Sum(name string, labels ...string) float64 {
	f := m[name]
	if f == nil {
		return 0
	}
	var sum float64
	for _, s := range f.GetMetric() {
		if !hasLabels(s, labels) {
			continue
		}
		switch {
		case s.Counter != nil:
			sum += s.Counter.GetValue()
		case s.Gauge != nil:
			sum += s.Gauge.GetValue()
		case s.Untyped != nil:
			sum += s.Untyped.GetValue()
		case s.Histogram != nil:
			sum += float64(s.Histogram.GetSampleCount())
		case s.Summary != nil:
			sum += float64(s.Summary.GetSampleCount())
		}
	}
	return sum
}

// Series counts the series of family name (whose labels include the pairs).
func (m Metrics) Series(name string, labels ...string) int {
	f := m[name]
	if f == nil {
		return 0
	}
	n := 0
	for _, s := range f.GetMetric() {
		if hasLabels(s, labels) {
			n++
		}
	}
	return n
}

// TotalSeries counts every series of every family (a histogram is one).
func (m Metrics) TotalSeries() int {
	n := 0
	for _, f := range m {
		n += len(f.GetMetric())
	}
	return n
}

func hasLabels(s *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		found := false
		for _, l := range s.GetLabel() {
			if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// tailBuffer keeps the last max bytes of lines written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) WriteLine(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, s...)
	t.b = append(t.b, '\n')
	if len(t.b) > t.max {
		cut := len(t.b) - t.max/2
		if i := bytes.IndexByte(t.b[cut:], '\n'); i >= 0 {
			cut += i + 1
		}
		t.b = append([]byte("[...]\n"), t.b[cut:]...)
	}
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Clone(string(t.b))
}
