package netstat

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/internal/kernel"
	"github.com/netsight/netsight/internal/testlab"
)

// listenBacklog1 opens a TCP listener with backlog 1 on addr inside ns and
// never accepts; it returns the bound address.
func listenBacklog1(t *testing.T, ns *testlab.NetNS, addr netip.Addr) netip.AddrPort {
	t.Helper()
	var fd int
	var bound netip.AddrPort
	err := ns.Do(func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: addr.As4()}); err != nil {
			return err
		}
		if err := unix.Listen(fd, 1); err != nil {
			return err
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			return err
		}
		bound = netip.AddrPortFrom(addr, uint16(sa.(*unix.SockaddrInet4).Port))
		return nil
	})
	if err != nil {
		t.Fatalf("listener: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return bound
}

// TestLabListenOverflows: a listener with backlog 1 that never accepts, in
// a namespace the test creates, and 20 connects to it: ListenOverflows of
// that namespace (read through a process inside it, without setns) grows
// and equals what `cat /proc/net/netstat` inside the namespace prints; the
// agent's (host) namespace does not move.
func TestLabListenOverflows(t *testing.T) {
	testlab.RequireRoot(t)
	p := testlab.NewPair(t)
	c, err := New(DefaultConfig(), collector.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sleeper := p.B.Command(ctx, "sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	// `ip netns exec` execs sleep in the namespace: wait until it did.
	pid := sleeper.Process.Pid
	want := inode("/run/netns/" + p.B.Name)
	for deadline := time.Now().Add(5 * time.Second); inode(fmt.Sprintf("/proc/%d/ns/net", pid)) != want; {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d never entered netns %s", pid, p.B.Name)
		}
		time.Sleep(10 * time.Millisecond)
	}

	before, err := c.NetStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	hostBefore, err := c.NetStat(0)
	if err != nil {
		t.Fatal(err)
	}
	target := listenBacklog1(t, p.B, p.Link.B.Addr4())
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dctx, dcancel := context.WithTimeout(ctx, 1500*time.Millisecond)
			defer dcancel()
			if conn, err := p.A.Dial(dctx, "tcp", target.String()); err == nil {
				defer conn.Close()
				<-dctx.Done()
			}
		}()
	}
	wg.Wait()
	after, err := c.NetStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	hostAfter, err := c.NetStat(0)
	if err != nil {
		t.Fatal(err)
	}
	grew := after["TcpExt.ListenOverflows"] - before["TcpExt.ListenOverflows"]
	t.Logf("ListenOverflows in %s: +%d (ListenDrops +%d); host +%d", p.B.Name, grew,
		after["TcpExt.ListenDrops"]-before["TcpExt.ListenDrops"], hostAfter["TcpExt.ListenOverflows"]-hostBefore["TcpExt.ListenOverflows"])
	// The accept queue holds backlog+1 = 2 connections: every other SYN
	// overflows (and is retransmitted within the 1.5s dials).
	if grew < n-2 {
		t.Errorf("ListenOverflows grew by %d, want at least %d", grew, n-2)
	}
	if d := hostAfter["TcpExt.ListenOverflows"] - hostBefore["TcpExt.ListenOverflows"]; d != 0 {
		t.Errorf("host ListenOverflows grew by %d, want 0", d)
	}
	// The independent path: the file read from inside the namespace (setns
	// by ip netns exec) says the same, now that nothing connects any more.
	out, err := p.B.Run(ctx, "cat", "/proc/net/netstat")
	if err != nil {
		t.Fatal(err)
	}
	inside := kernel.NetStat{}
	if err := kernel.ParseNetStat([]byte(out), inside); err != nil {
		t.Fatal(err)
	}
	again, err := c.NetStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	if inside["TcpExt.ListenOverflows"] != again["TcpExt.ListenOverflows"] {
		t.Errorf("ListenOverflows inside the namespace %d, through /proc/%d/net %d", inside["TcpExt.ListenOverflows"], pid, again["TcpExt.ListenOverflows"])
	}
}

// inode returns the inode of a namespace file, 0 when unreadable.
func inode(path string) uint32 {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0
	}
	return uint32(st.Ino)
}
