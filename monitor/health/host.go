package health

import (
	"net/netip"
	"strings"
	"time"
)

// Host is one reading of the monitored network namespace's own counters,
// cumulative (the engine takes their deltas over the window). A part whose
// source does not run is left nil (its rules never fire).
type Host struct {
	At time.Time
	// Conntrack is the table's statistics (nil when the conntrack
	// collector does not run).
	Conntrack *Conntrack
	// NICs are the interfaces' cumulative *_allowance_exceeded counters
	// (ENA), keyed by counter name.
	NICs []NIC
	// Netstat holds /proc/net/netstat TcpExt counters by name
	// (ListenOverflows, ListenDrops, TCPRcvQDrop, TCPBacklogDrop,
	// TCPDSACKRecv, TCPToZeroWindowAdv, TCPSpuriousRTOs, ...).
	Netstat map[string]uint64
	// Drops are kernel drops by reason (tp_btf/kfree_skb), reason names as
	// the kernel spells them (NETFILTER_DROP).
	Drops map[string]uint64
	// Listeners whose accept queue is full at At.
	Listeners []Listener
}

// Conntrack is the conntrack table's reading.
type Conntrack struct {
	Entries, Limit                uint64
	Drop, EarlyDrop, InsertFailed uint64
}

// NIC is one interface's allowance counters.
type NIC struct {
	Name     string
	Exceeded map[string]uint64
}

// Listener is a listening socket with its accept queue.
type Listener struct {
	Addr netip.AddrPort
	// Queue is the connections waiting for accept(), Backlog its limit.
	Queue, Backlog uint32
}

// hostDropReasons are the kernel drop reasons that mean "dropped inside
// this host's stack" (not the application's and not a normal protocol
// event such as a stale segment or a RST to a closed port).
var hostDropReasons = map[string]bool{
	"NETFILTER_DROP": true, "QDISC_DROP": true, "QDISC_OVERLIMIT": true, "QDISC_CONGESTED": true,
	"TC_INGRESS": true, "TC_EGRESS": true, "TC_DROP": true, "SOCKET_BACKLOG": true,
	"TCP_BACKLOG": true, "CPU_BACKLOG": true, "FULL_RING": true, "NOMEM": true,
	"DEV_READY": true, "NEIGH_FAILED": true, "NEIGH_QUEUEFULL": true, "NEIGH_DEAD": true,
	"IP_OUTNOROUTES": true, "XDP": true,
}

// isHostDrop reports whether a reason (any case, with or without the
// SKB_DROP_REASON_ prefix) counts for host_stack.
func isHostDrop(reason string) bool {
	r := strings.ToUpper(strings.TrimPrefix(strings.ToUpper(reason), "SKB_DROP_REASON_"))
	return hostDropReasons[r]
}

// hostDelta is the change of the host counters over a window.
type hostDelta struct {
	ok                              bool // two readings to compare
	conntrack                       *Conntrack
	ctDrops                         uint64 // drop + early_drop + insert_failed
	fill                            float64
	nic                             map[string]map[string]uint64 // interface -> counter -> delta
	netstat                         map[string]uint64
	hostDrops                       uint64
	dropsByReason                   map[string]uint64
	listeners                       []Listener
	listenOverflows, zeroWindowAdvs uint64
}

// history keeps the host readings of the last window.
type history struct {
	samples []Host
}

// add appends h and drops readings older than keep before it (keeping the
// newest one at or before the window's start).
func (hs *history) add(h Host, keep time.Duration) {
	hs.samples = append(hs.samples, h)
	cut := h.At.Add(-keep)
	i := 0
	for i+1 < len(hs.samples) && !hs.samples[i+1].At.After(cut) {
		i++
	}
	hs.samples = hs.samples[i:]
	if len(hs.samples) > maxHostSamples {
		hs.samples = hs.samples[len(hs.samples)-maxHostSamples:]
	}
}

const maxHostSamples = 4096

// delta compares the newest reading with the one at or just before
// window's start (the oldest kept).
func (hs *history) delta() hostDelta {
	var d hostDelta
	if len(hs.samples) == 0 {
		return d
	}
	cur := hs.samples[len(hs.samples)-1]
	old := hs.samples[0]
	d.ok = len(hs.samples) > 1
	d.listeners = cur.Listeners
	if !d.ok {
		old = cur // first reading: every delta is zero
	}
	if cur.Conntrack != nil {
		c := *cur.Conntrack
		d.conntrack = &c
		if c.Limit > 0 {
			d.fill = float64(c.Entries) / float64(c.Limit)
		}
		if old.Conntrack != nil {
			o := old.Conntrack
			d.ctDrops = sub(c.Drop, o.Drop) + sub(c.EarlyDrop, o.EarlyDrop) + sub(c.InsertFailed, o.InsertFailed)
		}
	}
	if len(cur.NICs) > 0 {
		d.nic = map[string]map[string]uint64{}
		for _, n := range cur.NICs {
			var o map[string]uint64
			for _, on := range old.NICs {
				if on.Name == n.Name {
					o = on.Exceeded
				}
			}
			if o == nil {
				continue
			}
			for k, v := range n.Exceeded {
				if dv := sub(v, o[k]); dv > 0 {
					if d.nic[n.Name] == nil {
						d.nic[n.Name] = map[string]uint64{}
					}
					d.nic[n.Name][k] = dv
				}
			}
		}
	}
	if cur.Netstat != nil && old.Netstat != nil {
		d.netstat = map[string]uint64{}
		for k, v := range cur.Netstat {
			if dv := sub(v, old.Netstat[k]); dv > 0 {
				d.netstat[k] = dv
			}
		}
		d.listenOverflows = max(d.netstat["ListenOverflows"], d.netstat["ListenDrops"])
		d.zeroWindowAdvs = d.netstat["TCPToZeroWindowAdv"]
	}
	if cur.Drops != nil && old.Drops != nil {
		d.dropsByReason = map[string]uint64{}
		for k, v := range cur.Drops {
			if !isHostDrop(k) {
				continue
			}
			if dv := sub(v, old.Drops[k]); dv > 0 {
				d.dropsByReason[k] = dv
				d.hostDrops += dv
			}
		}
	}
	return d
}

// sub is a counter's delta; a counter that went back (reset) counts from
// zero.
func sub(cur, old uint64) uint64 {
	if cur < old {
		return cur
	}
	return cur - old
}
