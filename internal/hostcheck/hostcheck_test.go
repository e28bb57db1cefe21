package hostcheck

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func find(r Report, check string) (Result, bool) {
	for _, x := range r.Results {
		if x.Check == check {
			return x, true
		}
	}
	return Result{}, false
}

// TestFixtureHost runs the checks against a fixture procfs/sysfs that lacks
// BTF, nf_conntrack and most capabilities: each must say so and name what it
// affects, and the agent must still be able to run.
func TestFixtureHost(t *testing.T) {
	proc, sys := t.TempDir(), t.TempDir()
	for p, content := range map[string]string{
		"net/tcp":                       "  sl  local_address rem_address\n",
		"self/status":                   "CapEff:\t0000000000003000\n",
		"self/mountinfo":                "30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n",
		"sys/net/ipv4/ping_group_range": "1\t0\n",
	} {
		full := filepath.Join(proc, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := Run(context.Background(), Options{ProcRoot: proc, SysRoot: sys, CgroupRoot: t.TempDir()})
	if !r.CanRun {
		t.Error("agent must be able to run degraded")
	}
	for _, tc := range []struct {
		check string
		want  Verdict
	}{
		{"procfs", OK},
		{"btf", Fail},
		{"nf_conntrack", Warn},
		{"capabilities", Warn},
		{"cgroup2", Fail},
	} {
		res, ok := find(r, tc.check)
		if !ok {
			t.Errorf("%s: no result", tc.check)
			continue
		}
		if res.Verdict != tc.want {
			t.Errorf("%s: verdict %s (%s), want %s", tc.check, res.Verdict, res.Detail, tc.want)
		}
		if res.Verdict != OK && res.Affects == "" {
			t.Errorf("%s: a non-ok verdict must name what it affects", tc.check)
		}
	}
	if res, _ := find(r, "capabilities"); res.Detail != "missing: CAP_BPF CAP_PERFMON CAP_SYS_ADMIN (held: CAP_NET_ADMIN CAP_NET_RAW)" {
		t.Errorf("capabilities detail: %q", res.Detail)
	}
}

func TestNoProcCannotRun(t *testing.T) {
	r := Run(context.Background(), Options{ProcRoot: t.TempDir(), SysRoot: t.TempDir()})
	if r.CanRun {
		t.Error("without procfs the agent cannot run")
	}
}
