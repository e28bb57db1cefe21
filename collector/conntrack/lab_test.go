package conntrack

import (
	"context"
	"fmt"
	"github.com/netsight/netsight/collector"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netsight/netsight/internal/metrictest"
	"github.com/netsight/netsight/internal/testlab"
)

// labNS returns a fresh namespace whose conntrack is active: an nft rule
// using ct makes the kernel track connections there.
func labNS(t *testing.T) *testlab.NetNS {
	t.Helper()
	if testing.Short() {
		t.Skip("lab test: runs in the full (non -short) pass")
	}
	testlab.RequireRoot(t)
	testlab.RequireBinary(t, "nft")
	testlab.RequireBinary(t, "conntrack")
	ns := testlab.NewNetNS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := ns.Run(ctx, "nft", "add table inet t; add chain inet t c { type filter hook output priority 0; }; add rule inet t c ct state established accept"); err != nil {
		t.Fatalf("nft: %v %s", err, out)
	}
	return ns
}

// holdTCP opens n TCP connections to a listener on 127.0.0.1 inside ns and
// keeps them until the test ends.
func holdTCP(t *testing.T, ns *testlab.NetNS, n int) string {
	t.Helper()
	ln, err := ns.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, n)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; i < n; i++ {
		c, err := ns.Dial(ctx, "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	for i := 0; i < n; i++ {
		select {
		case c := <-accepted:
			t.Cleanup(func() { c.Close() })
		case <-ctx.Done():
			t.Fatal("accept timed out")
		}
	}
	return ln.Addr().String()
}

func conntrackC(t *testing.T, ns *testlab.NetNS) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := ns.Run(ctx, "conntrack", "-C")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("conntrack -C output %q: %v", out, err)
	}
	return n
}

// conntrackL counts `conntrack -L` lines per "proto state" as the tool
// prints them (state lowercased), for comparison with the dump.
func conntrackL(t *testing.T, ns *testlab.NetNS) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := ns.Command(ctx, "conntrack", "-L")
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("conntrack -L: %v: %s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		key := f[0] + " " + f[2]
		if f[0] == "tcp" {
			key = "tcp " + strings.ToLower(f[3])
		}
		m[key]++
	}
	return m
}

func TestLabCountsMatchConntrackTool(t *testing.T) {
	ns := labNS(t)
	const n = 40
	holdTCP(t, ns, n)
	c, _ := New(DefaultConfig(), collector.Deps{})
	var got map[string]float64
	err := ns.Do(func() error {
		var err error
		got, err = metrictest.Gather(context.Background(), c)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := conntrackC(t, ns)
	t.Logf("netsight entries=%v conntrack -C=%d; by state=%v; stats insert_failed=%v drop=%v", got["netsight_conntrack_entries"], want, got[`netsight_conntrack_entries_by_state{family="ipv4",protocol="tcp",state="established"}`], got["netsight_conntrack_insert_failed_total"], got["netsight_conntrack_drop_total"])
	if d := int(got["netsight_conntrack_entries"]) - want; d < -2 || d > 2 {
		t.Errorf("netsight_conntrack_entries = %v, conntrack -C = %d", got["netsight_conntrack_entries"], want)
	}
	if int(got["netsight_conntrack_entries"]) < n {
		t.Errorf("entries %v < %d held connections", got["netsight_conntrack_entries"], n)
	}
	est := got[`netsight_conntrack_entries_by_state{family="ipv4",protocol="tcp",state="established"}`]
	l := conntrackL(t, ns)
	if d := int(est) - l["tcp established"]; d < -2 || d > 2 || est < n {
		t.Errorf("established by dump = %v, conntrack -L = %d, held %d", est, l["tcp established"], n)
	}
	if got[`netsight_conntrack_dump_limited{mode="skipped"}`] != 0 || got[`netsight_conntrack_dump_limited{mode="sampled"}`] != 0 {
		t.Errorf("dump limited unexpectedly: %v", got)
	}
	// The test process itself sits in the host namespace: make sure we did
	// not read the host table there.
	if got["netsight_conntrack_entries"] == 0 {
		t.Fatal("read 0 entries: namespace not honoured")
	}
}

func TestLabDumpCeiling(t *testing.T) {
	ns := labNS(t)
	holdTCP(t, ns, 30)
	for _, tc := range []struct {
		mode      string
		wantLabel string
	}{{OverLimitSkip, "skipped"}, {OverLimitSample, "sampled"}} {
		t.Run(tc.mode, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.MaxDumpEntries = 10
			cfg.OverLimit = tc.mode
			c, _ := New(cfg, collector.Deps{})
			var got map[string]float64
			if err := ns.Do(func() error { var err error; got, err = metrictest.Gather(context.Background(), c); return err }); err != nil {
				t.Fatal(err)
			}
			if v := got[fmt.Sprintf(`netsight_conntrack_dump_limited{mode=%q}`, tc.wantLabel)]; v != 1 {
				t.Errorf("dump_limited{mode=%s} = %v, want 1", tc.wantLabel, v)
			}
			est := got[`netsight_conntrack_entries_by_state{family="ipv4",protocol="tcp",state="established"}`]
			switch tc.mode {
			case OverLimitSkip:
				if est != 0 || got["netsight_conntrack_dump_entries"] != 0 {
					t.Errorf("skip mode still dumped: est=%v read=%v", est, got["netsight_conntrack_dump_entries"])
				}
			case OverLimitSample:
				if got["netsight_conntrack_dump_entries"] != 10 {
					t.Errorf("sample read %v entries, want 10", got["netsight_conntrack_dump_entries"])
				}
				if est < 25 || est > 35 {
					t.Errorf("sampled estimate of established = %v, want ~30", est)
				}
			}
		})
	}
}
