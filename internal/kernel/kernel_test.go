package kernel

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEffectiveCaps(t *testing.T) {
	caps, err := EffectiveCaps("testdata/proc")
	if err != nil {
		t.Fatal(err)
	}
	if caps&(1<<uint(CapNetAdmin)) == 0 || caps&(1<<uint(CapNetRaw)) == 0 {
		t.Errorf("CAP_NET_ADMIN and CAP_NET_RAW expected in %x", caps)
	}
	if caps&(1<<uint(CapBPF)) != 0 {
		t.Errorf("CAP_BPF not expected in %x", caps)
	}
	if _, err := EffectiveCaps(t.TempDir()); err == nil {
		t.Error("missing status file must be an error")
	}
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "self"), 0o755)
	_ = os.WriteFile(filepath.Join(dir, "self", "status"), []byte("CapEff:\tzz\n"), 0o644)
	if _, err := EffectiveCaps(dir); err == nil {
		t.Error("bad CapEff must be an error")
	}
	if CapBPF.String() != "CAP_BPF" || Capability(50).String() != "CAP_50" {
		t.Error("capability names")
	}
}

func TestCgroup2Root(t *testing.T) {
	notCgroup := t.TempDir()
	// Not a cgroup2 mount: the mountinfo of paths.procfs decides (hybrid fixture).
	p, err := Cgroup2Root(Paths{ProcFS: "testdata/proc", CgroupFS: notCgroup})
	if err != nil || p != "/sys/fs/cgroup/unified" {
		t.Fatalf("got %q, %v; want the hybrid v2 mount from the fixture", p, err)
	}
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "self"), 0o755)
	_ = os.WriteFile(filepath.Join(dir, "self", "mountinfo"),
		[]byte("30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"), 0o644)
	if _, err := Cgroup2Root(Paths{ProcFS: dir, CgroupFS: notCgroup}); err == nil || !strings.Contains(err.Error(), "paths.cgroupfs "+notCgroup) {
		t.Errorf("no cgroup2 anywhere: err %v, want one naming paths.cgroupfs", err)
	}
	// The host's own hierarchy, found by statfs under paths.cgroupfs
	// (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts).
	host, err := Cgroup2Root(Paths{ProcFS: dir, CgroupFS: "/sys/fs/cgroup"})
	if err != nil {
		t.Fatalf("host cgroup v2: %v", err)
	}
	if host != "/sys/fs/cgroup" && host != "/sys/fs/cgroup/unified" {
		t.Errorf("host cgroup v2 root %q", host)
	}
}
