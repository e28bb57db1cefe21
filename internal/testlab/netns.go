package testlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetnsDir is where named network namespaces are bind-mounted, the same
// directory `ip netns` uses.
const NetnsDir = "/var/run/netns"

// NamePrefix starts the name of every namespace this package creates. The full
// name is NamePrefix + "<pid>-<random>", so namespaces leaked by a crashed test
// binary can be recognised and swept (see NewNetNS).
const NamePrefix = "nstest-"

// NetNS is a named network namespace owned by a test. It is usable from Go
// (Do, Listen, Dial, Handle) and from external tools (Command runs them under
// `ip netns exec`). Its loopback is up. The namespace, its interfaces, and every
// process left running in it are removed by the test's Cleanup.
//
// A nil *NetNS stands for the namespace of the calling process (the host):
// Do runs fn directly, Command runs the tool directly. This lets helpers such
// as the servers and traffic generators run on loopback without root.
type NetNS struct {
	// Name is the namespace name, usable with `ip netns exec Name ...`.
	Name string

	handle netns.NsHandle
	nl     *netlink.Handle
	dev    uint64
	ino    uint64

	mu       sync.Mutex
	cmds     []*exec.Cmd
	nextVeth int
	nftSeq   int
	closed   bool
}

var sweepOnce sync.Once

// NewNetNS creates a fresh named network namespace with lo up and registers its
// removal with tb.Cleanup. It needs root (see RequireRoot). The first call in
// a process also removes namespaces left behind by earlier test binaries that
// died without cleaning up (their creator pid is gone).
func NewNetNS(tb testing.TB) *NetNS {
	tb.Helper()
	RequireRoot(tb)
	sweepOnce.Do(sweepStale)
	ns, err := newNetNS(uniqueName())
	if err != nil {
		tb.Fatalf("testlab: %v", err)
		return nil
	}
	tb.Cleanup(func() {
		if err := ns.Close(); err != nil {
			tb.Errorf("testlab: %v", err)
		}
	})
	return ns
}

func uniqueName() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s%d-%s", NamePrefix, os.Getpid(), hex.EncodeToString(b[:]))
}

func newNetNS(name string) (*NetNS, error) {
	h, err := createNamed(name)
	if err != nil {
		return nil, fmt.Errorf("create netns %s: %w", name, err)
	}
	ns := &NetNS{Name: name, handle: h}
	var st unix.Stat_t
	if err := unix.Fstat(int(h), &st); err != nil {
		_ = ns.Close()
		return nil, fmt.Errorf("stat netns %s: %w", name, err)
	}
	ns.dev, ns.ino = st.Dev, st.Ino
	ns.nl, err = netlink.NewHandleAt(h)
	if err != nil {
		_ = ns.Close()
		return nil, fmt.Errorf("netlink handle in netns %s: %w", name, err)
	}
	lo, err := ns.nl.LinkByName("lo")
	if err == nil {
		err = ns.nl.LinkSetUp(lo)
	}
	if err != nil {
		_ = ns.Close()
		return nil, fmt.Errorf("bring up lo in netns %s: %w", name, err)
	}
	return ns, nil
}

// createNamed unshares a new network namespace on a dedicated, locked OS
// thread, bind-mounts it at NetnsDir/name like `ip netns add`, returns a handle
// to it and puts the thread back into its original namespace.
func createNamed(name string) (netns.NsHandle, error) {
	type result struct {
		h   netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		h, restored, err := createNamedLocked(name)
		if restored {
			// Only a thread back in its original namespace may be reused by
			// the scheduler; otherwise it dies with this goroutine.
			runtime.UnlockOSThread()
		}
		ch <- result{h, err}
	}()
	r := <-ch
	return r.h, r.err
}

func createNamedLocked(name string) (h netns.NsHandle, restored bool, err error) {
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		return -1, true, err
	}
	path := filepath.Join(NetnsDir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return -1, true, err
	}
	_ = f.Close()
	orig, err := netns.Get()
	if err != nil {
		_ = os.Remove(path)
		return -1, true, fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		_ = os.Remove(path)
		return -1, true, fmt.Errorf("unshare: %w", err)
	}
	self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
	mountErr := unix.Mount(self, path, "none", unix.MS_BIND, "")
	if mountErr == nil {
		h, err = netns.GetFromPath(path)
	}
	restored = netns.Set(orig) == nil
	switch {
	case mountErr != nil:
		_ = os.Remove(path)
		return -1, restored, fmt.Errorf("bind mount %s: %w", path, mountErr)
	case err != nil:
		_ = unix.Unmount(path, unix.MNT_DETACH)
		_ = os.Remove(path)
		return -1, restored, fmt.Errorf("open %s: %w", path, err)
	}
	return h, restored, nil
}

// sweepStale deletes namespaces named NamePrefix+"<pid>-..." whose pid is no
// longer alive: leftovers of test binaries that were killed before Cleanup.
func sweepStale() {
	entries, err := os.ReadDir(NetnsDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), NamePrefix)
		if !ok {
			continue
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := unix.Kill(pid, 0); err == nil || errors.Is(err, unix.EPERM) {
			continue // creator still alive
		}
		path := filepath.Join(NetnsDir, e.Name())
		_ = unix.Unmount(path, unix.MNT_DETACH)
		_ = os.Remove(path)
	}
}

// Close kills every process still running in the namespace, then deletes it.
// Interfaces in it disappear once the last socket or process referring to the
// namespace is gone. Close is idempotent; NewNetNS registers it with Cleanup.
func (ns *NetNS) Close() error {
	if ns == nil {
		return nil
	}
	ns.mu.Lock()
	if ns.closed {
		ns.mu.Unlock()
		return nil
	}
	ns.closed = true
	cmds := ns.cmds
	ns.cmds = nil
	ns.mu.Unlock()

	for _, c := range cmds {
		if c.Process != nil && c.ProcessState == nil {
			_ = c.Process.Kill()
		}
	}
	var errs []error
	if err := ns.killAll(2 * time.Second); err != nil {
		errs = append(errs, err)
	}
	if ns.nl != nil {
		ns.nl.Close()
	}
	path := filepath.Join(NetnsDir, ns.Name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
		errs = append(errs, fmt.Errorf("unmount %s: %w", path, err))
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove %s: %w", path, err))
	}
	if ns.handle.IsOpen() {
		_ = ns.handle.Close()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete netns %s: %w", ns.Name, err)
	}
	return nil
}

// Pids lists the processes (thread-group leaders) whose network namespace is
// this one, like `ip netns pids`.
func (ns *NetNS) Pids() ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	var pids []int
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+e.Name()+"/ns/net", &st) != nil {
			continue
		}
		if st.Dev == ns.dev && st.Ino == ns.ino {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

func (ns *NetNS) killAll(wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		pids, err := ns.Pids()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still running in netns %s", pids, ns.Name)
		}
		for _, p := range pids {
			_ = unix.Kill(p, unix.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Handle returns a netlink handle operating inside the namespace (links,
// addresses, routes, neighbours). Nil for the host namespace.
func (ns *NetNS) Handle() *netlink.Handle {
	if ns == nil {
		return nil
	}
	return ns.nl
}

// String returns the namespace name, or "host" for nil.
func (ns *NetNS) String() string {
	if ns == nil {
		return "host"
	}
	return ns.Name
}

// Do runs fn on an OS thread switched into the namespace and returns fn's
// error. fn runs on a separate goroutine locked to that thread; the caller
// waits for it. Sockets created inside fn keep belonging to the namespace after
// Do returns, so Do is the way to open listeners and connections in it (see
// Listen, Dial). Goroutines started by fn do NOT run in the namespace. fn must
// not call t.FailNow (it is not the test goroutine); a panic in fn is
// re-raised in the caller. If the thread cannot be switched back afterwards it
// is discarded rather than reused.
func (ns *NetNS) Do(fn func() error) error {
	if ns == nil {
		return fn()
	}
	var (
		err      error
		panicked any
		done     = make(chan struct{})
	)
	go func() {
		defer close(done)
		runtime.LockOSThread()
		orig, e := netns.Get()
		if e != nil {
			runtime.UnlockOSThread()
			err = fmt.Errorf("get current netns: %w", e)
			return
		}
		defer orig.Close()
		if e := netns.Set(ns.handle); e != nil {
			if netns.Set(orig) == nil {
				runtime.UnlockOSThread()
			}
			err = fmt.Errorf("enter netns %s: %w", ns.Name, e)
			return
		}
		defer func() {
			if netns.Set(orig) == nil {
				runtime.UnlockOSThread()
			}
		}()
		defer func() {
			if r := recover(); r != nil {
				panicked = r
			}
		}()
		err = fn()
	}()
	<-done
	if panicked != nil {
		panic(panicked)
	}
	return err
}

// Command returns a command that runs name inside the namespace via
// `ip netns exec` (so /sys shows the namespace's interfaces, as tools like
// tcpdump, ethtool and conntrack expect). ctx bounds its lifetime; the
// namespace's Cleanup kills it if it is still running.
func (ns *NetNS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if ns == nil {
		cmd = exec.CommandContext(ctx, name, args...)
	} else {
		cmd = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
	}
	cmd.WaitDelay = 2 * time.Second
	if ns != nil {
		ns.mu.Lock()
		ns.cmds = append(ns.cmds, cmd)
		ns.mu.Unlock()
	}
	return cmd
}

// Run runs a command inside the namespace (see Command) and returns its
// combined output. A failure's error includes the output.
func (ns *NetNS) Run(ctx context.Context, name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := ns.Command(ctx, name, args...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s in netns %s: %w: %s", name, strings.Join(args, " "), ns, err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// Sysctl writes value to the namespace-local sysctl key, given in dotted form
// ("net.ipv4.ip_forward") or as a path below /proc/sys.
func (ns *NetNS) Sysctl(key, value string) error {
	path := key
	if !strings.HasPrefix(path, "/") {
		path = "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	}
	return ns.Do(func() error {
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s in netns %s: %w", key, value, ns, err)
		}
		return nil
	})
}

// Listen opens a stream listener (network "tcp", "tcp4", "tcp6", "unix")
// inside the namespace.
func (ns *NetNS) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := ns.Do(func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen %s %s in netns %s: %w", network, addr, ns, err)
	}
	return ln, nil
}

// ListenTCP is Listen("tcp", addr).
func (ns *NetNS) ListenTCP(addr string) (net.Listener, error) { return ns.Listen("tcp", addr) }

// ListenPacket opens a packet socket ("udp", "udp4", "udp6", "ip4:icmp", ...)
// inside the namespace.
func (ns *NetNS) ListenPacket(network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := ns.Do(func() error {
		var err error
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen %s %s in netns %s: %w", network, addr, ns, err)
	}
	return pc, nil
}

// Dial connects from inside the namespace. ctx bounds the connection setup.
func (ns *NetNS) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s %s from netns %s: %w", network, addr, ns, err)
	}
	return c, nil
}
