package store_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/netsight/netsight/internal/testlab"
	"github.com/netsight/netsight/store"
)

// hostileQuery is the query of issue 11: a 7 day subquery at 1 ms
// resolution over every series (604.8 million steps).
const hostileQuery = `max_over_time(rate({__name__=~".+"}[5m])[7d:1ms])`

// backfillHour writes an hour of history for n counters (one sample every
// 5 s, 720 per series) into the TSDB the agent will open in dataDir, as if
// the agent had been running for an hour.
func backfillHour(t *testing.T, dataDir string, n int) {
	t.Helper()
	s, err := store.Open(store.Options{Dir: filepath.Join(dataDir, store.SubDir), Gatherer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(-2 * time.Second).Truncate(time.Second)
	start := end.Add(-time.Hour)
	lset := make([]labels.Labels, n)
	for i := range lset {
		lset[i] = labels.FromStrings("__name__", "netsight_backfill_bytes_total",
			"device", "eth"+strconv.Itoa(i%8), "peer", "10.0."+strconv.Itoa(i/250)+"."+strconv.Itoa(i%250))
	}
	for ts := start; !ts.After(end); ts = ts.Add(5 * time.Second) {
		app := s.DB().Appender(context.Background())
		for i, l := range lset {
			if _, err := app.Append(0, l, ts.UnixMilli(), ts.Sub(start).Seconds()*float64(1000+i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// memWatch samples a process's RSS until stopped.
type memWatch struct {
	pid  int
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	peak int64 // max of VmHWM seen
	last int64
}

func watchRSS(pid int) *memWatch {
	w := &memWatch{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if cur, hwm, err := procRSS(pid); err == nil {
				w.mu.Lock()
				w.peak = max(w.peak, hwm, cur)
				w.last = cur
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *memWatch) Stop() (peak, last int64) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak, w.last
}

type hostileOutcome struct {
	status int
	took   time.Duration
	body   string
	err    error
}

// TestHostileQueries is issue 11's acceptance test: an agent (the real
// binary, in a memory-limited cgroup) with an hour of history for 300 series
// gets eight concurrent copies of hostileQuery. Each must get an error or a
// bounded answer within 30 s, a trivial query must answer within 1 s
// throughout, /metrics must keep answering, and the agent must stay alive:
// under a 1 GiB cgroup its RSS stays under 300 MB, under a 512 MiB cgroup
// (the shipped unit's MemoryMax) it is not OOM-killed.
func TestHostileQueries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary in a cgroup: skipped with -short")
	}
	testlab.RequireRoot(t)
	bin := buildNetsight(t)
	for _, tc := range []struct {
		name    string
		limit   int64
		maxPeak int64 // 0: only "not killed"
	}{
		{"rss_under_300MB", 1 << 30, 300 << 20},
		{"memory_max_512M", 512 << 20, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limit := tc.limit
			// For measuring an unfixed build: NETSIGHT_HOSTILE_MEMCG_BYTES
			// raises the safety net (the cgroup stays in place).
			if v, err := strconv.ParseInt(os.Getenv("NETSIGHT_HOSTILE_MEMCG_BYTES"), 10, 64); err == nil && v > 0 {
				limit = v
			}
			cg := testlab.NewCgroup(t, limit)
			dataDir := t.TempDir()
			backfillHour(t, dataDir, 300)
			p := startCmd(t, cgCommand(t, cg, bin, "run", "--listen", "127.0.0.1:0", "--data-dir", dataDir,
				"--set", "store.scrape_interval=1s"))
			pid := p.cmd.Process.Pid
			// The agent took its soft memory limit from the cgroup.
			wantLog := fmt.Sprintf(`msg="soft memory limit set" source="cgroup memory limit" gomemlimit_bytes=%d cgroup_limit_bytes=%d`,
				int64(float64(limit)*0.85), limit)
			if !strings.Contains(p.logs(), wantLog) {
				t.Errorf("no %q in the start-up log:\n%s", wantLog, tail(p.logs(), 20))
			}

			// Baseline: the history is there.
			r := query(t, p.base, "/api/v1/query", url.Values{"query": {`count(count_over_time(netsight_backfill_bytes_total[1h]))`}})
			if len(r.Data.Result) != 1 || r.Data.Result[0].Value[1] != "300" {
				t.Fatalf("backfilled history not visible: %+v", r.Data.Result)
			}
			_, base0, _ := procRSS(pid)
			w := watchRSS(pid)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// Light traffic throughout: a trivial query every 250 ms and
			// /metrics every second, each with its own latency record.
			var (
				lmu                sync.Mutex
				trivialMax, metMax time.Duration
				trivialN, metricsN int
				trivialErr, metErr []string
				wg                 sync.WaitGroup
				light              = &http.Client{Timeout: 10 * time.Second}
				trivialQ           = url.Values{"query": {`netsight_store_head_series`}}.Encode()
			)
			probe := func(path string, every time.Duration, maxp *time.Duration, n *int, errs *[]string) {
				defer wg.Done()
				tk := time.NewTicker(every)
				defer tk.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-tk.C:
					}
					start := time.Now()
					resp, err := light.Get(p.base + path)
					var code int
					if err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						code = resp.StatusCode
					}
					took := time.Since(start)
					lmu.Lock()
					*n++
					*maxp = max(*maxp, took)
					if err != nil || code != 200 {
						*errs = append(*errs, fmt.Sprintf("%s after %s: %d %v", path, took.Round(time.Millisecond), code, err))
					}
					lmu.Unlock()
				}
			}
			wg.Add(2)
			go probe("/api/v1/query?"+trivialQ, 250*time.Millisecond, &trivialMax, &trivialN, &trivialErr)
			go probe("/metrics", time.Second, &metMax, &metricsN, &metErr)

			heavy := &http.Client{Timeout: 40 * time.Second}
			// The eight copies, plus heavy queries just inside the limits
			// that really run (and queue for the heavy lane).
			queries := []string{hostileQuery, hostileQuery, hostileQuery, hostileQuery,
				hostileQuery, hostileQuery, hostileQuery, hostileQuery,
				`max_over_time(rate({__name__=~".+"}[5m])[7d:1m])`,
				`max_over_time(rate({__name__=~".+"}[5m])[1h:1s])`,
				`max_over_time(rate({__name__=~".+"}[5m])[1h:1s])`,
				`quantile_over_time(0.9, {__name__=~"netsight_backfill.+"}[1h])`,
			}
			out := make([]hostileOutcome, len(queries))
			var hwg sync.WaitGroup
			for i := range out {
				hwg.Add(1)
				go func() {
					defer hwg.Done()
					start := time.Now()
					resp, err := heavy.PostForm(p.base+"/api/v1/query", url.Values{"query": {queries[i]}})
					o := hostileOutcome{err: err}
					if err == nil {
						b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
						resp.Body.Close()
						o.status = resp.StatusCode
						o.body = string(b)
					}
					o.took = time.Since(start)
					out[i] = o
				}()
			}
			hwg.Wait()
			// Keep the light probes running a little after the storm.
			time.Sleep(2 * time.Second)
			cancel()
			wg.Wait()
			peak, last := w.Stop()

			alive := true
			select {
			case <-p.done:
				alive = false
			default:
			}
			t.Logf("cgroup limit %d MiB: baseline RSS %.0f MB, peak RSS %.0f MB, after %.0f MB, cgroup peak %.0f MB, oom kills %d",
				limit>>20, mb(base0), mb(peak), mb(last), mb(cgMemory(cg).Peak), cgMemory(cg).OOMKills)
			for i, o := range out {
				body := o.body
				if len(body) > 300 {
					body = body[:300] + "..."
				}
				t.Logf("query %d %s: status %d in %s: %s %v", i, queries[i], o.status, o.took.Round(time.Millisecond), body, o.err)
				if o.err != nil || o.took > 30*time.Second {
					t.Errorf("query %d: no answer within 30 s (took %s, err %v)", i, o.took.Round(time.Millisecond), o.err)
				}
			}
			t.Logf("trivial query: %d requests, slowest %s; /metrics: %d requests, slowest %s",
				trivialN, trivialMax.Round(time.Millisecond), metricsN, metMax.Round(time.Millisecond))
			if !alive || cgMemory(cg).OOMKills > 0 {
				t.Fatalf("agent died (alive=%v, oom kills %d):\n%s", alive, cgMemory(cg).OOMKills, tail(p.logs(), 20))
			}
			if trivialMax > time.Second || len(trivialErr) > 0 {
				t.Errorf("trivial query slowest %s (want < 1 s), failures: %v", trivialMax, trivialErr)
			}
			if len(metErr) > 0 || metricsN == 0 {
				t.Errorf("/metrics failures: %v", metErr)
			}
			if tc.maxPeak > 0 && peak > tc.maxPeak {
				t.Errorf("peak RSS %.0f MB, want < %.0f MB", mb(peak), mb(tc.maxPeak))
			}
		})
	}
}

func mb(n int64) float64 { return float64(n) / 1e6 }

func tail(s string, n int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > n {
		parts = parts[len(parts)-n:]
	}
	return strings.Join(parts, "\n")
}

// TestSlowReaders: ten clients request a large query_range and never read
// the answer. The answers being written are bounded by the write budget
// (3 x store.query.max_response_bytes; the rest get 503), the server's
// write timeout closes the stuck connections, and RSS stays bounded
// throughout. Before the fix each client pinned its whole answer for as
// long as it kept the connection open.
func TestSlowReaders(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary in a cgroup: skipped with -short")
	}
	testlab.RequireRoot(t)
	bin := buildNetsight(t)
	cg := testlab.NewCgroup(t, 1<<30)
	dataDir := t.TempDir()
	backfillHour(t, dataDir, 300)
	const writeTimeout = 8 * time.Second
	p := startCmd(t, cgCommand(t, cg, bin, "run", "--listen", "127.0.0.1:0", "--data-dir", dataDir,
		"--set", "store.scrape_interval=1s", "--set", "store.query.timeout=5s", "--set", "store.query.queue_timeout=1s",
		"--set", "server.write_timeout="+writeTimeout.String()))
	pid := p.cmd.Process.Pid
	end := time.Now().Truncate(time.Second)
	form := url.Values{"query": {`netsight_backfill_bytes_total`}, "step": {"2"},
		"start": {strconv.FormatInt(end.Add(-time.Hour).Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)}}.Encode()

	// The full answer, read normally.
	resp, err := http.Post(p.base+"/api/v1/query_range", "application/x-www-form-urlencoded", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	full, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || full < 5<<20 {
		t.Fatalf("reference query: status %d, %d bytes (want a large answer)", resp.StatusCode, full)
	}
	_, base0, _ := procRSS(pid)
	w := watchRSS(pid)
	socks0 := countSockets(t, pid)

	host := strings.TrimPrefix(p.base, "http://")
	type client struct {
		conn  net.Conn
		start time.Time
	}
	var clients []client
	for range 10 {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.(*net.TCPConn).SetReadBuffer(4096)
		req := "POST /api/v1/query_range HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n" +
			"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " + strconv.Itoa(len(form)) + "\r\n\r\n" + form
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, client{c, time.Now()})
		defer c.Close()
	}
	time.Sleep(time.Second)
	socksDuring := countSockets(t, pid)
	// Nobody reads until the write timeout has passed: by then the agent
	// has closed every one of these connections. (The client may see the
	// FIN late: the kernel still trickles the send buffer to a receiver
	// that advertised a zero window, with backed-off probes, so the check
	// is on the agent's side: its socket descriptors.)
	time.Sleep(writeTimeout + 2*time.Second)
	socksAfter := countSockets(t, pid)
	var refused, partial int
	for i, c := range clients {
		_ = c.conn.SetReadDeadline(time.Now().Add(time.Second))
		b, _ := io.ReadAll(c.conn)
		status, _, _ := strings.Cut(string(b[:min(len(b), 64)]), "\r\n")
		switch {
		case strings.Contains(status, " 503 "):
			refused++
		case strings.Contains(status, " 200 ") && int64(len(b)) < full:
			partial++
		default:
			t.Errorf("client %d: %q, %d bytes", i, status, len(b))
		}
	}
	peak, last := w.Stop()
	t.Logf("full answer %.1f MB; %d answers being written, %d refused (write budget); agent sockets before %d, during %d, %s after the requests %d; RSS baseline %.0f MB, peak %.0f MB, after %.0f MB",
		mb(full), partial, refused, socks0, socksDuring, time.Since(clients[0].start).Round(time.Second), socksAfter, mb(base0), mb(peak), mb(last))
	// Refused clients are answered and closed at once (Connection: close);
	// every client whose answer was being written holds a socket.
	if socksDuring < socks0+partial {
		t.Errorf("only %d sockets during the test (baseline %d, %d answers being written): the clients were not connected",
			socksDuring, socks0, partial)
	}
	if socksAfter > socks0+1 {
		t.Errorf("agent still holds %d sockets %s after the requests (baseline %d): the write timeout did not close the stuck connections",
			socksAfter, writeTimeout+3*time.Second, socks0)
	}
	if partial == 0 || refused == 0 {
		t.Errorf("want some answers written and some refused by the write budget: %d written, %d refused", partial, refused)
	}
	if peak > 300<<20 {
		t.Errorf("peak RSS %.0f MB with ten stuck readers, want < 300 MB", mb(peak))
	}
	// The agent still answers.
	r := query(t, p.base, "/api/v1/query", url.Values{"query": {`netsight_store_head_series`}})
	if len(r.Data.Result) != 1 {
		t.Errorf("query after the slow readers: %+v", r)
	}
}

// countSockets counts the socket descriptors a process holds.
func countSockets(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// cgCommand returns a command that runs name inside cg from its first
// instruction.
func cgCommand(t *testing.T, cg *testlab.Cgroup, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := cg.Wrap(cmd); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// cgMemory is the cgroup's memory accounting now (zero on a read error).
func cgMemory(cg *testlab.Cgroup) testlab.CgroupMemory {
	m, _ := cg.Memory()
	return m
}

// procRSS is a process's current and peak resident set size in bytes.
func procRSS(pid int) (cur, peak int64, err error) {
	s, err := testlab.ReadProcStats(pid)
	return s.RSS, s.PeakRSS, err
}
