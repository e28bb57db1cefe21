package ebpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The TCP socket iterator shows the sockets of the reader's network
// namespace only, while sock_ops tracks every namespace. netnsSet remembers
// the namespaces that hold tracked connections (by inode, from the last
// read of the map) and how to enter them: the agent's own, a name under
// /var/run/netns (`ip netns`), or /proc/PID/ns/net of a process with a
// connection there (checked by inode before every use, so a reused PID
// cannot mislead). Only paths are kept, never namespace file descriptors,
// which would keep deleted namespaces alive.

// maxNetNS bounds the namespaces visited per refresh.
const maxNetNS = 1024

const netnsDir = "/var/run/netns"

type netnsSet struct {
	mu    sync.Mutex
	own   uint32
	paths map[uint32]string   // resolved namespaces
	seen  map[uint32][]uint32 // this scan: inode -> a few PIDs
	want  []uint32            // namespaces with tracked connections
	fails uint64              // namespaces that could not be entered
}

func newNetnsSet() *netnsSet {
	return &netnsSet{own: statIno("/proc/thread-self/ns/net"), paths: map[uint32]string{}, seen: map[uint32][]uint32{}}
}

func statIno(path string) uint32 {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0
	}
	return uint32(st.Ino)
}

func (n *netnsSet) beginScan() {
	n.mu.Lock()
	clear(n.seen)
	n.mu.Unlock()
}

// see records a tracked connection in namespace ino opened by pid.
func (n *netnsSet) see(ino, pid uint32) {
	if ino == 0 || ino == n.own {
		return
	}
	n.mu.Lock()
	pids, ok := n.seen[ino]
	if !ok && len(n.seen) >= maxNetNS {
		n.mu.Unlock()
		return
	}
	if pid != 0 && len(pids) < 4 && (len(pids) == 0 || pids[len(pids)-1] != pid) {
		pids = append(pids, pid)
	}
	n.seen[ino] = pids
	n.mu.Unlock()
}

// endScan resolves the namespaces seen and forgets the others.
func (n *netnsSet) endScan() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ino := range n.paths {
		if _, ok := n.seen[ino]; !ok {
			delete(n.paths, ino)
		}
	}
	n.want = n.want[:0]
	var named map[uint32]string
	for ino, pids := range n.seen {
		if p, ok := n.paths[ino]; ok && statIno(p) == ino {
			n.want = append(n.want, ino)
			continue
		}
		delete(n.paths, ino)
		for _, pid := range pids {
			if p := "/proc/" + strconv.FormatUint(uint64(pid), 10) + "/ns/net"; statIno(p) == ino {
				n.paths[ino] = p
				break
			}
		}
		if _, ok := n.paths[ino]; !ok {
			if named == nil {
				named = namedNetNS()
			}
			if p, ok := named[ino]; ok {
				n.paths[ino] = p
			}
		}
		if _, ok := n.paths[ino]; ok {
			n.want = append(n.want, ino)
		}
	}
}

// namedNetNS maps the inodes of the namespaces under /var/run/netns to
// their paths.
func namedNetNS() map[uint32]string {
	m := map[uint32]string{}
	ents, err := os.ReadDir(netnsDir)
	if err != nil {
		return m
	}
	for _, e := range ents {
		p := filepath.Join(netnsDir, e.Name())
		if ino := statIno(p); ino != 0 {
			m[ino] = p
		}
	}
	return m
}

// each runs fn in the agent's namespace, then in each other namespace
// with tracked connections, on one locked OS thread.
func (n *netnsSet) each(fn func() error) error {
	err := fn()
	n.mu.Lock()
	type target struct {
		ino  uint32
		path string
	}
	var ts []target
	for _, ino := range n.want {
		ts = append(ts, target{ino, n.paths[ino]})
	}
	n.mu.Unlock()
	if len(ts) == 0 {
		return err
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("current network namespace: %w", err)
			return
		}
		defer orig.Close()
		var errs []error
		var failed uint64
		for _, t := range ts {
			if e := runIn(t.path, t.ino, fn); e != nil {
				failed++
				if errors.Is(e, errRestore) {
					errs = append(errs, e)
					break
				}
			}
		}
		n.mu.Lock()
		n.fails += failed
		n.mu.Unlock()
		if e := netns.Set(orig); e != nil {
			// Leave the thread locked: it ends with the goroutine.
			done <- errors.Join(append(errs, fmt.Errorf("%w: %w", errRestore, e))...)
			return
		}
		runtime.UnlockOSThread()
		done <- errors.Join(errs...)
	}()
	return errors.Join(err, <-done)
}

var errRestore = errors.New("restore network namespace")

// runIn enters the namespace at path (when it still has inode ino) and
// runs fn. The caller restores its namespace.
func runIn(path string, ino uint32, fn func() error) error {
	h, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(h), &st); err != nil || uint32(st.Ino) != ino {
		return fmt.Errorf("network namespace %s is no longer %d", path, ino)
	}
	if err := netns.Set(h); err != nil {
		return fmt.Errorf("enter network namespace %s: %w", path, err)
	}
	return fn()
}

// failed returns how many namespace visits failed so far.
func (n *netnsSet) failed() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fails
}
