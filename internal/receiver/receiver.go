package receiver

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netsight/netsight/internal/testlab"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Proc is a back-end process that can be stopped and started again on the
// same port and data directory.
type Proc struct {
	t      testing.TB
	name   string
	args   []string
	Addr   string // 127.0.0.1:port
	Dir    string
	health string // path answering 2xx when ready

	mu   sync.Mutex
	cmd  *exec.Cmd
	logs *strings.Builder
}

// URL is http://Addr + path.
func (p *Proc) URL(path string) string { return "http://" + p.Addr + path }

// Start (re)starts the process and waits until it answers its health path.
func (p *Proc) Start() {
	p.t.Helper()
	p.mu.Lock()
	cmd := exec.Command(p.name, p.args...)
	var logs strings.Builder
	cmd.Stdout = &lockedWriter{w: &logs}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.cmd, p.logs = cmd, &logs
	p.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.URL(p.health))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatalf("%s did not become ready on %s:\n%s", p.name, p.Addr, p.Logs())
}

// Stop ends the process (SIGTERM, then SIGKILL after 20s) and waits for it.
func (p *Proc) Stop() {
	p.mu.Lock()
	cmd := p.cmd
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Logs returns what the process printed.
func (p *Proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.logs == nil {
		return ""
	}
	return p.logs.String()
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func newProc(t testing.TB, bin string, health string, args func(addr, dir string) []string) *Proc {
	t.Helper()
	path := testlab.RequireBinary(t, bin)
	dir := t.TempDir()
	addr := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	p := &Proc{t: t, name: path, Addr: addr, Dir: dir, health: health, args: args(addr, dir)}
	t.Cleanup(p.Stop)
	p.Start()
	return p
}

// VictoriaMetrics starts Debian's victoria-metrics on 127.0.0.1 with
// caching and the latency offset off, so exports see fresh samples.
func VictoriaMetrics(t testing.TB, extra ...string) *Proc {
	return newProc(t, "victoria-metrics", "/health", func(addr, dir string) []string {
		return append([]string{"-storageDataPath=" + filepath.Join(dir, "data"), "-httpListenAddr=" + addr,
			"-search.latencyOffset=0s", "-search.disableCache", "-retentionPeriod=100y", "-loggerLevel=ERROR"}, extra...)
	})
}

// Prometheus starts Debian's prometheus on 127.0.0.1 with the remote-write
// receiver on and no scrape targets.
func Prometheus(t testing.TB) *Proc {
	return newProc(t, "prometheus", "/-/ready", func(addr, dir string) []string {
		cfg := filepath.Join(dir, "prometheus.yml")
		if err := os.WriteFile(cfg, []byte("global: {}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{"--config.file=" + cfg, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + addr, "--web.enable-remote-write-receiver", "--log.level=warn"}
	})
}

// Key names one sample: the series (labels in Prometheus text form) and
// the timestamp in ms.
type Key struct {
	Series string
	T      int64
}

// Samples maps a sample to its value.
type Samples map[Key]float64

// VMExport reads raw samples from VictoriaMetrics' /api/v1/export for
// match in [start, end] (ms).
func VMExport(ctx context.Context, p *Proc, match string, start, end int64) (Samples, error) {
	q := url.Values{"match[]": {match}, "start": {msec(start)}, "end": {msec(end)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL("/api/v1/export?"+q.Encode()), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("export: %s: %s", resp.Status, b)
	}
	out := Samples{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var line struct {
			Metric     map[string]string `json:"metric"`
			Values     []any             `json:"values"`
			Timestamps []int64           `json:"timestamps"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, fmt.Errorf("export line: %w", err)
		}
		s := SeriesString(line.Metric)
		for i, ts := range line.Timestamps {
			v, err := number(line.Values[i])
			if err != nil {
				return nil, err
			}
			out[Key{s, ts}] = v
		}
	}
	return out, sc.Err()
}

// PromRaw reads raw samples from Prometheus: query `match[range]` at end.
func PromRaw(ctx context.Context, p *Proc, match string, start, end int64) (Samples, error) {
	rng := (end-start)/1000 + 1
	q := url.Values{"query": {fmt.Sprintf("%s[%ds]", match, rng)}, "time": {msec(end)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL("/api/v1/query?"+q.Encode()), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query: %s", r.Error)
	}
	out := Samples{}
	for _, s := range r.Data.Result {
		name := SeriesString(s.Metric)
		for _, v := range s.Values {
			ts, _ := v[0].(float64)
			f, err := number(v[1])
			if err != nil {
				return nil, err
			}
			t := int64(ts*1000 + 0.5)
			if t < start {
				continue
			}
			out[Key{name, t}] = f
		}
	}
	return out, nil
}

func number(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case string:
		return strconv.ParseFloat(x, 64)
	}
	return 0, fmt.Errorf("value %v (%T) is not a number", v, v)
}

func msec(ms int64) string { return strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64) }

// SeriesString renders labels like labels.Labels.String: {a="1", b="2"}
// with __name__ first as the metric name.
func SeriesString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != "__name__" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(m["__name__"])
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	b.WriteByte('}')
	return b.String()
}

// Diff describes how got differs from want (empty when equal): counts and
// the first few differing samples.
func Diff(got, want Samples) string {
	var b strings.Builder
	missing, extra, wrong := 0, 0, 0
	for k, v := range want {
		g, ok := got[k]
		switch {
		case !ok:
			if missing++; missing <= 5 {
				fmt.Fprintf(&b, "missing %s @%d = %v\n", k.Series, k.T, v)
			}
		case g != v && !(g != g && v != v):
			if wrong++; wrong <= 5 {
				fmt.Fprintf(&b, "wrong %s @%d: got %v want %v\n", k.Series, k.T, g, v)
			}
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			if extra++; extra <= 5 {
				fmt.Fprintf(&b, "extra %s @%d = %v\n", k.Series, k.T, v)
			}
		}
	}
	if missing+extra+wrong == 0 {
		return ""
	}
	return fmt.Sprintf("%d missing, %d extra, %d wrong of %d wanted\n%s", missing, extra, wrong, len(want), b.String())
}
