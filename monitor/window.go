package monitor

import (
	"net/netip"
	"time"

	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/monitor/topology"
)

// This file is the contract between the monitors engine (which fills
// Windows from the agent's flow table) and the health verdict (which reads
// them). Fields may be added; none may change meaning.

// Place is where an address sits, as the topology resolver answered
// (defined in monitor/topology, which the engine uses).
type Place = topology.Place

// Stats sums what connections did over a window. Counters are deltas
// within the window (not lifetime totals); the *Max / latest fields are
// the largest value seen in the window.
type Stats struct {
	// Connections active in the window; Opened of them established in it.
	Connections, Opened      uint64
	BytesSent, BytesReceived uint64
	SegsOut, SegsIn          uint64
	// Retransmits are all retransmitted segments; SynRetransmits the part
	// sent during the handshake (phase "handshake"), the rest "established".
	Retransmits, SynRetransmits, RTOs uint64
	// DSACKDups are retransmissions the peer reported as duplicates
	// (spurious: reordering, not loss).
	DSACKDups uint64
	// Connect outcomes of connects (client side) in the window.
	ConnectOK, ConnectRefused, ConnectTimeout, ConnectReset uint64
	// EstablishedResets are established connections reset by the peer.
	EstablishedResets uint64
	// Time, summed over connections, that sending was busy, limited by the
	// peer's receive window, or by this host's send buffer (deltas of the
	// tcp_info chrono counters).
	BusyTime, RwndLimited, SndbufLimited time.Duration
	// Zero-window samples (see flow.Record) in the window.
	ZeroWindowSent, ZeroWindowReceived uint64
	// RecvQueueMax is the largest receive queue seen, bytes.
	RecvQueueMax uint32
	// RTT is one smoothed-RTT observation per connection per window;
	// Handshake one connect latency per successful connect; MinRTT the
	// smallest tcpi_min_rtt seen. Buckets are flow's shared set.
	RTT, Handshake flow.Histogram
	MinRTT         time.Duration
}

// Remote is one remote address (and server port when all its connections
// in the window share one, else 0) within a monitor's window.
type Remote struct {
	Addr  netip.Addr
	Port  uint16
	Place Place
	Stats Stats
}

// Window is one monitor over its last window.
type Window struct {
	Name       string
	Start, End time.Time
	// Totals over every connection the monitor matched.
	Totals Stats
	// Remotes active in the window, most loss events first; bounded by the
	// engine's group limit (RemotesDropped counts those left out).
	Remotes        []Remote
	RemotesDropped uint64
}
