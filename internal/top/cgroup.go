package top

import (
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// CgroupNames names the container or pod of a cgroup v2 id (the inode of
// its directory in the cgroup2 file system, as the flow back ends report
// it) from the directory's path: "pod:<uid>" for a Kubernetes pod,
// "docker:<id>", "podman:<id>", "ctr:<id>" (containerd, CRI-O). The tree
// under Root is walked at most every Refresh, bounded by maxCgroupDirs.
type CgroupNames struct {
	// Root is the cgroup v2 mount (kernel.Cgroup2Root); "" names none.
	Root    string
	Refresh time.Duration // default 10s

	mu    sync.Mutex
	read  time.Time
	names map[uint64]string
}

// maxCgroupDirs bounds one walk of the cgroup tree.
const maxCgroupDirs = 50000

// Name returns the container or pod of cgroup id, "" when it is none.
func (c *CgroupNames) Name(id uint64) string {
	if id == 0 || c.Root == "" {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	refresh := c.Refresh
	if refresh <= 0 {
		refresh = 10 * time.Second
	}
	if _, ok := c.names[id]; !ok && (c.names == nil || time.Since(c.read) > refresh) {
		c.names = walkCgroups(c.Root)
		c.read = time.Now()
	}
	return c.names[id]
}

func walkCgroups(root string) map[uint64]string {
	m := map[uint64]string{}
	n := 0
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if n++; n > maxCgroupDirs {
			return filepath.SkipAll
		}
		rel, _ := filepath.Rel(root, path)
		name := ContainerFromCgroup(rel)
		if name == "" {
			return nil
		}
		var st syscall.Stat_t
		if syscall.Stat(path, &st) == nil {
			m[st.Ino] = name
		}
		return nil
	})
	return m
}

var (
	podRE       = regexp.MustCompile(`pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})`)
	containerRE = regexp.MustCompile(`(?:^|[/-])(docker|libpod|cri-containerd|crio)[-/]([0-9a-f]{12,64})(?:\.scope)?$`)
)

// ContainerFromCgroup names the container or pod of a cgroup path
// (relative to the cgroup root); "" when the path is no container's.
func ContainerFromCgroup(path string) string {
	if m := podRE.FindStringSubmatch(path); m != nil {
		return "pod:" + strings.ReplaceAll(m[1], "_", "-")[:8]
	}
	if m := containerRE.FindStringSubmatch(path); m != nil {
		kind := m[1]
		switch kind {
		case "libpod":
			kind = "podman"
		case "cri-containerd", "crio":
			kind = "ctr"
		}
		return kind + ":" + m[2][:12]
	}
	return ""
}
