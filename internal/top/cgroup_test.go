package top

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestContainerFromCgroup(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct{ path, want string }{
		{"kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_aaaa_bbbb_cccc_0123456789ab.slice/cri-containerd-" + id + ".scope", "pod:1b2c3d4e"},
		{"kubepods/besteffort/pod1b2c3d4e-aaaa-bbbb-cccc-0123456789ab/" + id, "pod:1b2c3d4e"},
		{"system.slice/docker-" + id + ".scope", "docker:0123456789ab"},
		{"docker/" + id, "docker:0123456789ab"},
		{"machine.slice/libpod-" + id + ".scope", "podman:0123456789ab"},
		{"system.slice/cri-containerd-" + id + ".scope", "ctr:0123456789ab"},
		{"system.slice/crio-" + id + ".scope", "ctr:0123456789ab"},
		{"system.slice/sshd.service", ""},
		{"user.slice/user-0.slice/session-1.scope", ""},
		{"", ""},
	} {
		if got := ContainerFromCgroup(tc.path); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.path, got, tc.want)
		}
	}
}

// TestCgroupNames walks a directory tree shaped like a cgroup hierarchy:
// a directory's inode is its cgroup id.
func TestCgroupNames(t *testing.T) {
	root := t.TempDir()
	id := "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	dir := filepath.Join(root, "system.slice", "docker-"+id+".scope")
	other := filepath.Join(root, "system.slice", "cron.service")
	for _, d := range []string{dir, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ino := func(p string) uint64 {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	c := &CgroupNames{Root: root}
	if got := c.Name(ino(dir)); got != "docker:fedcba987654" {
		t.Errorf("docker scope: %q", got)
	}
	if got := c.Name(ino(other)); got != "" {
		t.Errorf("cron.service: %q", got)
	}
	if got := (&CgroupNames{}).Name(ino(dir)); got != "" {
		t.Errorf("no root: %q", got)
	}
}
