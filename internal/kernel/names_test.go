package kernel

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWorkloadFromCgroupPath(t *testing.T) {
	const cid = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct{ path, want string }{
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod3f2a9b1c_77d2_4e0a_9a51_1b2c3d4e5f60.slice/cri-containerd-" + cid + ".scope", "pod 3f2a9b1c"},
		{"/kubepods/besteffort/pod3f2a9b1c-77d2-4e0a-9a51-1b2c3d4e5f60/" + cid, "pod 3f2a9b1c"},
		{"/system.slice/docker-" + cid + ".scope", "docker 0123456789ab"},
		{"/docker/" + cid, "docker 0123456789ab"},
		{"/machine.slice/libpod-" + cid + ".scope", "podman 0123456789ab"},
		{"/system.slice/crio-" + cid + ".scope", "cri-o 0123456789ab"},
		{"/system.slice/nginx.service", "nginx.service"},
		{"/user.slice/user-1000.slice/session-2.scope", ""},
		{"/", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := WorkloadFromCgroupPath(tt.path); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.path, got, tt.want)
		}
	}
}

// TestNames resolves a netns name from a directory of files (their inodes
// stand in for nsfs bind mounts) and a workload from a procfs fixture.
func TestNames(t *testing.T) {
	nsDir, proc := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(nsDir, "blue"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(proc, "42"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(proc, "42", "cgroup"), []byte("12:cpu:/x\n0::/system.slice/nginx.service\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(nsDir, "blue"), &st); err != nil {
		t.Fatal(err)
	}
	n := &Names{NetNSDir: nsDir, ProcFS: proc}
	if got := n.NetNS(uint32(st.Ino)); got != "blue" {
		t.Errorf("NetNS = %q, want blue", got)
	}
	if got := n.NetNS(12345); got != "" {
		t.Errorf("unknown netns = %q", got)
	}
	if got := n.Workload(42, 7); got != "nginx.service" {
		t.Errorf("Workload = %q", got)
	}
	if got := n.Workload(43, 7); got != "" {
		t.Errorf("gone process: %q", got)
	}
	var nilNames *Names
	if nilNames.NetNS(1) != "" || nilNames.Workload(1, 1) != "" {
		t.Error("nil Names names something")
	}
}
