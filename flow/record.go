package flow

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// Direction says which side opened the connection.
type Direction uint8

// Directions.
const (
	DirUnknown Direction = iota
	// DirClient: this host connected (active open).
	DirClient
	// DirServer: this host accepted (passive open).
	DirServer
)

func (d Direction) String() string {
	switch d {
	case DirClient:
		return "client"
	case DirServer:
		return "server"
	}
	return "unknown"
}

// MarshalText makes a Direction a JSON string.
func (d Direction) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// ParseDirection parses "client", "server" or "unknown".
func ParseDirection(s string) (Direction, error) {
	switch s {
	case "client":
		return DirClient, nil
	case "server":
		return DirServer, nil
	case "unknown", "":
		return DirUnknown, nil
	}
	return DirUnknown, fmt.Errorf("direction %q: want client or server", s)
}

// Record is the state of one TCP connection as a back end last saw it.
// Counters are totals over the connection's life so far.
type Record struct {
	// ID identifies the connection while it lives (the kernel socket cookie
	// for eBPF, the socket cookie from INET_DIAG for sock_diag). Records
	// with the same ID update the same table entry.
	ID uint64

	Local, Remote netip.AddrPort
	Direction     Direction

	// PID and Comm of the process at connect (client) or of the process
	// that called listen() (server); CgroupID is its cgroup v2 id. Zero when
	// unknown.
	PID      uint32
	Comm     string
	CgroupID uint64

	// NetNS is the inode of the connection's network namespace (as stat(2)
	// of /proc/PID/ns/net shows it); 0 when unknown. Two connections with
	// the same addresses in different namespaces differ here.
	NetNS uint32

	// State is the TCP state name in lower case ("established", "close").
	State string
	// Start is when the connection was opened (connect or accept), End when
	// it closed (zero while open).
	Start, End time.Time
	Closed     bool

	BytesSent     uint64 // bytes acknowledged by the peer
	BytesReceived uint64 // bytes received in order
	SegsOut       uint64 // data segments sent, retransmissions included
	SegsIn        uint64 // data segments received

	SRTT, MinRTT, MaxRTT time.Duration

	// Retransmits counts retransmitted segments, as tcpi_total_retrans.
	Retransmits uint64
	// SynRetransmits is the part of Retransmits sent during the handshake.
	SynRetransmits uint64
	// RTOs counts retransmission timeouts.
	RTOs uint64

	RSTSent, RSTReceived uint64

	// ConnectLatency is the handshake time (client side); ConnectFailed is
	// set when a connect never reached ESTABLISHED (refused, timed out).
	ConnectLatency time.Duration
	ConnectFailed  bool
	// ConnectResult says how a failed connect ended: "refused" (RST to the
	// SYN), "timeout" (SYN retries exhausted or the socket closed before an
	// answer), "reset"; "" when the connect succeeded or the back end cannot
	// tell. Only meaningful with ConnectFailed.
	ConnectResult string
	// Per-connection signals from tcp_info, latest sample: eBPF reads them
	// at most once a second per socket and at close; sock_diag at each poll
	// and at close. Zero when the back end cannot read them.
	//
	// BusyTime is tcpi_busy_time (time with data in flight); RwndLimited is
	// tcpi_rwnd_limited (time sending was limited by the peer's receive
	// window); SndbufLimited is tcpi_sndbuf_limited (time limited by this
	// host's send buffer).
	BusyTime, RwndLimited, SndbufLimited time.Duration
	// DeliveryRate is tcpi_delivery_rate in bytes per second.
	DeliveryRate uint64
	// DSACKDups is tcpi_dsack_dups: segments the peer reported received
	// twice (spurious retransmissions).
	DSACKDups uint64
	// SndWnd is tcpi_snd_wnd, the peer's advertised receive window in bytes;
	// RcvWnd the window this host advertises (tcp_sock rcv_wnd) when known.
	SndWnd, RcvWnd uint32
	// RecvQueue is the bytes received and not yet read by the application
	// (the receive queue, as ss's Recv-Q on an established socket).
	RecvQueue uint32
	// ZeroWindowSent and ZeroWindowReceived count the samples at which this
	// host advertised a zero window (RcvWnd 0: the application does not
	// read) or saw the peer's window at zero (SndWnd 0 with data queued).
	// They are sampled observations, not per-segment counts; the host's
	// per-segment count is TCPToZeroWindowAdv in /proc/net/netstat.
	ZeroWindowSent, ZeroWindowReceived uint64
}

// ServerPort is the well-known side's port: the remote port of a client
// connection, the local port of a server connection.
func (r *Record) ServerPort() uint16 {
	if r.Direction == DirServer {
		return r.Local.Port()
	}
	return r.Remote.Port()
}

// recordJSON is the wire shape of GET /api/v1/flows.
type recordJSON struct {
	ID                 uint64    `json:"id"`
	LocalAddr          string    `json:"local_addr"`
	LocalPort          uint16    `json:"local_port"`
	RemoteAddr         string    `json:"remote_addr"`
	RemotePort         uint16    `json:"remote_port"`
	Direction          Direction `json:"direction"`
	PID                uint32    `json:"pid"`
	Comm               string    `json:"comm"`
	CgroupID           uint64    `json:"cgroup_id"`
	NetNS              uint32    `json:"netns"`
	HostNetNS          bool      `json:"host_netns"`
	State              string    `json:"state"`
	Closed             bool      `json:"closed"`
	Start              time.Time `json:"start,omitzero"`
	End                time.Time `json:"end,omitzero"`
	DurationSeconds    float64   `json:"duration_seconds"`
	Retransmissions    uint64    `json:"retransmissions"`
	SynRetransmissions uint64    `json:"syn_retransmissions"`
	RTOs               uint64    `json:"rtos"`
	BytesSent          uint64    `json:"bytes_sent"`
	BytesReceived      uint64    `json:"bytes_received"`
	SegsOut            uint64    `json:"segs_out"`
	SegsIn             uint64    `json:"segs_in"`
	SRTTSeconds        float64   `json:"srtt_seconds"`
	MinRTTSeconds      float64   `json:"min_rtt_seconds"`
	MaxRTTSeconds      float64   `json:"max_rtt_seconds"`
	RSTSent            uint64    `json:"rst_sent"`
	RSTReceived        uint64    `json:"rst_received"`
	ConnectLatency     float64   `json:"connect_latency_seconds"`
	ConnectFailed      bool      `json:"connect_failed"`
	ConnectResult      string    `json:"connect_result,omitempty"`
	BusySeconds        float64   `json:"busy_seconds"`
	RwndLimitedSeconds float64   `json:"rwnd_limited_seconds"`
	SndbufLimitedSecs  float64   `json:"sndbuf_limited_seconds"`
	DeliveryRateBytes  uint64    `json:"delivery_rate_bytes_per_second"`
	DSACKDups          uint64    `json:"dsack_dups"`
	SndWndBytes        uint32    `json:"snd_wnd_bytes"`
	RcvWndBytes        uint32    `json:"rcv_wnd_bytes"`
	RecvQueueBytes     uint32    `json:"recv_queue_bytes"`
	ZeroWindowSent     uint64    `json:"zero_window_sent"`
	ZeroWindowReceived uint64    `json:"zero_window_received"`
}

// MarshalJSON writes the API shape (addresses and ports apart, durations in
// seconds).
func (r Record) MarshalJSON() ([]byte, error) {
	j := recordJSON{
		ID: r.ID, LocalAddr: addrString(r.Local.Addr()), LocalPort: r.Local.Port(),
		RemoteAddr: addrString(r.Remote.Addr()), RemotePort: r.Remote.Port(),
		Direction: r.Direction, PID: r.PID, Comm: r.Comm, CgroupID: r.CgroupID,
		NetNS: r.NetNS, HostNetNS: isHostNetNS(r.NetNS),
		State: r.State, Closed: r.Closed, Start: r.Start, End: r.End,
		Retransmissions: r.Retransmits, SynRetransmissions: r.SynRetransmits, RTOs: r.RTOs,
		BytesSent: r.BytesSent, BytesReceived: r.BytesReceived, SegsOut: r.SegsOut, SegsIn: r.SegsIn,
		SRTTSeconds: r.SRTT.Seconds(), MinRTTSeconds: r.MinRTT.Seconds(), MaxRTTSeconds: r.MaxRTT.Seconds(),
		RSTSent: r.RSTSent, RSTReceived: r.RSTReceived,
		ConnectLatency: r.ConnectLatency.Seconds(), ConnectFailed: r.ConnectFailed, ConnectResult: r.ConnectResult,
		BusySeconds: r.BusyTime.Seconds(), RwndLimitedSeconds: r.RwndLimited.Seconds(),
		SndbufLimitedSecs: r.SndbufLimited.Seconds(), DeliveryRateBytes: r.DeliveryRate, DSACKDups: r.DSACKDups,
		SndWndBytes: r.SndWnd, RcvWndBytes: r.RcvWnd, RecvQueueBytes: r.RecvQueue,
		ZeroWindowSent: r.ZeroWindowSent, ZeroWindowReceived: r.ZeroWindowReceived,
	}
	if !r.Start.IsZero() {
		end := r.End
		if end.IsZero() {
			end = time.Now()
		}
		j.DurationSeconds = end.Sub(r.Start).Seconds()
	}
	return json.Marshal(j)
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.Unmap().String()
}

// tcpStates are the kernel's TCP state names (include/net/tcp_states.h).
var tcpStates = [...]string{"unknown", "established", "syn_sent", "syn_recv", "fin_wait1", "fin_wait2",
	"time_wait", "close", "close_wait", "last_ack", "listen", "closing", "new_syn_recv", "bound_inactive"}

// TCPStateName returns the lower-case name of a kernel TCP state number.
func TCPStateName(s uint8) string {
	if int(s) < len(tcpStates) {
		return tcpStates[s]
	}
	return fmt.Sprintf("state_%d", s)
}

// InitNetNSInode is the fixed inode recent kernels give the initial (host)
// network namespace (PROC_NET_INIT_INO, 0xEFFFFFF9; the value on the 6.18
// CI kernel). Earlier kernels number every network namespace dynamically
// from 0xF0000000 up, so this value never names another namespace.
const InitNetNSInode uint32 = 0xEFFFFFF9

// hostNetNS returns the inode of the host's network namespace, read once
// (tests replace it).
var hostNetNS = sync.OnceValue(func() uint32 {
	if ino := NetNSInode("/proc/1/ns/net"); ino != 0 {
		return ino
	}
	// PID 1 may be out of reach (no CAP_SYS_PTRACE over it, a sandbox);
	// the agent's own namespace is the host's if it has the fixed inode.
	if ino := NetNSInode("/proc/self/ns/net"); ino == InitNetNSInode {
		return ino
	}
	return 0
})

// HostNetNS returns the inode of the host's network namespace: that of
// PID 1 (/proc/1/ns/net, read once), or InitNetNSInode when PID 1 cannot be
// inspected and the agent runs in the initial namespace of a kernel that
// gives it the fixed inode; 0 when unknown (an agent in its own PID namespace sees its
// own PID 1).
func HostNetNS() uint32 { return hostNetNS() }

// NetNSInode returns the inode of the network namespace file at path
// (/proc/PID/ns/net, /var/run/netns/NAME); 0 when it cannot be read.
func NetNSInode(path string) uint32 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0
	}
	return uint32(st.Ino)
}

// IsHostNetNS reports whether the record is known to belong to the host's
// network namespace.
func (r *Record) IsHostNetNS() bool { return isHostNetNS(r.NetNS) }

func isHostNetNS(ino uint32) bool {
	return ino != 0 && (ino == hostNetNS() || ino == InitNetNSInode)
}
