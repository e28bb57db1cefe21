package kernel

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// Families and protocols counted, in label order.
var (
	SocketFamilyNames   = [2]string{"ipv4", "ipv6"}
	SocketProtocolNames = [2]string{"tcp", "udp"}
	socketFamilies      = [2]uint8{unix.AF_INET, unix.AF_INET6}
	socketProtocols     = [2]uint8{unix.IPPROTO_TCP, unix.IPPROTO_UDP}
)

// SocketStateNames maps the kernel's TCP state enum (include/net/tcp_states.h) to
// label values, following ss's names in snake_case. TCP_NEW_SYN_RECV (12,
// request sockets) is reported as syn_recv as ss does. UDP uses only
// established (connected) and close (unconnected, ss's UNCONN).
var SocketStateNames = [13]string{
	0: "unknown", 1: "established", 2: "syn_sent", 3: "syn_recv", 4: "fin_wait1", 5: "fin_wait2",
	6: "time_wait", 7: "close", 8: "close_wait", 9: "last_ack", 10: "listen", 11: "closing", 12: "syn_recv",
}

// SocketCounts is one snapshot of the socket table.
type SocketCounts struct {
	// ByState[family][protocol][state]; family 0 ipv4 / 1 ipv6, protocol 0
	// tcp / 1 udp, state the kernel enum (12 folded into 3).
	ByState [2][2][12]uint64
	// Tracked is the EC2 connection-tracking guide's `ss | awk` count (see IsTrackedSocket).
	Tracked uint64
	// Total sockets seen.
	Total uint64
}

// Backends.
const (
	SocketBackendAuto     = "auto"     // bpf_iter when it loads, else sock_diag
	SocketBackendBPFIter  = "bpf_iter" // BPF socket iterators (CAP_BPF, CAP_PERFMON)
	SocketBackendSockDiag = "sockdiag" // NETLINK_SOCK_DIAG, unprivileged
)

// SocketCounter counts sockets; it reuses its buffers and is not safe for
// concurrent use. The zero value uses SocketBackendAuto. Close releases the BPF
// iterators.
type SocketCounter struct {
	// Backend is SocketBackendAuto (default), SocketBackendBPFIter or SocketBackendSockDiag.
	Backend string
	sd      [4]SockDiag
	iter    *SockIter
	iterErr error
	tried   bool
}

// ActiveBackend reports the backend the last Count used.
func (c *SocketCounter) ActiveBackend() string {
	if c.iter != nil {
		return SocketBackendBPFIter
	}
	return SocketBackendSockDiag
}

// IterError is why BPF iterators are not used (nil when they are or were
// not tried).
func (c *SocketCounter) IterError() error { return c.iterErr }

// Close releases the BPF iterators.
func (c *SocketCounter) Close() error {
	if c.iter != nil {
		c.iter.Close()
		c.iter = nil
	}
	return nil
}

// Count counts TCP and UDP sockets of both families in the calling thread's
// network namespace.
func (c *SocketCounter) Count(ctx context.Context) (SocketCounts, error) {
	if c.Backend != SocketBackendSockDiag && !c.tried {
		c.tried = true
		c.iter, c.iterErr = NewSockIter()
	}
	if c.iter != nil {
		return c.countIter(ctx)
	}
	if c.Backend == SocketBackendBPFIter {
		return SocketCounts{}, fmt.Errorf("socket backend bpf_iter: %w", c.iterErr)
	}
	return c.countDiag(ctx)
}

func (c *SocketCounter) countIter(ctx context.Context) (SocketCounts, error) {
	var out SocketCounts
	err := c.iter.Each(ctx, func(proto uint8, sk *InetSocket) {
		fi := 0
		switch sk.Family {
		case unix.AF_INET:
		case unix.AF_INET6:
			fi = 1
		default:
			return
		}
		pi := 0
		if proto == unix.IPPROTO_UDP {
			pi = 1
		}
		out.add(fi, pi, sk)
	})
	if err != nil {
		return out, fmt.Errorf("count sockets: %w", err)
	}
	return out, nil
}

// countDiag dumps over sock_diag. The four dump sockets are opened on the
// calling thread (so they belong to its namespace) and received in
// parallel. A family the kernel does not support (IPv6 disabled) counts as
// empty.
func (c *SocketCounter) countDiag(ctx context.Context) (SocketCounts, error) {
	type job struct {
		fi, pi int
		d      *SockDiagDump
		out    SocketCounts
		err    error
	}
	jobs := make([]*job, 0, 4)
	var startErr error
	for fi := range socketFamilies {
		for pi := range socketProtocols {
			d, err := c.sd[fi*2+pi].Start(ctx, SockDiagRequest{Family: socketFamilies[fi], Protocol: socketProtocols[pi], States: SockDiagStatesAll})
			if err != nil {
				startErr = fmt.Errorf("count %s %s sockets: %w", SocketProtocolNames[pi], SocketFamilyNames[fi], err)
				break
			}
			jobs = append(jobs, &job{fi: fi, pi: pi, d: d})
		}
	}
	if startErr != nil {
		for _, j := range jobs {
			j.d.Close()
		}
		return SocketCounts{}, startErr
	}
	var wg sync.WaitGroup
	for _, j := range jobs[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j.err = j.d.Each(ctx, func(sk *InetSocket) { j.out.add(j.fi, j.pi, sk) })
		}()
	}
	j0 := jobs[0]
	j0.err = j0.d.Each(ctx, func(sk *InetSocket) { j0.out.add(j0.fi, j0.pi, sk) })
	wg.Wait()
	var out SocketCounts
	for _, j := range jobs {
		if j.err != nil {
			if j.fi == 1 && isNoFamily(j.err) {
				continue
			}
			return out, fmt.Errorf("count %s %s sockets: %w", SocketProtocolNames[j.pi], SocketFamilyNames[j.fi], j.err)
		}
		out.merge(&j.out)
	}
	return out, nil
}

func (c *SocketCounts) add(fi, pi int, sk *InetSocket) {
	st := sk.State
	if st == 12 {
		st = 3
	}
	if int(st) < len(c.ByState[fi][pi]) {
		c.ByState[fi][pi][st]++
	}
	c.Total++
	if IsTrackedSocket(sk) {
		c.Tracked++
	}
}

func (c *SocketCounts) merge(o *SocketCounts) {
	for f := range c.ByState {
		for p := range c.ByState[f] {
			for s := range c.ByState[f][p] {
				c.ByState[f][p][s] += o.ByState[f][p][s]
			}
		}
	}
	c.Tracked += o.Tracked
	c.Total += o.Total
}

func isNoFamily(err error) bool {
	for _, e := range []error{unix.ENOENT, unix.EAFNOSUPPORT, unix.EPROTONOSUPPORT} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

var (
	v4Loopback       = [4]byte{127, 0, 0, 1}
	v4MappedLoopback = [16]byte{10: 0xff, 11: 0xff, 12: 127, 15: 1}
	zero16           [16]byte
)

// IsTrackedSocket reports whether the EC2 connection-tracking guide's `ss | awk` count counts the socket:
//
//	ss -A tcp,udp state all | awk 'NR > 1 && $6 !~ /0.0.0.0:\*/ && $6 !~ /\[::\]:\*/ &&
//	    $6 !~ /127.0.0.1:/ && $6 !~ /\[::ffff:127.0.0.1\]/ && $6 != "*:*"' | wc -l
//
// $6 is the peer. Excluded are wildcard peers (unspecified address, port *:
// listeners and unconnected UDP) and the peers 127.0.0.1 and
// ::ffff:127.0.0.1. Note what that pipeline does NOT exclude and so neither do
// we: ::1 and 127.0.0.0/8 peers other than 127.0.0.1.
func IsTrackedSocket(sk *InetSocket) bool {
	switch sk.Family {
	case unix.AF_INET:
		a := [4]byte(sk.Dst[:4])
		if a == [4]byte{} && sk.DPort == 0 {
			return false
		}
		return a != v4Loopback
	case unix.AF_INET6:
		if sk.Dst == zero16 && sk.DPort == 0 {
			return false
		}
		return sk.Dst != v4MappedLoopback
	}
	return false
}
