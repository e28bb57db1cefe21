package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/netsight/netsight/internal/receiver"
)

// exportMatch selects series that exist from the first gather to the last
// (no churn, so no staleness markers) and whose values have at most 15
// significant digits (VictoriaMetrics stores decimals).
const exportMatch = `go_goroutines|go_memstats_.*_bytes|process_.*`

// TestRemoteWriteKill9DuringOutage runs the real binary with a
// remote_write output to VictoriaMetrics: the receiver goes down, netsight
// is killed with SIGKILL during the outage and started again, then the
// receiver comes back. VictoriaMetrics ends up with exactly netsight's own
// samples (so no gap beyond the seconds netsight itself was dead).
func TestRemoteWriteKill9DuringOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary and victoria-metrics: runs without -short")
	}
	vm := receiver.VictoriaMetrics(t)
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	cfg := fmt.Sprintf(`server: {listen: "127.0.0.1:0"}
store: {scrape_interval: 1s}
collectors:
  flows: {enabled: false}
  capture: {enabled: false}
  probe: {enabled: false}
  nic: {enabled: false}
  sockets: {enabled: false}
  conntrack: {enabled: false}
  nftables: {enabled: false}
  drops: {enabled: false}
  netstat: {enabled: false}
outputs:
  - {name: vm, type: remote_write, url: "%s", match: ["%s"]}
`, vm.URL("/api/v1/write"), exportMatch)
	cfgPath := filepath.Join(dir, "netsight.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p := startAgent(t, "--config", cfgPath, "--data-dir", dataDir)
	p.waitAddr(t)
	p.waitLog(t, "output started")
	time.Sleep(6 * time.Second)
	vm.Stop()
	time.Sleep(10 * time.Second)
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p = startAgent(t, "--config", cfgPath, "--data-dir", dataDir)
	addr := p.waitAddr(t)
	time.Sleep(10 * time.Second)
	vm.Start()
	// Wait until the output has caught up (lag of a few intervals).
	lagRE := regexp.MustCompile(`(?m)^netsight_export_lag_seconds\{output="vm"\} (\S+)$`)
	caught := false
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		_, _, body := get(t, "http://"+addr+"/metrics", nil)
		if m := lagRE.FindStringSubmatch(body); m != nil {
			if lag, _ := strconv.ParseFloat(m[1], 64); lag < 4 {
				caught = true
				break
			}
		}
	}
	if !caught {
		t.Fatalf("output did not catch up:\n%s", p.Logs())
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-p.done; err != nil {
		t.Fatalf("netsight exit: %v\n%s", err, p.Logs())
	}
	var cur struct {
		AckedMs int64 `json:"acked_ms"`
	}
	data, err := os.ReadFile(filepath.Join(dataDir, "export", "vm.cursor.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &cur); err != nil {
		t.Fatal(err)
	}
	from := start.Add(-time.Minute).UnixMilli()
	want := localSamples(t, filepath.Join(dataDir, "tsdb"), from, cur.AckedMs)
	if len(want) < 100 {
		t.Fatalf("netsight stored only %d samples", len(want))
	}
	var diff string
	var got receiver.Samples
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		got, err = receiver.VMExport(context.Background(), vm, `{__name__=~"`+exportMatch+`"}`, from, cur.AckedMs)
		if err != nil {
			diff = err.Error()
			continue
		}
		if diff = receiver.Diff(got, want); diff == "" {
			break
		}
	}
	if diff != "" {
		t.Fatalf("VictoriaMetrics differs from netsight's store:\n%s", diff)
	}
	t.Logf("%d samples in VictoriaMetrics equal netsight's store across an outage with kill -9", len(got))
}

// localSamples reads netsight's store (read-only, after it stopped).
func localSamples(t *testing.T, dir string, from, to int64) receiver.Samples {
	t.Helper()
	db, err := tsdb.OpenDBReadOnly(dir, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := db.Querier(from, to)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	out := receiver.Samples{}
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", exportMatch))
	var it chunkenc.Iterator
	for ss.Next() {
		it = ss.At().Iterator(it)
		name := receiver.SeriesString(ss.At().Labels().Map())
		for it.Next() == chunkenc.ValFloat {
			ts, v := it.At()
			if value.IsStaleNaN(v) {
				t.Errorf("staleness marker in %s: pick series without churn", name)
			}
			out[receiver.Key{Series: name, T: ts}] = v
		}
	}
	if err := ss.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOutputFailureKeepsAgent: an output that cannot be built (a CA file
// that holds no certificate) is logged and exported as
// netsight_export_up 0; the agent runs on.
func TestOutputFailureKeepsAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary: runs without -short")
	}
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`server: {listen: "127.0.0.1:0"}
collectors:
  flows: {enabled: false}
  capture: {enabled: false}
  probe: {enabled: false}
outputs:
  - {name: bad, type: remote_write, url: "https://127.0.0.1:9/api/v1/write", tls: {ca_file: %q}}
`, ca)
	cfgPath := filepath.Join(dir, "netsight.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startAgent(t, "--config", cfgPath, "--data-dir", filepath.Join(dir, "data"))
	addr := p.waitAddr(t)
	p.waitLog(t, "output not started")
	_, _, body := get(t, "http://"+addr+"/metrics", nil)
	if !regexp.MustCompile(`(?m)^netsight_export_up\{output="bad"\} 0$`).MatchString(body) {
		t.Errorf("no netsight_export_up{output=\"bad\"} 0 in /metrics")
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-p.done; err != nil {
		t.Fatalf("agent exit: %v\n%s", err, p.Logs())
	}
}
