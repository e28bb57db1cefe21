// Package exportbench compares netsight's outputs with vmagent on the same
// series: CPU and wire bytes per 1,000 samples, and how fast a one-hour
// backlog reaches VictoriaMetrics after the receiver was down. Every process
// listens on 127.0.0.1 and is stopped when the benchmark ends. Run it with
// bench/export/run.sh (which documents the flags).
package exportbench

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/export/collectd"
	"github.com/netsight/netsight/export/delivery"
	"github.com/netsight/netsight/export/influx"
	"github.com/netsight/netsight/export/otlp"
	"github.com/netsight/netsight/export/remotewrite"
	"github.com/netsight/netsight/internal/receiver"
	"github.com/netsight/netsight/internal/testlab"
)

var (
	outage   = flag.Duration("outage", 30*time.Second, "how long VictoriaMetrics is down in the catch-up run (the issue's variant: 10m); live samples keep arriving meanwhile")
	nSeries  = flag.Int("series", 200, "series (one sample each every 5s)")
	backlog  = flag.Duration("backlog", time.Hour, "history already waiting when the outage starts")
	interval = 5 * time.Second
	poll     = 20 * time.Millisecond // how often the catch-up reads VictoriaMetrics' row counters once rows arrive
)

// pollEvery is the catch-up's polling period: 250ms while both agents are
// still waiting (their backoff), so the polling itself (in this process,
// counted in netsight's CPU) stays small; poll once the first rows arrive.
func pollEvery(draining bool) time.Duration {
	if draining {
		return poll
	}
	return 250 * time.Millisecond
}

// value is an integer, so VictoriaMetrics' decimal floats return it exactly.
func value(i int, ts int64) float64 { return float64(i*1_000_000) + float64(ts/5000%1_000_000) }

func seriesSet() []labels.Labels {
	var out []labels.Labels
	for i := 0; i < *nSeries; i++ {
		out = append(out, labels.FromStrings("__name__", fmt.Sprintf("exportbench_m%d_total", i%10),
			"i", strconv.Itoa(i), "zone", "eu-west-1a", "peer", "10.0.0."+strconv.Itoa(i%250)))
	}
	return out
}

// cpu is the CPU time (user+system) of this process.
func cpu() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the CPU time (user+system) of another process.
func procCPU(t testing.TB, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// sink counts request bytes (as sent: compressed where the protocol
// compresses) and, for remote write 1.0, samples.
type sink struct {
	bytes, samples atomic.Int64
	decode         bool
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.bytes.Add(int64(len(body)))
	if s.decode {
		raw, err := snappy.Decode(nil, body)
		var req prompb.WriteRequest
		if err == nil && req.Unmarshal(raw) == nil {
			for _, ts := range req.Timeseries {
				s.samples.Add(int64(len(ts.Samples)))
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func newDelivery(t testing.TB, name string, src delivery.Source, snd delivery.Sender, dir string, from int64, keepStale bool) *delivery.Delivery {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name+".cursor.json"), fmt.Appendf(nil, `{"acked_ms": %d}`, from-1), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := delivery.New(delivery.Options{Name: name, Dir: dir, Source: src, Sender: snd, Interval: interval, Lag: interval,
		KeepStale: keepStale, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// sender builds one output's sender pointed at url (UDP address for collectd).
func sender(t testing.TB, typ string, url string) delivery.Sender {
	t.Helper()
	o := config.Output{Name: "b", Type: typ, URL: url, Database: "d", Address: url, Interval: interval}
	var (
		s   delivery.Sender
		err error
	)
	switch typ {
	case "remote_write_v1", "remote_write_v2":
		o.Type, o.Version = "remote_write", int(typ[len(typ)-1]-'0')
		s, err = remotewrite.NewSender(o.WithDefaults(interval))
	case "influxdb":
		s, err = influx.NewSender(o.WithDefaults(interval))
	case "otlp":
		s, err = otlp.NewSender(o.WithDefaults(interval))
	case "collectd":
		s, err = collectd.NewSender(o.WithDefaults(interval))
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// udpSink counts UDP payload bytes on 127.0.0.1.
func udpSink(t testing.TB) (addr string, total func() int64) {
	l, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = l.SetReadBuffer(8 << 20)
	var n atomic.Int64
	go func() {
		buf := make([]byte, 2048)
		for {
			k, err := l.Read(buf)
			if err != nil {
				return
			}
			n.Add(int64(k))
		}
	}()
	t.Cleanup(func() { l.Close() })
	return l.LocalAddr().String(), func() int64 { time.Sleep(200 * time.Millisecond); return n.Load() }
}

// vmagent runs Debian's vmagent on 127.0.0.1 forwarding to url.
type vmagent struct {
	cmd  *exec.Cmd
	addr string
	logs bytes.Buffer
}

func startVmagent(t testing.TB, url string) *vmagent {
	t.Helper()
	bin := testlab.RequireBinary(t, "vmagent")
	v := &vmagent{addr: "127.0.0.1:" + strconv.Itoa(receiver.FreePort(t))}
	v.cmd = exec.Command(bin, "-httpListenAddr="+v.addr, "-remoteWrite.url="+url,
		"-remoteWrite.tmpDataPath="+t.TempDir(), "-loggerLevel=ERROR")
	v.cmd.Stdout, v.cmd.Stderr = &v.logs, &v.logs
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.cmd.Process.Kill(); _ = v.cmd.Wait() })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get("http://" + v.addr + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return v
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("vmagent not ready: %s", v.logs.String())
		}
	}
}

// push sends the samples of series at timestamps ts as remote write 1.0
// requests of at most 2,000 samples (encoded before the call).
func (v *vmagent) push(t testing.TB, reqs [][]byte) {
	t.Helper()
	for _, body := range reqs {
		req, _ := http.NewRequest(http.MethodPost, "http://"+v.addr+"/api/v1/write", bytes.NewReader(body))
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("Content-Type", "application/x-protobuf")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("vmagent answered %s", resp.Status)
		}
	}
}

// encodeRequests builds remote write 1.0 requests for every timestamp in ts,
// at most 2,000 samples each, time-ordered like netsight's batches.
func encodeRequests(series []labels.Labels, ts []int64) [][]byte {
	var out [][]byte
	per := max(1, 2000/len(series))
	for k := 0; k < len(ts); k += per {
		var req prompb.WriteRequest
		for i, l := range series {
			pts := prompb.TimeSeries{}
			l.Range(func(lb labels.Label) { pts.Labels = append(pts.Labels, prompb.Label{Name: lb.Name, Value: lb.Value}) })
			for _, t := range ts[k:min(k+per, len(ts))] {
				pts.Samples = append(pts.Samples, prompb.Sample{Timestamp: t, Value: value(i, t)})
			}
			req.Timeseries = append(req.Timeseries, pts)
		}
		raw, _ := req.Marshal()
		out = append(out, snappy.Encode(nil, raw))
	}
	return out
}

// vmRows is VictoriaMetrics' count of rows inserted through remote write.
func vmRows(p *receiver.Proc) int64 {
	resp, err := http.Get(p.URL("/metrics"))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), `vm_rows_inserted_total{type="promremotewrite"} `); ok {
			n, _ := strconv.ParseInt(rest, 10, 64)
			return n
		}
	}
	return 0
}

// metricValue reads one unlabelled sample from a /metrics page.
func metricValue(url, name string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, _ := strconv.ParseFloat(rest, 64)
			return v
		}
	}
	return 0
}

func timestamps(from, to int64) []int64 {
	var ts []int64
	for t := from; t <= to; t += interval.Milliseconds() {
		ts = append(ts, t)
	}
	return ts
}

type costRow struct {
	name       string
	samples    int64
	cpu        time.Duration
	bytes      int64
	throughput float64
}

func (r costRow) cpuPer1000() float64   { return r.cpu.Seconds() * 1000 / float64(r.samples) * 1000 }
func (r costRow) bytesPer1000() float64 { return float64(r.bytes) / float64(r.samples) * 1000 }

// BenchmarkExportVsVmagent is the whole comparison; run with -benchtime 1x.
func BenchmarkExportVsVmagent(b *testing.B) {
	for b.Loop() {
		run(b)
	}
}

func run(b *testing.B) {
	series := seriesSet()
	now := time.Now().Truncate(interval)
	from := now.Add(-*backlog).UnixMilli()
	ts := timestamps(from, now.UnixMilli())
	st := receiver.NewStore(b, series, value)
	for _, t := range ts {
		st.Add(b, t)
	}
	total := int64(len(ts) * len(series))
	fmt.Printf("series %d, backlog %s at %s: %d samples\n\n", len(series), *backlog, interval, total)

	// 1. Cost per 1,000 samples: each output delivers the backlog to a sink.
	var rows []costRow
	for _, typ := range []string{"remote_write_v1", "remote_write_v2", "influxdb", "otlp", "collectd"} {
		var (
			url  string
			sent func() int64
		)
		if typ == "collectd" {
			url, sent = udpSink(b)
		} else {
			sk := &sink{}
			srv := httptest.NewServer(sk)
			url, sent = srv.URL+"/write", sk.bytes.Load
			if typ == "influxdb" {
				url = srv.URL
			}
			b.Cleanup(srv.Close)
		}
		d := newDelivery(b, "b", st, sender(b, typ, url), b.TempDir(), from, strings.HasPrefix(typ, "remote_write"))
		c0, t0 := cpu(), time.Now()
		if err := d.Round(context.Background()); err != nil {
			b.Fatal(err)
		}
		el := time.Since(t0)
		rows = append(rows, costRow{name: "netsight " + typ, samples: total, cpu: cpu() - c0, bytes: sent(), throughput: float64(total) / el.Seconds()})
	}
	// vmagent forwarding the same samples (remote write 1.0 in and out).
	sk := &sink{decode: true}
	srv := httptest.NewServer(sk)
	b.Cleanup(srv.Close)
	va := startVmagent(b, srv.URL+"/write")
	reqs := encodeRequests(series, ts)
	c0, t0 := procCPU(b, va.cmd.Process.Pid), time.Now()
	va.push(b, reqs)
	for deadline := time.Now().Add(5 * time.Minute); sk.samples.Load() < total; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("vmagent forwarded %d of %d samples", sk.samples.Load(), total)
		}
	}
	el := time.Since(t0)
	vrow := costRow{name: "vmagent remote_write_v1", samples: total, cpu: procCPU(b, va.cmd.Process.Pid) - c0, bytes: sk.bytes.Load(), throughput: float64(total) / el.Seconds()}
	_ = va.cmd.Process.Kill()
	_ = va.cmd.Wait()

	fmt.Println("Cost per 1,000 samples (delivering the backlog to a sink on 127.0.0.1)")
	fmt.Printf("%-28s %12s %14s %12s %12s\n", "output", "CPU ms/1k", "bytes/1k", "CPU ratio", "bytes ratio")
	for _, r := range append(rows, vrow) {
		fmt.Printf("%-28s %12.3f %14.0f %12.2f %12.2f\n", r.name, r.cpuPer1000(), r.bytesPer1000(),
			r.cpuPer1000()/vrow.cpuPer1000(), r.bytesPer1000()/vrow.bytesPer1000())
	}
	fmt.Println("(ratios: netsight / vmagent; netsight's CPU includes reading the store and the in-process sink,")
	fmt.Println(" vmagent's includes decoding its remote write input; netsight sends one request at a time,")
	fmt.Printf(" %.0f samples/s for remote_write_v1)\n", rows[0].throughput)
	fmt.Println()

	// 2. Catch-up: both hold the backlog, VictoriaMetrics is down for
	// -outage while live samples keep coming, then it restarts.
	catchUp(b, st, series, from, ts)
}

func catchUp(b *testing.B, st *receiver.Store, series []labels.Labels, from int64, backlogTS []int64) {
	vmN := receiver.VictoriaMetrics(b)
	vmV := receiver.VictoriaMetrics(b)
	vmN.Stop()
	vmV.Stop()
	va := startVmagent(b, vmV.URL("/api/v1/write"))
	va.push(b, encodeRequests(series, backlogTS))
	// netsight's sends are timed where they happen: first and last request
	// VictoriaMetrics acknowledged.
	rw := sender(b, "remote_write_v1", vmN.URL("/api/v1/write"))
	var firstOK, lastOK atomic.Int64 // unix ns
	timed := delivery.SenderFunc(func(ctx context.Context, batch *delivery.Batch) error {
		err := rw.Send(ctx, batch)
		if err == nil {
			now := time.Now().UnixNano()
			firstOK.CompareAndSwap(0, now)
			lastOK.Store(now)
		}
		return err
	})
	d := newDelivery(b, "vm", st, timed, b.TempDir(), from, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := d.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = d.Shutdown(context.Background()) }()

	// The outage: live samples every 5s reach netsight's store and vmagent.
	last := backlogTS[len(backlogTS)-1]
	live := 0
	for end := time.Now().Add(*outage); time.Now().Before(end); time.Sleep(time.Until(time.Now().Truncate(interval).Add(interval))) {
		ts := max(time.Now().Truncate(interval).UnixMilli(), last+interval.Milliseconds())
		st.Add(b, ts)
		va.push(b, encodeRequests(series, []int64{ts}))
		last = ts
		live++
	}
	want := int64((len(backlogTS) + live) * len(series))
	fmt.Printf("Catch-up: %d samples queued (%s backlog + %d live rounds while VictoriaMetrics was down %s)\n", want, *backlog, live, *outage)

	type side struct {
		name        string
		vm          *receiver.Proc
		cpu         func() time.Duration
		restart     time.Time
		cpu0        time.Duration
		first, done time.Duration
		drain       time.Duration
	}
	sides := []*side{
		{name: "netsight remote_write_v1", vm: vmN, cpu: cpu},
		{name: "vmagent remote_write_v1", vm: vmV, cpu: func() time.Duration { return procCPU(b, va.cmd.Process.Pid) }},
	}
	// Both receivers restart at once; each side's clock starts when its
	// VictoriaMetrics answers /health.
	var wg sync.WaitGroup
	for _, s := range sides {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.vm.Start()
			s.restart, s.cpu0 = time.Now(), s.cpu()
		}()
	}
	wg.Wait()
	cpuAtDone := map[*side]time.Duration{}
	for deadline := time.Now().Add(10*time.Minute + *outage); len(cpuAtDone) < len(sides); time.Sleep(pollEvery(sides[0].first > 0 || sides[1].first > 0)) {
		if time.Now().After(deadline) {
			b.Fatalf("catch-up not finished: netsight %d, vmagent %d of %d rows", vmRows(vmN), vmRows(vmV), want)
		}
		for _, s := range sides {
			if _, ok := cpuAtDone[s]; ok {
				continue
			}
			n := vmRows(s.vm)
			if n > 0 && s.first == 0 {
				s.first = time.Since(s.restart)
			}
			if n >= want {
				s.done = time.Since(s.restart)
				cpuAtDone[s] = s.cpu() - s.cpu0
			}
		}
	}
	fmt.Printf("%-28s %16s %16s %16s %16s %12s\n", "agent", "first row after", "all rows after", "drain samples/s", "drain CPU ms/1k", "exact")
	for _, s := range sides {
		// Rows become searchable about a second after they are counted.
		wantS := st.Local(b, "exportbench_.*", from, last, nil, false)
		var diff string
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
			got, err := receiver.VMExport(context.Background(), s.vm, `{__name__=~"exportbench_.*"}`, from, last)
			if err != nil {
				diff = err.Error()
				continue
			}
			if diff = receiver.Diff(got, wantS); diff == "" {
				break
			}
		}
		exact := "yes"
		if diff != "" {
			exact = "NO"
			b.Errorf("%s: VictoriaMetrics differs from the samples sent: %s", s.name, diff)
		}
		if s == sides[0] { // netsight: the acknowledged requests' times
			s.first, s.done = time.Unix(0, firstOK.Load()).Sub(s.restart), time.Unix(0, lastOK.Load()).Sub(s.restart)
		}
		drain := s.done - s.first
		rate := fmt.Sprintf("%.0f", float64(want)/drain.Seconds())
		if drain <= 0 { // first and last row seen in one poll
			drain = pollEvery(false)
			rate = fmt.Sprintf("> %.0f", float64(want)/drain.Seconds())
		}
		s.drain = drain
		fmt.Printf("%-28s %16s %16s %16s %16.3f %12s\n", s.name, s.first.Round(time.Millisecond), s.done.Round(time.Millisecond),
			rate, cpuAtDone[s].Seconds()*1e6/float64(want), exact)
	}
	n, v := sides[0], sides[1]
	fmt.Printf("ratio netsight/vmagent: all rows after restart %.2f, drain time (first to last row) %.2f, drain CPU %.2f\n",
		n.done.Seconds()/v.done.Seconds(), n.drain.Seconds()/v.drain.Seconds(),
		cpuAtDone[n].Seconds()/cpuAtDone[v].Seconds())
	fmt.Println("(netsight: times of its first and last acknowledged request; vmagent: VictoriaMetrics' row counter")
	fmt.Println(" polled every 250ms, 20ms once rows arrive; a drain seen in one poll is printed as that poll period;")
	fmt.Println(" netsight's CPU includes this process polling both receivers)")
	fmt.Printf("vmagent pending bytes after the drain: %.0f\n", metricValue("http://"+va.addr+"/metrics", "vm_persistentqueue_bytes_pending"))
}
