package kernel

import (
	"strings"
	"testing"
)

func TestCgroup2RootFromMountinfo(t *testing.T) {
	for _, tc := range []struct {
		name, mountinfo, want, wantErr string
	}{
		{name: "hybrid", mountinfo: `25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
34 25 0:29 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
35 34 0:30 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
36 34 0:31 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
`, want: "/sys/fs/cgroup/unified"},
		{name: "pure v2", mountinfo: "35 25 0:30 / /sys/fs/cgroup rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n", want: "/sys/fs/cgroup"},
		{name: "optional fields and escapes", mountinfo: "35 25 0:30 / /mnt/my\\040cgroup rw shared:10 master:3 - cgroup2 none rw\n", want: "/mnt/my cgroup"},
		{name: "v1 only", mountinfo: "36 34 0:31 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n", wantErr: "no cgroup2 mount"},
		{name: "malformed", mountinfo: "35 25 0:30 - cgroup2 cgroup2 rw\n", wantErr: "mountinfo line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Cgroup2RootFromMountinfo(strings.NewReader(tc.mountinfo))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func FuzzCgroup2RootFromMountinfo(f *testing.F) {
	f.Add("35 34 0:30 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw\n")
	f.Add("35 25 0:30 / /mnt/a\\040b rw - cgroup2 none rw\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = Cgroup2RootFromMountinfo(strings.NewReader(s))
	})
}
