package health

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netsight/netsight/internal/kernel"
	"github.com/netsight/netsight/monitor"
)

// The read interfaces of the running sources the host reading uses (the
// agent finds them by collector name through monitor.Sources).
type (
	// DropsReader is the drops collector: kernel drops by reason per
	// network namespace inode, cumulative.
	DropsReader interface {
		DropsByNetNS() map[uint32]map[string]uint64
	}
	// AllowanceExceededReader is the nic collector: per interface, the
	// reset-safe totals of the *_allowance_exceeded counters of its last
	// read.
	AllowanceExceededReader interface {
		AllowanceExceeded() map[string]map[string]uint64
	}
)

// HostReader reads the Host of the agent's own network namespace: conntrack
// (procfs, when the conntrack collector runs), /proc/net/netstat, kernel
// drops (the drops collector), NIC allowances (the nic collector) and full
// listeners (sock_diag). Parts that cannot be read are left nil; Read
// never fails as a whole.
type HostReader struct {
	ProcFS  string
	Sources monitor.Sources

	netns  uint32
	nsErr  error
	diag   kernel.SockDiag
	warned map[string]bool
	// Warn is called once per part that fails (nil: silent).
	Warn func(part string, err error)
}

// Read takes one reading.
func (r *HostReader) Read(ctx context.Context, now time.Time) Host {
	h := Host{At: now}
	src := func(name string) any {
		if r.Sources == nil {
			return nil
		}
		return r.Sources(name)
	}
	if src("conntrack") != nil {
		ct, err := readConntrack(r.ProcFS)
		r.note("conntrack", err)
		h.Conntrack = ct
	}
	ns, err := kernel.ReadNetStat(r.ProcFS, 0)
	r.note("netstat", err)
	if err == nil {
		h.Netstat = make(map[string]uint64, len(ns))
		for k, v := range ns {
			if name, ok := strings.CutPrefix(k, "TcpExt."); ok {
				h.Netstat[name] = v
			}
		}
	}
	if d, ok := src("drops").(DropsReader); ok {
		if r.netns == 0 && r.nsErr == nil {
			r.netns, r.nsErr = ownNetNS()
			r.note("netns", r.nsErr)
		}
		if r.netns != 0 {
			h.Drops = d.DropsByNetNS()[r.netns]
			if h.Drops == nil {
				h.Drops = map[string]uint64{}
			}
		}
	}
	if n, ok := src("nic").(AllowanceExceededReader); ok {
		ex := n.AllowanceExceeded()
		names := make([]string, 0, len(ex))
		for name := range ex {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			h.NICs = append(h.NICs, NIC{Name: name, Exceeded: ex[name]})
		}
	}
	ls, err := r.fullListeners(ctx)
	r.note("listeners", err)
	h.Listeners = ls
	return h
}

func (r *HostReader) note(part string, err error) {
	if err == nil || r.Warn == nil {
		return
	}
	if r.warned == nil {
		r.warned = map[string]bool{}
	}
	if !r.warned[part] {
		r.warned[part] = true
		r.Warn(part, err)
	}
}

func readConntrack(procfs string) (*Conntrack, error) {
	p := kernel.ConntrackProc{Root: procfs}
	count, err := p.Count()
	if err != nil {
		return nil, err
	}
	limit, err := p.Max()
	if err != nil {
		return nil, err
	}
	ct := &Conntrack{Entries: count, Limit: limit}
	st, err := p.CPUStats()
	if err != nil {
		return ct, fmt.Errorf("conntrack statistics: %w", err)
	}
	ct.Drop, _ = st.Sum("drop")
	ct.EarlyDrop, _ = st.Sum("early_drop")
	ct.InsertFailed, _ = st.Sum("insert_failed")
	return ct, nil
}

// ownNetNS is the inode of the agent's network namespace (as the drops
// collector keys it).
func ownNetNS() (uint32, error) {
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join("/proc", "self", "ns", "net"), &st); err != nil {
		return 0, fmt.Errorf("stat own network namespace: %w", err)
	}
	return uint32(st.Ino), nil
}

// maxListeners bounds the listeners a reading keeps.
const maxListeners = 16

// fullListeners lists the listening TCP sockets whose accept queue is full
// (more queued than the backlog, as sk_acceptq_is_full; inet_diag_msg:
// idiag_rqueue is the queue, idiag_wqueue the backlog).
func (r *HostReader) fullListeners(ctx context.Context) ([]Listener, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var out []Listener
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		d, err := r.diag.Start(ctx, kernel.SockDiagRequest{Family: fam, Protocol: unix.IPPROTO_TCP, States: 1 << 10})
		if err != nil {
			if errors.Is(err, syscall.EPROTONOSUPPORT) || os.IsNotExist(err) {
				continue
			}
			return out, err
		}
		err = d.EachMessage(ctx, func(_ int, msg []byte) error {
			if l, ok := decodeListener(msg); ok && l.Queue > l.Backlog {
				out = append(out, l)
			}
			return nil
		})
		if err != nil {
			return out, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Queue > out[j].Queue })
	if len(out) > maxListeners {
		out = out[:maxListeners]
	}
	return out, nil
}

// decodeListener reads an inet_diag_msg: family(1) state(1) timer(1)
// retrans(1), id{sport(2,be) dport(2,be) src(16) dst(16) if(4) cookie(8)},
// expires(4) rqueue(4) wqueue(4) uid(4) inode(4).
func decodeListener(msg []byte) (Listener, bool) {
	if len(msg) < 72 {
		return Listener{}, false
	}
	port := binary.BigEndian.Uint16(msg[4:])
	var addr netip.Addr
	switch msg[0] {
	case unix.AF_INET:
		addr = netip.AddrFrom4([4]byte(msg[8:12]))
	case unix.AF_INET6:
		addr = netip.AddrFrom16([16]byte(msg[8:24])).Unmap()
	default:
		return Listener{}, false
	}
	return Listener{Addr: netip.AddrPortFrom(addr, port),
		Queue: binary.NativeEndian.Uint32(msg[56:]), Backlog: binary.NativeEndian.Uint32(msg[60:])}, true
}
