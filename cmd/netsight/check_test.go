package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckUsesConfigPaths points paths.procfs, paths.sysfs and
// paths.cgroupfs at fixture trees: every host check reads them, not /proc,
// /sys or /sys/fs/cgroup (no root needed).
func TestCheckUsesConfigPaths(t *testing.T) {
	proc, sys, cg := t.TempDir(), t.TempDir(), t.TempDir()
	for p, content := range map[string]string{
		"net/tcp":        "  sl  local_address rem_address\n",
		"self/status":    "CapEff:\t0000000000003000\n",
		"self/mountinfo": "30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n",
	} {
		full := filepath.Join(proc, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out, errb bytes.Buffer
	code := runMain(context.Background(), []string{"check", "--json",
		"--set", "paths.procfs=" + proc, "--set", "paths.sysfs=" + sys, "--set", "paths.cgroupfs=" + cg}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	var rep struct {
		Results []struct{ Check, Verdict, Detail string }
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	want := map[string]string{
		"procfs":       proc + " mounted",
		"btf":          "no " + sys + "/kernel/btf/vmlinux",
		"cgroup2":      "paths.cgroupfs " + cg + " is not a cgroup v2 mount",
		"capabilities": "held: CAP_NET_ADMIN CAP_NET_RAW",
		"nf_conntrack": "no " + proc + "/sys/net/netfilter/nf_conntrack_count",
		// The collectors' own checks: netstat reads below paths.procfs;
		// drops reads the running kernel's BTF (what its program is
		// relocated against), so only its presence is checked here.
		"collector netstat": proc + "/net/netstat",
		"collector drops":   "",
	}
	for _, r := range rep.Results {
		if w, ok := want[r.Check]; ok {
			if !strings.Contains(r.Detail, w) {
				t.Errorf("%s: %q lacks %q", r.Check, r.Detail, w)
			}
			delete(want, r.Check)
		}
	}
	for c := range want {
		t.Errorf("no %s result", c)
	}
}
