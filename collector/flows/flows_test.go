package flows

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/internal/metrictest"
	"github.com/netsight/netsight/internal/testlab"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mod     func(c *Config)
		wantErr string
	}{
		{name: "defaults", mod: func(*Config) {}},
		{name: "sockdiag", mod: func(c *Config) { c.Backend = "sockdiag" }},
		{name: "bad backend", mod: func(c *Config) { c.Backend = "pcap" }, wantErr: `backend: must be auto, ebpf or sockdiag; got "pcap"`},
		{name: "ring not power of two", mod: func(c *Config) { c.RingBufferBytes = 5000 }, wantErr: "ring_buffer_bytes: must be a power of two"},
		{name: "table too small", mod: func(c *Config) { c.MaxConnections = 1 }, wantErr: "max_connections: must be between 16 and 4194304, got 1"},
		{name: "top_k", mod: func(c *Config) { c.TopK = 0 }, wantErr: "top_k: must be between 1 and 1000"},
		{name: "poll", mod: func(c *Config) { c.PollInterval = time.Millisecond }, wantErr: "poll_interval: must be at least 10ms"},
		{name: "interval", mod: func(c *Config) { c.Interval = time.Millisecond }, wantErr: "interval: must be at least 100ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(c)
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestConfigOverride: --flows.backend maps to collectors.flows.backend and is
// validated with its path.
func TestConfigOverride(t *testing.T) {
	cfg, err := config.Load(nil, map[string]string{"collectors.flows.backend": "sockdiag"})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Collectors["flows"].(*Config).Backend; got != "sockdiag" {
		t.Errorf("backend %q", got)
	}
	_, err = config.Load(nil, map[string]string{"collectors.flows.backend": "bogus"})
	if err == nil || !strings.Contains(err.Error(), "collectors.flows.backend") {
		t.Errorf("err %v, want one naming collectors.flows.backend", err)
	}
	_, err = config.Load([]byte("collectors:\n  flows:\n    ring_bufer_bytes: 4096\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "collectors.flows.ring_bufer_bytes") {
		t.Errorf("err %v, want unknown field", err)
	}
}

// TestMetricsLint runs the real sock_diag back end on loopback (no root
// needed for dumps) and checks the exposition with the Prometheus linter and
// the documented worst-case series count.
func TestMetricsLint(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Backend = BackendSockDiag
	c, err := New(cfg, collector.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := (*testlab.NetNS)(nil).StartEchoServer(t, "127.0.0.1:0")
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	metrictest.Lint(t, c)
	n := testutil.CollectAndCount(metrictest.AsPrometheus(c))
	// Worst case (docs/collectors/flows.md): 2 directions x 13 per-direction
	// series (+ histograms count as one each here) + 5 table/backend series
	// + 4 x (top_k+1) top series + back end self-metrics.
	if max := 2*13 + 5 + 4*(cfg.TopK+1) + 7; n > max {
		t.Errorf("%d series, documented worst case %d", n, max)
	}
	if got := c.Table().Flows(flow.Filter{Port: srv.Addr().Port(), Direction: flow.DirClient}); len(got) != 1 {
		t.Errorf("loopback client flow: %+v", got)
	}
}

// TestLabAutoFallback: in auto mode, an eBPF attach failure falls back to
// sock_diag.
func TestLabAutoFallback(t *testing.T) {
	testlab.RequireRoot(t)
	cfg := DefaultConfig()
	cfg.CgroupPath = t.TempDir() // not a cgroup: attach fails
	c, err := New(cfg, collector.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Backend() != BackendSockDiag {
		t.Errorf("backend %s, want sockdiag", c.Backend())
	}
	cfg.Backend = BackendEBPF
	if _, err := New(cfg, collector.Deps{}); err == nil || !strings.Contains(err.Error(), "attaching sock_ops") {
		t.Errorf("ebpf with a bad cgroup: %v", err)
	}
}

// TestLabSockdiagCollector: the collector with the sock_diag back end sees
// short loopback connections closed, through destroy notifications.
func TestLabSockdiagCollector(t *testing.T) {
	testlab.RequireRoot(t)
	c := startCollector(t, BackendSockDiag)
	time.Sleep(100 * time.Millisecond)
	srv := (*testlab.NetNS)(nil).StartEchoServer(t, "127.0.0.1:0")
	res, err := (*testlab.NetNS)(nil).ShortConns(context.Background(), testlab.ShortConnsConfig{Target: srv.Addr(), Count: 50, Bytes: 500})
	if err != nil {
		t.Fatal(err)
	}
	ports := map[netip.AddrPort]bool{}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		ports[r.Local] = true
	}
	deadline := time.Now().Add(10 * time.Second)
	var n int
	for time.Now().Before(deadline) && n < len(ports) {
		n = 0
		for _, r := range c.Table().Flows(flow.Filter{Port: srv.Addr().Port(), Direction: flow.DirClient}) {
			if r.Closed && ports[r.Local] && r.BytesSent >= 501 {
				n++
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n != len(ports) {
		t.Errorf("closed client flows with bytes: %d, want %d", n, len(ports))
	}
}

// TestLabNoCapabilities runs this test binary again as nobody with no
// capabilities: auto must fall back to sock_diag, ebpf must be "not
// supported" (the agent keeps running with the collector down).
func TestLabNoCapabilities(t *testing.T) {
	if os.Getenv("FLOWS_NOCAPS_CHILD") == "1" {
		noCapsChild(t)
		return
	}
	testlab.RequireRoot(t)
	setpriv := testlab.RequireBinary(t, "setpriv")
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
		os.Args[0], "-test.run=^TestLabNoCapabilities$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "FLOWS_NOCAPS_CHILD=1")
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil {
		t.Fatalf("child failed: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestLabNoCapabilities") {
		t.Fatal("child did not run the check")
	}
}

func noCapsChild(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Fatal("child still runs as root")
	}
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	c, err := New(DefaultConfig(), collector.Deps{Logger: logger})
	if err != nil {
		t.Fatalf("auto without capabilities: %v", err)
	}
	defer c.Close()
	if c.Backend() != BackendSockDiag || !strings.Contains(logs.String(), "falling back to sock_diag") {
		t.Errorf("backend %s, logs %q", c.Backend(), logs.String())
	}
	if err := c.Refresh(context.Background()); err != nil {
		t.Errorf("sock_diag refresh as nobody: %v", err)
	}
	cfg := DefaultConfig()
	cfg.Backend = BackendEBPF
	_, err = New(cfg, collector.Deps{Logger: logger})
	if !errors.Is(err, collector.ErrNotSupported) || !strings.Contains(err.Error(), "missing capability CAP_BPF") {
		t.Errorf("ebpf without capabilities: %v, want ErrNotSupported naming CAP_BPF", err)
	}
	t.Logf("ebpf error: %v", err)
}
