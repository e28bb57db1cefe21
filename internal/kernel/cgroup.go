package kernel

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Cgroup2Root returns the cgroup v2 hierarchy of the host: p.CgroupFS
// (config paths.cgroupfs) when it is a cgroup2 mount, else its unified/
// subdirectory (hybrid hosts), else the first cgroup2 mount in
// <p.ProcFS>/self/mountinfo.
func Cgroup2Root(p Paths) (string, error) {
	p = p.WithDefaults()
	for _, dir := range []string{p.CgroupFS, filepath.Join(p.CgroupFS, "unified")} {
		var st unix.Statfs_t
		if unix.Statfs(dir, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return dir, nil
		}
	}
	f, err := os.Open(p.Proc("self", "mountinfo"))
	if err != nil {
		return "", fmt.Errorf("paths.cgroupfs %s is not a cgroup v2 mount and %w", p.CgroupFS, err)
	}
	defer f.Close()
	root, err := Cgroup2RootFromMountinfo(f)
	if err != nil {
		return "", fmt.Errorf("paths.cgroupfs %s is not a cgroup v2 mount and %s: %w", p.CgroupFS, f.Name(), err)
	}
	return root, nil
}

// Cgroup2RootFromMountinfo returns the mount point of the cgroup v2
// hierarchy from a /proc/self/mountinfo stream (pure v2 at /sys/fs/cgroup, or hybrid at
// /sys/fs/cgroup/unified).
func Cgroup2RootFromMountinfo(mountinfo io.Reader) (string, error) {
	sc := bufio.NewScanner(mountinfo)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		// 36 35 0:30 / /sys/fs/cgroup/unified rw,... shared:4 - cgroup2 cgroup2 rw,...
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fsType, _, _ := strings.Cut(post, " ")
		if fsType != "cgroup2" {
			continue
		}
		fields := strings.Fields(pre)
		if len(fields) < 5 {
			return "", fmt.Errorf("mountinfo line %d: want at least 5 fields before \" - \", got %d", line, len(fields))
		}
		return unescapeMount(fields[4]), nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read mountinfo: %w", err)
	}
	return "", errors.New("no cgroup2 mount in mountinfo")
}

// unescapeMount undoes the octal escapes (\040 for space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOct(s[i+1]) && isOct(s[i+2]) && isOct(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOct(c byte) bool { return c >= '0' && c <= '7' }
