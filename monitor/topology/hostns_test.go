package topology

import (
	"context"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/internal/testlab"
)

// IMDS is asked from the network namespace of PID 1 (under paths.procfs)
// when the agent is in another one: here a test namespace plays the host
// (a procfs fixture whose 1/ns/net is that namespace), with an IMDSv2
// server on its own loopback, which the test's namespace cannot reach.
func TestIMDSFromHostNetNS(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test: skipped with -short")
	}
	testlab.RequireRoot(t)
	ns := testlab.NewNetNS(t)
	ln, err := ns.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: &imdsServer{}, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String()

	procfs := t.TempDir()
	if err := os.MkdirAll(filepath.Join(procfs, "1", "ns"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(testlab.NetnsDir, ns.Name), filepath.Join(procfs, "1", "ns", "net")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := FetchIMDS(ctx, url, 300*time.Millisecond); err == nil {
		t.Fatal("the namespace's loopback answered from the test's own namespace: the test proves nothing")
	}
	st := (&Resolver{}).Load(ctx, Options{
		Config:    config.Topology{IMDS: "on", IMDSEndpoint: url, Kubernetes: "off"},
		ProcFS:    procfs,
		Timeout:   2 * time.Second,
		HostAddrs: func() ([]netip.Addr, error) { return nil, nil },
	})
	if st[1].State != "ok" || !strings.Contains(st[1].Detail, "host's network namespace") {
		t.Errorf("imds status %+v, want ok from the host's namespace", st[1])
	}
}
