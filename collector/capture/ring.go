package capture

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/gopacket/gopacket/afpacket"

	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/tcpanalysis"
)

// Directions, as label values.
const (
	dirRx = iota
	dirTx
	dirUnknown
	numDirs
)

var dirNames = [numDirs]string{"rx", "tx", "unknown"}

// Exported TCP events, in label order.
var eventDefs = []struct {
	ev   tcpanalysis.Events
	name string
}{
	{tcpanalysis.EvRetransmission, "retransmission"},
	{tcpanalysis.EvFastRetransmission, "fast_retransmission"},
	{tcpanalysis.EvSpuriousRetransmission, "spurious_retransmission"},
	{tcpanalysis.EvOutOfOrder, "out_of_order"},
	{tcpanalysis.EvDuplicateAck, "duplicate_ack"},
	{tcpanalysis.EvZeroWindow, "zero_window"},
	{tcpanalysis.EvZeroWindowProbe, "zero_window_probe"},
	{tcpanalysis.EvWindowFull, "window_full"},
	{tcpanalysis.EvWindowUpdate, "window_update"},
	{tcpanalysis.EvKeepAlive, "keep_alive"},
	{tcpanalysis.EvLostSegment, "lost_segment"},
	{tcpanalysis.EvAckedUnseen, "acked_unseen"},
	{tcpanalysis.EvRST, "rst"},
	{tcpanalysis.EvFIN, "fin"},
	{tcpanalysis.EvSYN, "syn"},
}

// linkInfo is what a ring needs to know about its interface.
type linkInfo struct {
	index    int
	name     string
	mac      net.HardwareAddr
	encap    string
	linkType tcpanalysis.LinkType
	linkHdr  uint32
	loopback bool
}

// linkFor maps a netlink encapsulation type to how frames start; ok is false
// for link types the decoder does not handle.
func linkFor(encap string) (lt tcpanalysis.LinkType, hdr uint32, loopback, ok bool) {
	switch encap {
	case "ether":
		return tcpanalysis.LinkEthernet, 14, false, true
	case "loopback":
		return tcpanalysis.LinkEthernet, 14, true, true
	case "none", "ppp", "ipip", "tunnel6", "sit":
		return tcpanalysis.LinkRaw, 0, false, true
	}
	return 0, 0, false, false
}

// ringStats is a ring's counters, guarded by ring.mu.
type ringStats struct {
	packets      [numDirs]uint64
	bytes        [numDirs]uint64
	df           [numDirs]uint64
	events       [numDirs][]uint64 // indexed like eventDefs
	wscale       [16]uint64        // SYNs by announced shift; 15 = none
	decodeErrors uint64
	peers        map[netip.Addr]uint64 // retransmissions by remote address
	peersOther   uint64                // peers beyond maxPeersTracked
}

// ring captures one interface: one TPACKET_V3 ring, one analyzer.
type ring struct {
	link   linkInfo
	tp     *afpacket.TPacket
	cancel context.CancelFunc
	done   chan struct{}
	err    error // why the reader stopped early (read after done)

	topPeers bool
	// started is when the ring was opened (restart backoff).
	started time.Time

	mu     sync.Mutex
	closed bool // the socket is closed (guarded by mu)
	// trace, if set (tests only, guarded by mu), sees every analysed
	// packet with its captured bytes.
	trace func(frame []byte, p *tcpanalysis.Packet, dir int, ev tcpanalysis.Events)
	an    *tcpanalysis.Analyzer
	st    ringStats
	ports []uint16 // Config.Ports, for tunnelled packets
}

func newRing(link linkInfo, cfg *Config, open func(func() error) error) (*ring, error) {
	r := &ring{link: link, done: make(chan struct{}), topPeers: cfg.TopPeers > 0, started: time.Now(), ports: cfg.Ports}
	for d := range r.st.events {
		r.st.events[d] = make([]uint64, len(eventDefs))
	}
	if r.topPeers {
		r.st.peers = map[netip.Addr]uint64{}
	}
	r.an = tcpanalysis.NewAnalyzer(tcpanalysis.Config{MaxFlows: cfg.MaxFlows, IdleTimeout: cfg.FlowIdleTimeout})
	const blockSize = 1 << 20
	filter, err := buildFilter(link.linkHdr, cfg.Ports, uint32(cfg.SnapLen), link.loopback)
	if err != nil {
		return nil, err
	}
	err = open(func() error {
		tp, err := afpacket.NewTPacket(
			afpacket.OptInterface(link.name),
			afpacket.OptTPacketVersion(afpacket.TPacketVersion3),
			afpacket.OptFrameSize(4096),
			afpacket.OptBlockSize(blockSize),
			afpacket.OptNumBlocks(cfg.RingSizeMB),
			afpacket.OptBlockTimeout(20*time.Millisecond),
			afpacket.OptPollTimeout(100*time.Millisecond),
		)
		if err != nil {
			return err
		}
		if err := tp.SetBPF(filter); err != nil {
			tp.Close()
			return fmt.Errorf("attach filter: %w", err)
		}
		r.tp = tp
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open AF_PACKET ring on %s: %w", link.name, err)
	}
	return r, nil
}

// run reads packets until ctx ends or the socket fails.
func (r *ring) run(ctx context.Context) {
	defer close(r.done)
	var p tcpanalysis.Packet
	for ctx.Err() == nil {
		data, ci, err := r.tp.ZeroCopyReadPacketData()
		if err != nil {
			if errors.Is(err, afpacket.ErrTimeout) {
				r.mu.Lock()
				r.an.Table.Expire(time.Now().UnixNano())
				r.mu.Unlock()
				continue
			}
			if ctx.Err() == nil {
				r.err = err
			}
			return
		}
		p.TimestampNanos, p.WireLen = ci.Timestamp.UnixNano(), ci.Length
		derr := tcpanalysis.Decode(r.link.linkType, data, &p)
		dir := r.direction(data)
		r.mu.Lock()
		if derr != nil || !p.TCPValid {
			if derr != nil || p.IPProto == 6 {
				r.st.decodeErrors++ // a tunnel's non-TCP traffic is no error
			}
			r.mu.Unlock()
			continue
		}
		if p.Encap != 0 && !r.portWanted(&p) {
			r.mu.Unlock()
			continue // tunnelled: the socket filter could not see the ports
		}
		ev, _ := r.an.Process(&p)
		if r.trace != nil {
			r.trace(data, &p, dir, ev)
		}
		r.account(&p, dir, ev)
		r.mu.Unlock()
	}
}

// portWanted applies the configured port list to a decoded packet.
func (r *ring) portWanted(p *tcpanalysis.Packet) bool {
	if len(r.ports) == 0 {
		return true
	}
	for _, port := range r.ports {
		if p.SrcPort == port || p.DstPort == port {
			return true
		}
	}
	return false
}

func (r *ring) direction(frame []byte) int {
	switch {
	case r.link.loopback:
		return dirRx // outgoing copies are filtered out: each packet once
	case r.link.linkType == tcpanalysis.LinkEthernet && len(frame) >= 12 && len(r.link.mac) == 6:
		if bytes.Equal(frame[6:12], r.link.mac) {
			return dirTx
		}
		return dirRx
	}
	return dirUnknown
}

func (r *ring) account(p *tcpanalysis.Packet, dir int, ev tcpanalysis.Events) {
	st := &r.st
	st.packets[dir]++
	st.bytes[dir] += uint64(p.WireLen)
	if p.DF {
		st.df[dir]++
	}
	if ev&tcpanalysis.EvSYN != 0 {
		if p.WScale >= 0 && p.WScale <= 14 {
			st.wscale[p.WScale]++
		} else {
			st.wscale[15]++
		}
	}
	if ev == 0 {
		return
	}
	evs := st.events[dir]
	for i, d := range eventDefs {
		if ev&d.ev != 0 {
			evs[i]++
		}
	}
	if st.peers != nil && ev&tcpanalysis.EvRetransmission != 0 {
		remote := p.Dst
		if dir == dirRx {
			remote = p.Src
		}
		a := tcpanalysis.Addr(p.IPVersion, remote)
		if _, ok := st.peers[a]; ok || len(st.peers) < maxPeersTracked {
			st.peers[a]++
		} else {
			st.peersOther++
		}
	}
}

// finished reports whether the reader has returned.
func (r *ring) finished() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// stop ends the reader and releases the ring. The ring memory is unmapped
// only after the reader has returned.
func (r *ring) stop() {
	if r.cancel != nil {
		r.cancel()
	}
	<-r.done
	r.mu.Lock()
	r.closed = true
	r.tp.Close()
	r.mu.Unlock()
}

var errRingClosed = errors.New("ring closed")

// kernelStats reads PACKET_STATISTICS (which resets the kernel's counters)
// and returns the running totals.
func (r *ring) kernelStats() (packets, drops, freezes uint64, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, 0, 0, errRingClosed
	}
	_, v3, err := r.tp.SocketStats()
	if err != nil {
		return 0, 0, 0, err
	}
	return uint64(v3.Packets()), uint64(v3.Drops()), uint64(v3.QueueFreezes()), nil
}

// snapshot copies what Update exports.
type snapshot struct {
	st                  ringStats
	flows               int
	evictIdle, evictCap uint64
	size                tcpanalysis.Histogram
	rtt, handshake      tcpanalysis.DurationHistogram
	topPeers            []peerCount
}

type peerCount struct {
	addr  string
	count uint64
}

// comparePeers ranks by packets, descending, then address.
func comparePeers(a, b peerCount) int {
	if c := cmp.Compare(b.count, a.count); c != 0 {
		return c
	}
	return strings.Compare(a.addr, b.addr)
}

func (r *ring) snapshot(topN int) snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := snapshot{st: r.st, flows: r.an.Table.Len(),
		evictIdle: r.an.Table.Evictions[tcpanalysis.EvictIdle], evictCap: r.an.Table.Evictions[tcpanalysis.EvictCapacity]}
	for d := range s.st.events {
		s.st.events[d] = append([]uint64(nil), r.st.events[d]...)
	}
	s.size = r.an.PacketSize.Clone()
	s.rtt = r.an.RTT.Clone()
	s.handshake = r.an.Handshake.Clone()
	s.st.peers = nil
	if r.st.peers != nil && topN > 0 {
		top := flow.NewTopN(topN, comparePeers)
		other := r.st.peersOther
		for a, c := range r.st.peers {
			if d, ok := top.Offer(peerCount{a.String(), c}); ok {
				other += d.count
			}
		}
		s.topPeers = append(top.Sorted(), peerCount{"other", other})
	}
	return s
}
