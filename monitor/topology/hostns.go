package topology

import (
	"context"
	"net"
	"path/filepath"
	"runtime"
	"sync/atomic"

	"github.com/vishvananda/netns"
)

// hostDialer dials from the host's network namespace (that of PID 1 under
// procfs) when the agent runs in another one, as IMDS answers only there
// by default (IMDSv2's hop limit of 1 drops the token's answer before it
// reaches a container). Entering needs CAP_SYS_ADMIN; without it, or when
// the agent is in the host's namespace already, it dials from its own.
type hostDialer struct {
	procfs string
	used   atomic.Bool // a connection was made from the host's namespace
}

func (h *hostDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	host := filepath.Join(h.procfs, "1", "ns", "net")
	if ino := netNSInode(host); ino == 0 || ino == netNSInode("/proc/thread-self/ns/net") {
		return d.DialContext(ctx, network, addr)
	}
	type result struct {
		c   net.Conn
		err error
		ok  bool // dialled from the host's namespace
	}
	ch := make(chan result, 1)
	go func() {
		// The socket is created on this locked thread, in the host's
		// namespace, and stays there; the thread is put back (or, if it
		// cannot be, dropped when the goroutine ends locked).
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			c, err := d.DialContext(ctx, network, addr)
			ch <- result{c, err, false}
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(host)
		if err != nil {
			runtime.UnlockOSThread()
			c, err := d.DialContext(ctx, network, addr)
			ch <- result{c, err, false}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			if netns.Set(orig) == nil {
				runtime.UnlockOSThread()
			}
			c, err := d.DialContext(ctx, network, addr)
			ch <- result{c, err, false}
			return
		}
		c, err := d.DialContext(ctx, network, addr)
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{c, err, true}
	}()
	r := <-ch
	if r.ok && r.err == nil {
		h.used.Store(true)
	}
	return r.c, r.err
}
