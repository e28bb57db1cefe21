package kernel

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultNetNSDir is where `ip netns add` pins named network namespaces.
const DefaultNetNSDir = "/run/netns"

// Names turns the network namespace inodes and cgroup IDs of connections
// into names people know: the `ip netns` name of a namespace (a bind mount
// in NetNSDir) and the container, pod or systemd unit of a cgroup (from its
// path under the cgroup v2 hierarchy). Lookups are cached; a miss rereads
// the directory at most once per refresh interval, and the cgroup walk is
// bounded, so a flood of unknown IDs costs nothing extra. Safe for
// concurrent use.
type Names struct {
	NetNSDir   string // default DefaultNetNSDir
	CgroupRoot string // cgroup v2 mount; "" disables workload names
	// MaxCgroups bounds the cgroup directories walked (default 65536).
	MaxCgroups int
	// Refresh is the shortest time between two rereads (default 10s).
	Refresh time.Duration

	mu         sync.Mutex
	netns      map[uint32]string
	netnsRead  time.Time
	cgroups    map[uint64]string
	cgroupRead time.Time
}

// NewNames reads names below the paths of p (the cgroup v2 root found as
// Cgroup2Root does; none when there is no cgroup v2 mount).
func NewNames(p Paths) *Names {
	n := &Names{NetNSDir: DefaultNetNSDir}
	if root, err := Cgroup2Root(p); err == nil {
		n.CgroupRoot = root
	}
	return n
}

func (n *Names) refresh() time.Duration {
	if n.Refresh > 0 {
		return n.Refresh
	}
	return 10 * time.Second
}

// NetNS returns the `ip netns` name of the namespace with this inode, ""
// when it has none.
func (n *Names) NetNS(inode uint32) string {
	if n == nil || inode == 0 {
		return ""
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	name, ok := n.netns[inode]
	if !ok && time.Since(n.netnsRead) >= n.refresh() {
		n.netns = readNetNSNames(n.dir())
		n.netnsRead = time.Now()
		name = n.netns[inode]
	}
	return name
}

func (n *Names) dir() string {
	if n.NetNSDir == "" {
		return DefaultNetNSDir
	}
	return n.NetNSDir
}

func readNetNSNames(dir string) map[uint32]string {
	out := map[uint32]string{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	for _, e := range ents {
		var st syscall.Stat_t
		// The bind mount's inode is the namespace's (nsfs).
		if syscall.Stat(filepath.Join(dir, e.Name()), &st) == nil && st.Ino != 0 && st.Ino <= 0xFFFFFFFF {
			out[uint32(st.Ino)] = e.Name()
		}
	}
	return out
}

// Workload returns the container, pod or systemd unit of the cgroup with
// this ID ("pod 3f2a…", "docker 0123456789ab", "nginx.service"), "" when
// unknown or not one of those.
func (n *Names) Workload(cgroupID uint64) string {
	if n == nil || cgroupID == 0 || n.CgroupRoot == "" {
		return ""
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	p, ok := n.cgroups[cgroupID]
	if !ok && time.Since(n.cgroupRead) >= n.refresh() {
		n.cgroups = walkCgroups(n.CgroupRoot, n.MaxCgroups)
		n.cgroupRead = time.Now()
		p = n.cgroups[cgroupID]
	}
	return WorkloadFromCgroupPath(p)
}

// walkCgroups maps the inode of each cgroup directory (its cgroup ID on
// 64-bit kernels) to its path below root.
func walkCgroups(root string, limit int) map[uint64]string {
	if limit <= 0 {
		limit = 65536
	}
	out := map[uint64]string{}
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if len(out) >= limit {
			return filepath.SkipAll
		}
		var st syscall.Stat_t
		if syscall.Stat(path, &st) == nil {
			rel, _ := filepath.Rel(root, path)
			out[st.Ino] = "/" + strings.TrimPrefix(rel, ".")
		}
		return nil
	})
	return out
}

var (
	podRe       = regexp.MustCompile(`pod([0-9a-f]{8})[0-9a-f_-]*`)
	containerRe = regexp.MustCompile(`^(?:(docker|libpod|crio|cri-containerd)-)?([0-9a-f]{64})(?:\.scope)?$`)
)

// WorkloadFromCgroupPath names the workload of a cgroup path: the pod (by
// the first 8 hex digits of its UID) of a Kubernetes pod cgroup, the runtime
// and short ID of a container, the unit of a systemd service; "" otherwise.
func WorkloadFromCgroupPath(p string) string {
	if p == "" {
		return ""
	}
	parts := strings.Split(strings.Trim(p, "/"), "/")
	pod := ""
	for _, s := range parts {
		if strings.HasPrefix(s, "kubepods") || strings.Contains(s, "-pod") || strings.HasPrefix(s, "pod") {
			if m := podRe.FindStringSubmatch(strings.ReplaceAll(s, "_", "-")); m != nil {
				pod = "pod " + m[1]
			}
		}
	}
	if pod != "" {
		return pod
	}
	last := parts[len(parts)-1]
	if m := containerRe.FindStringSubmatch(last); m != nil {
		rt := map[string]string{"": "container", "docker": "docker", "libpod": "podman", "crio": "cri-o", "cri-containerd": "containerd"}[m[1]]
		if m[1] == "" && len(parts) >= 2 {
			switch parts[len(parts)-2] {
			case "docker":
				rt = "docker"
			case "libpod_parent", "machine.slice":
				rt = "podman"
			}
		}
		return rt + " " + m[2][:12]
	}
	if strings.HasSuffix(last, ".service") && len(parts) >= 2 && parts[0] == "system.slice" {
		return last
	}
	return ""
}
