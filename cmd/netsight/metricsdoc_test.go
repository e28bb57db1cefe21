package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/netsight/netsight/internal/testlab"
)

var docNameRE = regexp.MustCompile("`((?:netsight|go|promhttp)_[a-z0-9_{},]*)`")
var docBraceRE = regexp.MustCompile(`\{([a-z0-9_,]+)\}`)

func docExpand(s string) []string {
	m := docBraceRE.FindStringSubmatchIndex(s)
	if m == nil {
		return []string{s}
	}
	var out []string
	for _, alt := range strings.Split(s[m[2]:m[3]], ",") {
		out = append(out, docExpand(s[:m[0]]+alt+s[m[1]:])...)
	}
	return out
}

// TestEveryExportedFamilyDocumented runs the real agent inside a lab
// namespace with every collector enabled (the opt-in nftables and capture
// ones too, which is safe there) and checks that each metric family it
// exports is documented in docs/metrics.md.
func TestEveryExportedFamilyDocumented(t *testing.T) {
	testlab.RequireRoot(t)
	bin := buildBinary(t)
	ns := testlab.NewNetNS(t)
	testlab.ConnectVeth(t, ns, testlab.NewNetNS(t)) // an interface with ethtool statistics for the nic collector
	port := ns.StartSinkServer(t, "127.0.0.1:0").Addr().Port()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`server:
  listen: 127.0.0.1:0
data_dir: %s
collectors:
  nftables:
    enabled: true
  capture:
    enabled: true
  probe:
    period: 2s
    targets:
      - {name: lo-icmp, address: 127.0.0.1, interval: 200ms, timeout: 1s}
      - {name: lo-tcp, address: 127.0.0.1, protocol: tcp, port: %d, interval: 200ms, timeout: 1s}
`, dir, port)
	cfgPath := filepath.Join(dir, "netsight.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := ns.Command(ctx, bin, "run", "--config", cfgPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	addrCh := make(chan string, 1)
	var logs strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if m := servingRE.FindStringSubmatch(sc.Text()); m != nil {
				addrCh <- m[1]
			}
		}
	}()
	var addr string
	select {
	case addr = <-addrCh:
	case <-ctx.Done():
		t.Fatal("agent did not start")
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) { return ns.Dial(ctx, network, a) },
	}}
	// Wait for a probe period and a few collector rounds so that every
	// family has appeared.
	time.Sleep(5 * time.Second)
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	families := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if f, ok := strings.CutPrefix(sc.Text(), "# TYPE "); ok {
			families[strings.Fields(f)[0]] = true
		}
	}
	data, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range docNameRE.FindAllStringSubmatch(string(data), -1) {
		for _, n := range docExpand(m[1]) {
			documented[n] = true
		}
	}
	var missing []string
	seen := map[string]bool{}
	for f := range families {
		seen[strings.SplitN(strings.TrimPrefix(f, "netsight_"), "_", 2)[0]] = true
		if strings.HasPrefix(f, "go_") {
			continue // the Go runtime collector's families are documented as go_*
		}
		if !documented[f] {
			missing = append(missing, f)
		}
	}
	for _, sub := range []string{"collector", "conntrack", "sockets", "nic", "nftables", "capture", "probe", "store"} {
		if !seen[sub] {
			t.Errorf("no netsight_%s_* family exported: collector not running?\n%s", sub, logs.String())
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d exported families are not in docs/metrics.md:\n%s", len(missing), strings.Join(missing, "\n"))
	}
	t.Logf("%d families exported, all documented", len(families))
}
