package kernel

import (
	"os"
	"path/filepath"
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

func TestCgroup2Mount(t *testing.T) {
	p, err := Cgroup2Mount("testdata/proc")
	if err != nil || p != "/sys/fs/cgroup/unified" {
		t.Fatalf("got %q, %v; want the hybrid v2 mount", p, err)
	}
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "self"), 0o755)
	_ = os.WriteFile(filepath.Join(dir, "self", "mountinfo"),
		[]byte("30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"), 0o644)
	if _, err := Cgroup2Mount(dir); err == nil {
		t.Error("no cgroup2 must be an error")
	}
}
