package tcpanalysis

import (
	"encoding/json"
	"math"
	"sort"
	"time"
)

// Events is the set of analysis results of one packet, a bit set. The names
// follow Wireshark's tcp.analysis.* fields; docs/analyze.md lists where the
// definitions differ on purpose.
type Events uint32

// Packet analysis events.
const (
	// EvRetransmission: the segment carries data (or SYN/FIN) below the
	// highest sequence number already seen in its direction. Set also for
	// fast and spurious retransmissions, like tcp.analysis.retransmission.
	EvRetransmission Events = 1 << iota
	// EvFastRetransmission: a retransmission of the sequence number that the
	// other side acknowledged at least 3 times (2+ duplicate ACKs), within
	// 20 ms of the last of them.
	EvFastRetransmission
	// EvSpuriousRetransmission: a retransmission of data the other side had
	// already acknowledged.
	EvSpuriousRetransmission
	// EvOutOfOrder: the segment fills a gap this capture point never saw
	// data for, shortly (less than the handshake RTT, 3 ms if unknown)
	// after the higher data.
	EvOutOfOrder
	// EvDuplicateAck: a pure ACK repeating the previous ACK number and
	// window of its direction.
	EvDuplicateAck
	// EvZeroWindow: the sender advertises a zero receive window (SYN, FIN
	// and RST excluded).
	EvZeroWindow
	// EvZeroWindowProbe: one byte at the next sequence number while the
	// other side's window is zero.
	EvZeroWindowProbe
	// EvZeroWindowProbeAck: the ACK answering a zero-window probe.
	EvZeroWindowProbeAck
	// EvWindowFull: the segment fills the other side's advertised window.
	EvWindowFull
	// EvWindowUpdate: a pure ACK that only changes the window.
	EvWindowUpdate
	// EvKeepAlive: zero or one byte one below the next sequence number.
	EvKeepAlive
	// EvKeepAliveAck: the ACK answering a keep-alive.
	EvKeepAliveAck
	// EvLostSegment: the segment starts above the next expected sequence
	// number: data in between was not captured (tcp.analysis.lost_segment).
	EvLostSegment
	// EvAckedUnseen: the ACK covers data this capture never saw
	// (tcp.analysis.ack_lost_segment).
	EvAckedUnseen
	// EvRST, EvFIN, EvSYN: the flags.
	EvRST
	EvFIN
	EvSYN
	// EvNewFlow: the packet created a flow table entry.
	EvNewFlow
	// EvRTTSample: the packet produced an ACK-based RTT sample.
	EvRTTSample
)

// Is reports whether every bit of x is set.
func (e Events) Is(x Events) bool { return e&x == x }

// EventCounts counts the tcp.analysis events of packets: per direction of a
// flow (DirStats) and over everything an Analyzer saw (Totals).
type EventCounts struct {
	Retransmissions         uint64 `json:"retransmissions"`
	FastRetransmissions     uint64 `json:"fast_retransmissions"`
	SpuriousRetransmissions uint64 `json:"spurious_retransmissions"`
	OutOfOrder              uint64 `json:"out_of_order"`
	DuplicateAcks           uint64 `json:"duplicate_acks"`
	ZeroWindows             uint64 `json:"zero_windows"`
	ZeroWindowProbes        uint64 `json:"zero_window_probes"`
	WindowFull              uint64 `json:"window_full"`
	WindowUpdates           uint64 `json:"window_updates"`
	KeepAlives              uint64 `json:"keep_alives"`
	LostSegments            uint64 `json:"lost_segments"`
	AckedUnseen             uint64 `json:"acked_unseen"`
	Resets                  uint64 `json:"resets"`
	Fins                    uint64 `json:"fins"`
}

// countedEvents are the events EventCounts counts.
const countedEvents = EvRetransmission | EvFastRetransmission | EvSpuriousRetransmission | EvOutOfOrder |
	EvDuplicateAck | EvZeroWindow | EvZeroWindowProbe | EvWindowFull | EvWindowUpdate | EvKeepAlive |
	EvLostSegment | EvAckedUnseen | EvRST | EvFIN

// Add counts the events of one packet.
func (c *EventCounts) Add(ev Events) {
	if ev&countedEvents == 0 {
		return // the common case: an ordinary data segment or ACK
	}
	if ev&EvRetransmission != 0 {
		c.Retransmissions++
	}
	if ev&EvFastRetransmission != 0 {
		c.FastRetransmissions++
	}
	if ev&EvSpuriousRetransmission != 0 {
		c.SpuriousRetransmissions++
	}
	if ev&EvOutOfOrder != 0 {
		c.OutOfOrder++
	}
	if ev&EvDuplicateAck != 0 {
		c.DuplicateAcks++
	}
	if ev&EvZeroWindow != 0 {
		c.ZeroWindows++
	}
	if ev&EvZeroWindowProbe != 0 {
		c.ZeroWindowProbes++
	}
	if ev&EvWindowFull != 0 {
		c.WindowFull++
	}
	if ev&EvWindowUpdate != 0 {
		c.WindowUpdates++
	}
	if ev&EvKeepAlive != 0 {
		c.KeepAlives++
	}
	if ev&EvLostSegment != 0 {
		c.LostSegments++
	}
	if ev&EvAckedUnseen != 0 {
		c.AckedUnseen++
	}
	if ev&EvRST != 0 {
		c.Resets++
	}
	if ev&EvFIN != 0 {
		c.Fins++
	}
}

// DirStats are the counters of one direction of a flow.
type DirStats struct {
	Packets      uint64 `json:"packets"`
	Bytes        uint64 `json:"bytes"`
	PayloadBytes uint64 `json:"payload_bytes"`

	EventCounts
	Syns uint64 `json:"syns"`
	DF   uint64 `json:"df"`

	// WScale is the window-scale shift this side announced in its SYN, -1
	// when it sent none or the SYN was not seen.
	WScale int8 `json:"window_scale"`
	// MSS announced in the SYN, 0 if unknown.
	MSS uint16 `json:"mss"`

	// RTT samples measured from this side's data to the other side's ACK.
	RTT RTTStats `json:"rtt"`
}

// RTTStats summarises RTT samples without keeping them. JSON gives seconds
// as floats: count, sum_seconds, min_seconds, max_seconds, mean_seconds.
type RTTStats struct {
	Count uint64
	Sum   time.Duration
	Min   time.Duration
	Max   time.Duration
}

type rttStatsJSON struct {
	Count uint64  `json:"count"`
	Sum   float64 `json:"sum_seconds"`
	Min   float64 `json:"min_seconds"`
	Max   float64 `json:"max_seconds"`
	Mean  float64 `json:"mean_seconds"`
}

// MarshalJSON writes the durations in seconds.
func (r RTTStats) MarshalJSON() ([]byte, error) {
	return json.Marshal(rttStatsJSON{Count: r.Count, Sum: r.Sum.Seconds(), Min: r.Min.Seconds(), Max: r.Max.Seconds(), Mean: r.Mean().Seconds()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *RTTStats) UnmarshalJSON(b []byte) error {
	var j rttStatsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	sec := func(f float64) time.Duration { return time.Duration(math.Round(f * 1e9)) }
	*r = RTTStats{Count: j.Count, Sum: sec(j.Sum), Min: sec(j.Min), Max: sec(j.Max)}
	return nil
}

// Add records one sample.
func (r *RTTStats) Add(d time.Duration) {
	if r.Count == 0 || d < r.Min {
		r.Min = d
	}
	if d > r.Max {
		r.Max = d
	}
	r.Count++
	r.Sum += d
}

// Mean is the average sample, 0 without samples.
func (r RTTStats) Mean() time.Duration {
	if r.Count == 0 {
		return 0
	}
	return r.Sum / time.Duration(r.Count)
}

const maxHoles = 8

type hole struct{ start, end uint32 } // [start, end)

// dirState is the per-direction analysis state (the "fwd"/"rev" of
// Wireshark's tcp_analyze_seq_info).
type dirState struct {
	haveNext    bool
	nextSeq     uint32 // highest seq+len (+1 for SYN/FIN) sent
	nextSeqTime int64
	maxToAck    uint32 // highest nextSeq, for "ACKed unseen segment"
	haveAck     bool
	lastAck     uint32
	lastAckTime int64
	haveWindow  bool
	window      uint64 // scaled
	dupAcks     uint32
	lastEvents  Events

	synSeen  bool
	haveBase bool
	base     uint32 // the ISN (seq of the SYN), or seq-1 of the first segment without one
	scale    int8   // -1 unknown, -2 no scaling negotiated, else the shift

	holes  [maxHoles]hole
	nholes int

	timing    bool
	timedEnd  uint32
	timedTime int64

	Stats DirStats
}

// Flow is one TCP connection (or UDP / other IP 5-tuple) in the flow table.
type Flow struct {
	Key Key
	// Client is the index (0 or 1) of Key's endpoint that opened the
	// connection: the SYN sender, or, without a SYN, the side with the
	// higher port.
	Client int
	// IPVersion is 4 or 6, Proto the IP protocol.
	IPVersion uint8
	Proto     uint8
	FirstSeen int64
	LastSeen  int64

	// Handshake timestamps (Unix ns, 0 if not seen).
	SYNTime, SYNACKTime, ACKTime int64

	// Encap is every encapsulation the flow's packets came in (see
	// Packet.Encap); 0 for plain IP.
	Encap Encap

	Dir [2]dirState

	prev, next *Flow // LRU list
	closed     bool  // FIN both ways or RST seen: on the table's closed list
}

// Stats returns the counters of direction d (0 or 1 as in Key).
func (f *Flow) Stats(d int) *DirStats { return &f.Dir[d].Stats }

// HandshakeRTT returns SYN to SYN-ACK (the server side of the handshake as
// seen from the capture point) and SYN-ACK to ACK (the client side); zero
// when not observed.
func (f *Flow) HandshakeRTT() (synToSynAck, synAckToAck time.Duration) {
	if f.SYNTime != 0 && f.SYNACKTime != 0 && f.SYNACKTime >= f.SYNTime {
		synToSynAck = time.Duration(f.SYNACKTime - f.SYNTime)
	}
	if f.SYNACKTime != 0 && f.ACKTime != 0 && f.ACKTime >= f.SYNACKTime {
		synAckToAck = time.Duration(f.ACKTime - f.SYNACKTime)
	}
	return
}

// firstRTT is Wireshark's tcp.analysis.initial_rtt (SYN to the ACK of the
// SYN-ACK); 0 if unknown.
func (f *Flow) firstRTT() int64 {
	if f.SYNTime != 0 && f.ACKTime != 0 && f.ACKTime > f.SYNTime {
		return f.ACKTime - f.SYNTime
	}
	return 0
}

// Totals are counters over every packet an Analyzer has seen.
type Totals struct {
	Packets    uint64 `json:"packets"`
	Bytes      uint64 `json:"bytes"`
	IPv4       uint64 `json:"ipv4"`
	IPv6       uint64 `json:"ipv6"`
	TCP        uint64 `json:"tcp"`
	UDP        uint64 `json:"udp"`
	OtherIP    uint64 `json:"other_ip"`
	NonIP      uint64 `json:"non_ip"`
	Undecoded  uint64 `json:"undecodable"`
	Fragments  uint64 `json:"fragments"`
	Flows      uint64 `json:"flows"` // flow entries created
	DF         uint64 `json:"df"`
	Syns       uint64 `json:"syns"`
	RTTSamples uint64 `json:"rtt_samples"`
	// Encapsulated counts IP packets found inside a tunnel, MPLS or PPPoE
	// (VLAN tags alone do not count); EncapPackets by kind (index: bit
	// number of Encap, names from EncapNames).
	Encapsulated uint64            `json:"encapsulated"`
	EncapPackets [numEncaps]uint64 `json:"-"`
	EventCounts
}

// SkipCount is how many frames had one kind of undecoded content.
type SkipCount struct {
	Skip   Skip
	Frames uint64
}

// maxSkipKinds bounds the distinct Skip values an Analyzer counts.
const maxSkipKinds = 16

// Config bounds an Analyzer.
type Config struct {
	// MaxFlows is the flow table capacity; when full the least recently
	// seen flow is evicted (closed ones first). Default 65536.
	MaxFlows int
	// IdleTimeout evicts flows without packets for this long (measured in
	// packet time). 0 selects the default, 2 minutes (live capture);
	// NoIdleTimeout keeps open flows until the table is full (file
	// analysis), closed ones for ClosedLinger.
	IdleTimeout time.Duration
	// OnEvict, if set, is called with each flow leaving the table
	// (evicted or flushed), before it is reused.
	OnEvict func(f *Flow, reason EvictReason)
}

// Analyzer is the per-flow, per-direction TCP analysis engine. It is not
// safe for concurrent use; give each capture goroutine its own.
type Analyzer struct {
	Table *Table

	Totals     Totals
	PacketSize Histogram         // IP length of every IP packet
	Payload    Histogram         // TCP payload length of TCP packets
	RTT        DurationHistogram // ACK-based RTT samples
	Handshake  DurationHistogram // SYN to SYN-ACK and SYN-ACK to ACK

	skips        [maxSkipKinds]SkipCount
	nskips       int
	skippedOther uint64 // frames with a Skip beyond the first maxSkipKinds kinds
}

// NewAnalyzer returns an analyzer with the given bounds.
func NewAnalyzer(cfg Config) *Analyzer {
	return &Analyzer{
		Table:      NewTable(cfg.MaxFlows, cfg.IdleTimeout, cfg.OnEvict),
		PacketSize: NewHistogram(PacketSizeBuckets),
		Payload:    NewHistogram(PayloadSizeBuckets),
		RTT:        NewDurationHistogram(RTTBuckets),
		Handshake:  NewDurationHistogram(RTTBuckets),
	}
}

// Process analyses one decoded packet and returns its events and flow (nil
// for non-IP packets and fragments without ports). The flow pointer is only
// valid until the next call.
func (a *Analyzer) Process(p *Packet) (Events, *Flow) {
	t := &a.Totals
	t.Packets++
	t.Bytes += uint64(p.WireLen)
	if p.Encap != 0 {
		a.countEncap(p.Encap)
	}
	if p.Skipped.Kind != SkipNone {
		a.countSkip(p.Skipped)
	}
	switch p.IPVersion {
	case 4:
		t.IPv4++
	case 6:
		t.IPv6++
	default:
		t.NonIP++
		return 0, nil
	}
	a.PacketSize.Observe(uint64(p.IPLen))
	if p.DF {
		t.DF++
	}
	if p.Fragment && !p.TCPValid {
		t.Fragments++
		return 0, nil
	}
	switch p.IPProto {
	case 6:
		t.TCP++
	case 17:
		t.UDP++
	default:
		t.OtherIP++
	}
	if p.IPProto != 6 || !p.TCPValid {
		return 0, nil
	}
	a.Payload.Observe(uint64(p.PayloadLen))
	key, d := MakeKey(p)
	f, created := a.Table.Get(key, p.TimestampNanos)
	if !created && p.Flags&(FlagSYN|FlagACK) == FlagSYN && f.Dir[d].haveBase && p.Seq != f.Dir[d].base {
		// Port reuse: a SYN with another ISN opens a new connection (as
		// Wireshark's tcp.analysis.reused_ports), it is no retransmission.
		a.Table.Reuse(f, p.TimestampNanos)
		created = true
	}
	var ev Events
	if created {
		ev |= EvNewFlow
		t.Flows++
		f.IPVersion, f.Proto, f.FirstSeen = p.IPVersion, p.IPProto, p.TimestampNanos
		for i := range f.Dir {
			f.Dir[i].scale = -1
			f.Dir[i].Stats.WScale = -1
		}
		if key.PortA > key.PortB {
			f.Client = 0
		} else {
			f.Client = 1
		}
	}
	f.LastSeen = p.TimestampNanos
	if p.Encap != 0 {
		f.Encap |= p.Encap
	}
	ev |= a.analyzeTCP(f, d, p)
	if ev&(EvRST|EvFIN) != 0 && !f.closed && (ev&EvRST != 0 || f.Dir[0].Stats.Fins > 0 && f.Dir[1].Stats.Fins > 0) {
		a.Table.MarkClosed(f)
	}
	a.count(ev)
	return ev, f
}

func (a *Analyzer) count(ev Events) {
	if ev == 0 {
		return
	}
	a.Totals.Add(ev)
	if ev&EvSYN != 0 {
		a.Totals.Syns++
	}
	if ev&EvRTTSample != 0 {
		a.Totals.RTTSamples++
	}
}

const (
	fastRetransWindow  = int64(20 * time.Millisecond)
	defaultOOOThresh   = int64(3 * time.Millisecond)
	flagsSynFinRst     = FlagSYN | FlagFIN | FlagRST
	maxPlausibleWScale = 14
)

// analyzeTCP follows Wireshark's tcp_analyze_sequence_number: the checks run
// in the same order with the same conditions, except for the documented
// differences (holes: a segment repeating bytes this capture point already
// saw is a retransmission, never out-of-order).
func (a *Analyzer) analyzeTCP(f *Flow, d int, p *Packet) Events {
	fwd, rev := &f.Dir[d], &f.Dir[1-d]
	st := &fwd.Stats
	now := p.TimestampNanos
	flags := p.Flags
	seq, ack := p.Seq, p.Ack
	seglen := uint32(p.PayloadLen)
	var ev Events

	st.Packets++
	st.Bytes += uint64(p.IPLen)
	st.PayloadBytes += uint64(p.PayloadLen)
	if p.DF {
		st.DF++
	}
	if flags&FlagRST != 0 {
		ev |= EvRST
	}
	if flags&FlagFIN != 0 {
		ev |= EvFIN
	}

	if !fwd.haveBase {
		fwd.haveBase = true
		fwd.base = seq
		if flags&FlagSYN == 0 {
			fwd.base--
		}
	}

	// Handshake, window scale, client/server.
	if flags&FlagSYN != 0 {
		ev |= EvSYN
		st.Syns++
		fwd.synSeen = true
		fwd.scale = p.WScale
		st.WScale = p.WScale
		if p.MSS != 0 {
			st.MSS = p.MSS
		}
		if flags&FlagACK == 0 {
			f.Client = d
			if f.SYNTime == 0 {
				f.SYNTime = now
			}
		} else {
			f.Client = 1 - d
			if f.SYNACKTime == 0 {
				f.SYNACKTime = now
				if f.SYNTime != 0 && now >= f.SYNTime {
					a.Handshake.Observe(time.Duration(now - f.SYNTime))
				}
			}
			// Window scaling is in effect only if both SYNs carry it.
			if p.WScale < 0 || rev.scale < 0 {
				fwd.scale, rev.scale = -2, -2
			}
		}
	} else if f.SYNACKTime != 0 && f.ACKTime == 0 && d == f.Client && flags&FlagACK != 0 {
		f.ACKTime = now
		if now >= f.SYNACKTime {
			a.Handshake.Observe(time.Duration(now - f.SYNACKTime))
		}
	}

	// The advertised window in bytes. Windows in SYNs are never scaled.
	window := uint64(p.Window)
	if flags&FlagSYN == 0 && fwd.scale > 0 {
		window <<= uint(fwd.scale)
	}

	// ZERO WINDOW PROBE
	if seglen == 1 && fwd.haveNext && seq == fwd.nextSeq && rev.haveWindow && rev.window == 0 {
		ev |= EvZeroWindowProbe
		goto finishedFwd
	}
	// ZERO WINDOW
	if window == 0 && flags&flagsSynFinRst == 0 {
		ev |= EvZeroWindow
	}
	// LOST SEGMENT (previous segment not captured)
	if fwd.haveNext && seqGT(seq, fwd.nextSeq) && flags&FlagRST == 0 {
		ev |= EvLostSegment
		fwd.addHole(fwd.nextSeq, seq)
	}
	// KEEP ALIVE
	if seglen <= 1 && flags&flagsSynFinRst == 0 && fwd.haveNext && fwd.nextSeq-1 == seq {
		ev |= EvKeepAlive
	}
	// WINDOW UPDATE
	if seglen == 0 && window != 0 && fwd.haveWindow && window != fwd.window && fwd.haveNext && seq == fwd.nextSeq &&
		fwd.haveAck && ack == fwd.lastAck && flags&flagsSynFinRst == 0 {
		ev |= EvWindowUpdate
	}
	// WINDOW FULL
	if seglen > 0 && rev.scale != -1 && rev.haveAck && rev.haveWindow &&
		seq+seglen == rev.lastAck+uint32(rev.window) && flags&flagsSynFinRst == 0 {
		ev |= EvWindowFull
	}
	// KEEP ALIVE ACK
	if seglen == 0 && window != 0 && fwd.haveWindow && window == fwd.window && fwd.haveNext && seq == fwd.nextSeq &&
		fwd.haveAck && ack == fwd.lastAck && rev.lastEvents&EvKeepAlive != 0 && flags&flagsSynFinRst == 0 {
		ev |= EvKeepAliveAck
		goto finishedFwd
	}
	// ZERO WINDOW PROBE ACK
	if seglen == 0 && window == 0 && fwd.haveWindow && window == fwd.window && fwd.haveNext && seq == fwd.nextSeq &&
		fwd.haveAck && ack == fwd.lastAck && rev.lastEvents&EvZeroWindowProbe != 0 && flags&flagsSynFinRst == 0 {
		ev |= EvZeroWindowProbeAck
		goto finishedFwd
	}
	// DUPLICATE ACK
	if seglen == 0 && window != 0 && fwd.haveWindow && window == fwd.window && fwd.haveNext && seq == fwd.nextSeq &&
		fwd.haveAck && ack == fwd.lastAck && flags&flagsSynFinRst == 0 && flags&FlagACK != 0 {
		fwd.dupAcks++
		ev |= EvDuplicateAck
	}

finishedFwd:
	// The duplicate-ACK run ends when the ACK number changes (a window
	// update in between does not end it).
	if flags&FlagACK != 0 && (!fwd.haveAck || ack != fwd.lastAck) {
		fwd.dupAcks = 0
	}
	// ACKED UNSEEN SEGMENT
	if flags&FlagACK != 0 && rev.haveNext && seqGT(ack, rev.maxToAck) {
		ev |= EvAckedUnseen
		rev.maxToAck = ack
	}

	// RETRANSMISSION / FAST / SPURIOUS / OUT-OF-ORDER
	if (seglen > 0 || flags&(FlagSYN|FlagFIN) != 0) && fwd.haveNext && seqLT(seq, fwd.nextSeq) && ev&EvKeepAlive == 0 {
		end := seq + seglen
		inHole := fwd.fillHoles(seq, end)
		switch {
		case seglen > 0 && rev.haveAck && seqLE(end, rev.lastAck):
			ev |= EvRetransmission | EvSpuriousRetransmission
		case rev.dupAcks >= 2 && rev.haveAck && rev.lastAck == seq && now-rev.lastAckTime < fastRetransWindow:
			ev |= EvRetransmission | EvFastRetransmission
		case inHole && now-fwd.nextSeqTime < oooThreshold(f) && fwd.nextSeq != end:
			ev |= EvOutOfOrder
		default:
			ev |= EvRetransmission
		}
		if ev&EvRetransmission != 0 && fwd.timing && seqGT(fwd.timedEnd, seq) {
			fwd.timing = false // Karn: no RTT sample from retransmitted data
		}
	}

	// Next expected sequence number.
	{
		next := seq + seglen
		if flags&(FlagSYN|FlagFIN) != 0 {
			next++
		}
		if (!fwd.haveNext || seqGT(next, fwd.nextSeq)) && ev&EvZeroWindowProbe == 0 {
			if fwd.haveNext && seglen > 0 && !fwd.timing && ev&EvRetransmission == 0 {
				fwd.timing, fwd.timedEnd, fwd.timedTime = true, next, now
			}
			fwd.haveNext = true
			fwd.nextSeq = next
			fwd.nextSeqTime = now
			if seqGT(next, fwd.maxToAck) || fwd.maxToAck == 0 {
				fwd.maxToAck = next
			}
		}
	}

	// ACK-based RTT: the other side's timed segment is now acknowledged.
	if flags&FlagACK != 0 && rev.timing && seqGE(ack, rev.timedEnd) {
		rev.timing = false
		if now >= rev.timedTime {
			rtt := time.Duration(now - rev.timedTime)
			rev.Stats.RTT.Add(rtt)
			a.RTT.Observe(rtt)
			ev |= EvRTTSample
		}
	}

	// Remember the ACK and window for the next packet of this direction.
	if flags&FlagACK != 0 {
		fwd.haveAck = true
		fwd.lastAck = ack
		fwd.lastAckTime = now
	}
	fwd.haveWindow = true
	fwd.window = window
	fwd.lastEvents = ev
	st.Add(ev)
	return ev
}

func oooThreshold(f *Flow) int64 {
	if r := f.firstRTT(); r > 0 {
		return r
	}
	return defaultOOOThresh
}

// addHole records [start, end) as never seen. With more holes than fit, the
// oldest is forgotten (its bytes then count as seen: a late segment there is
// a retransmission rather than out-of-order).
func (s *dirState) addHole(start, end uint32) {
	if s.nholes == maxHoles {
		copy(s.holes[:], s.holes[1:])
		s.nholes--
	}
	s.holes[s.nholes] = hole{start, end}
	s.nholes++
}

// fillHoles removes [start, end) from the holes and reports whether any of
// those bytes were in a hole, i.e. not seen before at this capture point.
func (s *dirState) fillHoles(start, end uint32) bool {
	found := false
	for i := 0; i < s.nholes; i++ {
		h := s.holes[i]
		if !seqLT(start, h.end) || !seqGT(end, h.start) {
			continue // no overlap
		}
		found = true
		switch {
		case seqLE(start, h.start) && seqGE(end, h.end): // covers it
			copy(s.holes[i:], s.holes[i+1:s.nholes])
			s.nholes--
			i--
		case seqLE(start, h.start): // covers the head
			s.holes[i].start = end
		case seqGE(end, h.end): // covers the tail
			s.holes[i].end = start
		default: // splits it
			s.holes[i].end = start
			if s.nholes < maxHoles {
				copy(s.holes[i+2:], s.holes[i+1:s.nholes])
				s.holes[i+1] = hole{end, h.end}
				s.nholes++
				i++
			}
		}
	}
	return found
}

// Undecodable counts a frame Decode rejected: non-IP frames (ErrUnsupported)
// as non-IP, damaged ones as undecodable.
func (a *Analyzer) Undecodable(p *Packet, err error) {
	a.Totals.Packets++
	a.Totals.Bytes += uint64(p.WireLen)
	if err == ErrUnsupported {
		a.Totals.NonIP++
		if p.Skipped.Kind != SkipNone {
			a.countSkip(p.Skipped)
		}
		return
	}
	a.Totals.Undecoded++
}

func (a *Analyzer) countEncap(e Encap) {
	if e&^EncapVLAN != 0 {
		a.Totals.Encapsulated++
	}
	for i := range a.Totals.EncapPackets {
		if e&(1<<i) != 0 {
			a.Totals.EncapPackets[i]++
		}
	}
}

func (a *Analyzer) countSkip(s Skip) {
	for i := 0; i < a.nskips; i++ {
		if a.skips[i].Skip == s {
			a.skips[i].Frames++
			return
		}
	}
	if a.nskips == maxSkipKinds {
		a.skippedOther++
		return
	}
	a.skips[a.nskips] = SkipCount{Skip: s, Frames: 1}
	a.nskips++
}

// Skipped returns how many frames had each kind of content the decoder
// does not decode (link types, EtherTypes, tunnel payloads; see Skip),
// most frequent first, and how many more frames had kinds beyond the
// first 16 counted.
func (a *Analyzer) Skipped() (kinds []SkipCount, other uint64) {
	kinds = append(kinds, a.skips[:a.nskips]...)
	sort.SliceStable(kinds, func(i, j int) bool { return kinds[i].Frames > kinds[j].Frames })
	return kinds, a.skippedOther
}
