package kernel

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultNetNSDir is where `ip netns add` pins named network namespaces.
const DefaultNetNSDir = "/run/netns"

// Names turns the network namespace inodes and processes of connections
// into names people know: the `ip netns` name of a namespace (a bind mount
// in NetNSDir) and the container, pod or systemd unit of a process (from
// its cgroup v2 path in <procfs>/PID/cgroup). Lookups are cached and
// bounded: the netns directory is reread at most once per Refresh on a
// miss, a process's cgroup is read once (one small file) and kept while the
// cache has room. Safe for concurrent use.
type Names struct {
	NetNSDir string // default DefaultNetNSDir
	ProcFS   string // default /proc
	// Refresh is the shortest time between two rereads of NetNSDir
	// (default 10s).
	Refresh time.Duration

	mu        sync.Mutex
	netns     map[uint32]string
	netnsRead time.Time
	procs     map[procKey]string
}

type procKey struct {
	pid      uint32
	cgroupID uint64
}

// maxProcs bounds the process cache; past it the cache starts over.
const maxProcs = 8192

// NewNames reads names below the paths of p.
func NewNames(p Paths) *Names {
	return &Names{NetNSDir: DefaultNetNSDir, ProcFS: p.WithDefaults().ProcFS}
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

// Workload returns the container, pod or systemd unit of process pid
// ("pod 3f2a…", "docker 0123456789ab", "nginx.service"), "" when unknown,
// gone, or not one of those. cgroupID (the connection's) tells a reused
// pid apart.
func (n *Names) Workload(pid uint32, cgroupID uint64) string {
	if n == nil || pid == 0 {
		return ""
	}
	k := procKey{pid, cgroupID}
	n.mu.Lock()
	defer n.mu.Unlock()
	if w, ok := n.procs[k]; ok {
		return w
	}
	if n.procs == nil || len(n.procs) >= maxProcs {
		n.procs = map[procKey]string{}
	}
	proc := n.ProcFS
	if proc == "" {
		proc = "/proc"
	}
	w := ""
	if b, err := os.ReadFile(filepath.Join(proc, strconv.FormatUint(uint64(pid), 10), "cgroup")); err == nil {
		w = WorkloadFromCgroupPath(cgroupV2Path(string(b)))
	}
	n.procs[k] = w
	return w
}

// cgroupV2Path is the path of the "0::PATH" line of a /proc/PID/cgroup file.
func cgroupV2Path(s string) string {
	for line := range strings.SplitSeq(s, "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p
		}
	}
	return ""
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
