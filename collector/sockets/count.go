package sockets

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/netsight/netsight/internal/kernel"
)

// Families and protocols counted, in label order.
var (
	familyNames   = [2]string{"ipv4", "ipv6"}
	protocolNames = [2]string{"tcp", "udp"}
	kernelFamily  = [2]uint8{unix.AF_INET, unix.AF_INET6}
	kernelProto   = [2]uint8{unix.IPPROTO_TCP, unix.IPPROTO_UDP}
)

// stateNames maps the kernel's TCP state enum (include/net/tcp_states.h) to
// label values, following ss's names in snake_case. TCP_NEW_SYN_RECV (12,
// request sockets) is reported as syn_recv as ss does. UDP uses only
// established (connected) and close (unconnected, ss's UNCONN).
var stateNames = [13]string{
	0: "unknown", 1: "established", 2: "syn_sent", 3: "syn_recv", 4: "fin_wait1", 5: "fin_wait2",
	6: "time_wait", 7: "close", 8: "close_wait", 9: "last_ack", 10: "listen", 11: "closing", 12: "syn_recv",
}

// Counts is one snapshot of the socket table.
type Counts struct {
	// ByState[family][protocol][state]; family 0 ipv4 / 1 ipv6, protocol 0
	// tcp / 1 udp, state the kernel enum (12 folded into 3).
	ByState [2][2][12]uint64
	// Tracked is seed 000's connection count (see Tracked).
	Tracked uint64
	// Total sockets seen.
	Total uint64
}

// Counter counts sockets; it reuses its buffers and is not safe for
// concurrent use.
type Counter struct {
	sd kernel.SockDiag
}

// Count dumps TCP and UDP sockets of both families in the calling thread's
// network namespace. A family the kernel does not support (IPv6 disabled)
// counts as empty.
func (c *Counter) Count(ctx context.Context) (Counts, error) {
	var out Counts
	for fi := range kernelFamily {
		for pi := range kernelProto {
			err := c.sd.Dump(ctx, kernelFamily[fi], kernelProto[pi], kernel.SockDiagStatesAll, func(sk *kernel.InetSocket) {
				st := sk.State
				if st == 12 {
					st = 3
				}
				if int(st) < len(out.ByState[fi][pi]) {
					out.ByState[fi][pi][st]++
				}
				out.Total++
				if Tracked(sk) {
					out.Tracked++
				}
			})
			if err != nil {
				if fi == 1 && isNoFamily(err) {
					continue
				}
				return out, fmt.Errorf("count %s %s sockets: %w", protocolNames[pi], familyNames[fi], err)
			}
		}
	}
	return out, nil
}

func isNoFamily(err error) bool {
	for _, e := range []error{unix.ENOENT, unix.EAFNOSUPPORT, unix.EPROTONOSUPPORT} {
		if errorsIs(err, e) {
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

// Tracked reports whether seed 000's pipeline counts the socket:
//
//	ss -A tcp,udp state all | awk 'NR > 1 && $6 !~ /0.0.0.0:\*/ && $6 !~ /\[::\]:\*/ &&
//	    $6 !~ /127.0.0.1:/ && $6 !~ /\[::ffff:127.0.0.1\]/ && $6 != "*:*"' | wc -l
//
// $6 is the peer. Excluded are wildcard peers (unspecified address, port *:
// listeners and unconnected UDP) and the peers 127.0.0.1 and
// ::ffff:127.0.0.1. Note what the seed does NOT exclude and so neither do
// we: ::1 and 127.0.0.0/8 peers other than 127.0.0.1.
func Tracked(sk *kernel.InetSocket) bool {
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
