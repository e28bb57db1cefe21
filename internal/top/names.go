package top

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/netsight/netsight/flow"
)

// NetNSNames names network namespaces by inode: "host" for the host's,
// the `ip netns` name from a directory of bind mounts (/run/netns), else
// the inode number. The directory is re-read at most every Refresh.
type NetNSNames struct {
	// Dir holds the named namespaces (/run/netns); "" names none.
	Dir string
	// Refresh is how often Dir is re-read (default 5s).
	Refresh time.Duration
	// Host is the host's namespace inode (flow.HostNetNS when 0).
	Host uint32

	mu    sync.Mutex
	read  time.Time
	names map[uint32]string
}

// maxNamedNetNS bounds the entries read from Dir.
const maxNamedNetNS = 4096

// Name returns the display name of namespace ino ("" when ino is 0).
func (n *NetNSNames) Name(ino uint32) string {
	if ino == 0 {
		return ""
	}
	host := n.Host
	if host == 0 {
		host = flow.HostNetNS()
	}
	if ino == host || ino == flow.InitNetNSInode {
		return "host"
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	refresh := n.Refresh
	if refresh <= 0 {
		refresh = 5 * time.Second
	}
	if n.names == nil || time.Since(n.read) > refresh {
		n.names = readNetNSDir(n.Dir)
		n.read = time.Now()
	}
	if s, ok := n.names[ino]; ok {
		return s
	}
	return strconv.FormatUint(uint64(ino), 10)
}

func readNetNSDir(dir string) map[uint32]string {
	m := map[uint32]string{}
	if dir == "" {
		return m
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return m
	}
	for i, e := range ents {
		if i >= maxNamedNetNS {
			break
		}
		if ino := flow.NetNSInode(filepath.Join(dir, e.Name())); ino != 0 {
			if _, dup := m[ino]; !dup {
				m[ino] = e.Name()
			}
		}
	}
	return m
}
