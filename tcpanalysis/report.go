package tcpanalysis

import (
	"cmp"
	"strings"
	"time"

	"github.com/netsight/netsight/flow"
)

// FlowReport is the exported, self-contained summary of one flow.
type FlowReport struct {
	Client    string    `json:"client"` // addr:port of the side that opened the connection
	Server    string    `json:"server"`
	IPVersion uint8     `json:"ip_version"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Duration  float64   `json:"duration_seconds"`

	Packets         uint64 `json:"packets"`
	Bytes           uint64 `json:"bytes"`
	Retransmissions uint64 `json:"retransmissions"`
	// RetransmitRatio is retransmissions over all packets of the flow.
	RetransmitRatio float64 `json:"retransmit_ratio"`

	// HandshakeSYNToSYNACK and HandshakeSYNACKToACK are in seconds, 0 when
	// the handshake was not captured.
	HandshakeSYNToSYNACK float64 `json:"handshake_syn_to_synack_seconds"`
	HandshakeSYNACKToACK float64 `json:"handshake_synack_to_ack_seconds"`

	// ResetBy is "client", "server", "both" or "" (no RST).
	ResetBy string `json:"reset_by,omitempty"`
	// Encapsulation names the tunnels the flow was carried in (Encap's
	// String: "vxlan", "vlan+pppoe", ...), "" for plain IP.
	Encapsulation string `json:"encapsulation,omitempty"`

	ClientToServer DirStats `json:"client_to_server"`
	ServerToClient DirStats `json:"server_to_client"`

	score uint64
}

// Report builds the FlowReport of f.
func Report(f *Flow) FlowReport {
	c := f.Client
	s := 1 - c
	cs, sc := f.Dir[c].Stats, f.Dir[s].Stats
	r := FlowReport{
		Client:          f.Key.Endpoint(c).String(),
		Server:          f.Key.Endpoint(s).String(),
		IPVersion:       f.IPVersion,
		FirstSeen:       time.Unix(0, f.FirstSeen).UTC(),
		LastSeen:        time.Unix(0, f.LastSeen).UTC(),
		Duration:        time.Duration(f.LastSeen - f.FirstSeen).Seconds(),
		Packets:         cs.Packets + sc.Packets,
		Bytes:           cs.Bytes + sc.Bytes,
		Retransmissions: cs.Retransmissions + sc.Retransmissions,
		Encapsulation:   f.Encap.String(),
		ClientToServer:  cs,
		ServerToClient:  sc,
	}
	a, b := f.HandshakeRTT()
	r.HandshakeSYNToSYNACK, r.HandshakeSYNACKToACK = a.Seconds(), b.Seconds()
	switch {
	case cs.Resets > 0 && sc.Resets > 0:
		r.ResetBy = "both"
	case cs.Resets > 0:
		r.ResetBy = "client"
	case sc.Resets > 0:
		r.ResetBy = "server"
	}
	if r.Packets > 0 {
		r.RetransmitRatio = float64(r.Retransmissions) / float64(r.Packets)
	}
	r.score = Score(f)
	return r
}

// Score orders flows from worst to best: retransmissions dominate, then
// zero windows, resets, duplicate ACKs; packets break ties.
func Score(f *Flow) uint64 {
	var s uint64
	for i := range f.Dir {
		st := &f.Dir[i].Stats
		s += st.Retransmissions*1000 + st.ZeroWindows*500 + st.Resets*500 + st.DuplicateAcks*10 + st.OutOfOrder*10
	}
	return s
}

// Worst keeps the n flows with the highest Score, offered as they leave the
// flow table (OnEvict) or at the end (Flush). Memory is bounded by n.
type Worst struct {
	top *flow.TopN[FlowReport]
}

// NewWorst returns a tracker of the n worst flows.
func NewWorst(n int) *Worst { return &Worst{top: flow.NewTopN(n, compareWorst)} }

// compareWorst ranks by Score, then packets, descending; then client.
func compareWorst(a, b FlowReport) int {
	if c := cmp.Compare(b.score, a.score); c != 0 {
		return c
	}
	if c := cmp.Compare(b.Packets, a.Packets); c != 0 {
		return c
	}
	return strings.Compare(a.Client, b.Client)
}

// Offer considers f.
func (w *Worst) Offer(f *Flow) {
	// Build the report only for a flow that ranks high enough (the empty
	// client ranks first among equals, so the pre-check never rejects a
	// flow Offer would keep).
	pk := f.Dir[0].Stats.Packets + f.Dir[1].Stats.Packets
	if !w.top.Admits(FlowReport{score: Score(f), Packets: pk}) {
		return
	}
	w.top.Offer(Report(f))
}

// Flows returns the tracked flows, worst first.
func (w *Worst) Flows() []FlowReport { return w.top.Sorted() }
