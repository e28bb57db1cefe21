package tcpanalysis_test

// Captures built frame by frame (gopacket's encoder, pcapgo's writer) for
// the real-world cases of issue 16: frames shorter on the wire than their
// IP header claims, connections silent for minutes or hours, port reuse.
// Each is analysed by us and by tshark; the counts must agree.

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/netsight/netsight/tcpanalysis"
)

// builder writes one TCP conversation between 10.9.0.1:40000 (client) and
// 10.9.0.2:443 (server).
type builder struct {
	t     *testing.T
	now   time.Time
	recs  []rec
	cport uint16
}

func newBuilder(t *testing.T) *builder {
	return &builder{t: t, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), cport: 40000}
}

// seg appends a segment after d. wire > 0 records the frame with that wire
// (and captured) length instead of its real one, as a capture of a short
// copy or a sliced frame would.
func (b *builder) seg(d time.Duration, fromClient bool, flags string, seq, ack uint32, n int, wire int) {
	b.now = b.now.Add(d)
	src, dst := net.IP{10, 9, 0, 1}, net.IP{10, 9, 0, 2}
	sp, dp := b.cport, uint16(443)
	if !fromClient {
		src, dst, sp, dp = dst, src, dp, sp
	}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), Seq: seq, Ack: ack, Window: 1000}
	for _, c := range flags {
		switch c {
		case 'S':
			tcp.SYN = true
		case 'A':
			tcp.ACK = true
		case 'F':
			tcp.FIN = true
		case 'R':
			tcp.RST = true
		case 'P':
			tcp.PSH = true
		}
	}
	data := frame(b.t, &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, Flags: layers.IPv4DontFragment, SrcIP: src, DstIP: dst},
		tcp, gopacket.Payload(make([]byte, n)))
	w := len(data)
	if wire > 0 {
		data, w = data[:wire], wire
	}
	b.recs = append(b.recs, rec{ts: b.now.UnixNano(), data: data, wire: w})
}

func (b *builder) write(name string) string {
	file := filepath.Join(b.t.TempDir(), name)
	writeRecs(b.t, file, layers.LinkTypeEthernet, b.recs)
	return file
}

// frame serialises layers with gopacket, fixing lengths and checksums.
func frame(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	for _, l := range ls {
		if tcp, ok := l.(*layers.TCP); ok {
			for _, n := range ls {
				if ip, ok := n.(*layers.IPv4); ok {
					_ = tcp.SetNetworkLayerForChecksum(ip)
				}
			}
		}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// analyzeWith analyses file with cfg (analyzeFile uses the defaults).
func analyzeWith(t *testing.T, file string, cfg tcpanalysis.Config) *tcpanalysis.Analyzer {
	t.Helper()
	recs, lt := readRecs(t, file)
	a := tcpanalysis.NewAnalyzer(cfg)
	var p tcpanalysis.Packet
	for _, r := range recs {
		p.TimestampNanos, p.WireLen = r.ts, r.wire
		if err := tcpanalysis.Decode(lt, r.data, &p); err != nil {
			a.Undecodable(&p, err)
			continue
		}
		a.Process(&p)
	}
	return a
}

func compareTshark(t *testing.T, file string, a *tcpanalysis.Analyzer) {
	t.Helper()
	ours, theirs := ourCounts(a), tsharkCounts(t, file)
	for k, v := range theirs {
		if ours[k] != v {
			t.Errorf("%s: ours %d, tshark %d", k, ours[k], v)
		}
	}
}

func handshake(b *builder, cisn, sisn uint32) {
	b.seg(0, true, "S", cisn, 0, 0, 0)
	b.seg(time.Millisecond, false, "SA", sisn, cisn+1, 0, 0)
	b.seg(time.Millisecond, true, "A", cisn+1, sisn+1, 0, 0)
}

// TestShortWireCopies: a data segment followed by a 54-byte copy of it (on
// the wire too: a sliced or short duplicate frame) whose IP header still
// says 1500 bytes. The copy carries no data, so it is no retransmission.
func TestShortWireCopies(t *testing.T) {
	requireTshark(t)
	b := newBuilder(t)
	handshake(b, 1000, 5000)
	for i := uint32(0); i < 4; i++ {
		seq := 1001 + i*1448
		b.seg(time.Millisecond, true, "PA", seq, 5001, 1448, 0)
		b.seg(time.Microsecond, true, "PA", seq, 5001, 1448, 54) // short copy
		b.seg(time.Millisecond, false, "A", 5001, seq+1448, 0, 0)
	}
	file := b.write("short-copies.pcap")
	a := analyzeWith(t, file, tcpanalysis.Config{IdleTimeout: tcpanalysis.NoIdleTimeout})
	if a.Totals.Retransmissions != 0 {
		t.Errorf("short copies counted as %d retransmissions", a.Totals.Retransmissions)
	}
	compareTshark(t, file, a)
}

// TestLongSilence: a connection silent for 5 minutes retransmits, then
// sends a keep-alive after 2 hours 10 minutes. Without idle eviction (file
// analysis) it stays one flow, the retransmission and keep-alive are seen,
// like tshark; the live default (2 minutes) splits it.
func TestLongSilence(t *testing.T) {
	requireTshark(t)
	b := newBuilder(t)
	handshake(b, 1000, 5000)
	b.seg(time.Millisecond, true, "PA", 1001, 5001, 100, 0)
	b.seg(time.Millisecond, true, "PA", 1101, 5001, 100, 0)
	b.seg(time.Millisecond, false, "A", 5001, 1101, 0, 0)
	b.seg(5*time.Minute, true, "PA", 1101, 5001, 100, 0) // retransmission after 5 minutes
	b.seg(time.Millisecond, false, "A", 5001, 1201, 0, 0)
	b.seg(2*time.Hour+10*time.Minute, true, "A", 1200, 5001, 0, 0) // keep-alive
	b.seg(time.Millisecond, false, "A", 5001, 1201, 0, 0)
	file := b.write("long-silence.pcap")
	a := analyzeWith(t, file, tcpanalysis.Config{IdleTimeout: tcpanalysis.NoIdleTimeout})
	if a.Totals.Flows != 1 || a.Totals.Retransmissions != 1 || a.Totals.KeepAlives != 1 {
		t.Errorf("flows %d, retransmissions %d, keep-alives %d; want 1, 1, 1", a.Totals.Flows, a.Totals.Retransmissions, a.Totals.KeepAlives)
	}
	if n := a.Table.Evictions[tcpanalysis.EvictIdle]; n != 0 {
		t.Errorf("%d idle evictions without an idle timeout", n)
	}
	compareTshark(t, file, a)

	live := analyzeWith(t, file, tcpanalysis.Config{})
	if live.Totals.Flows != 3 || live.Table.Evictions[tcpanalysis.EvictIdle] != 2 {
		t.Errorf("with the live idle timeout: flows %d, idle evictions %d; want 3, 2", live.Totals.Flows, live.Table.Evictions[tcpanalysis.EvictIdle])
	}
}

// TestPortReuse: a connection closes, and a second one on the same ports
// starts with a new ISN: two flows, no retransmission. A SYN retransmitted
// with its original ISN stays a retransmission.
func TestPortReuse(t *testing.T) {
	requireTshark(t)
	b := newBuilder(t)
	b.seg(0, true, "S", 1000, 0, 0, 0)
	b.seg(time.Second, true, "S", 1000, 0, 0, 0) // retransmitted SYN
	b.seg(time.Millisecond, false, "SA", 5000, 1001, 0, 0)
	b.seg(time.Millisecond, true, "A", 1001, 5001, 0, 0)
	b.seg(time.Millisecond, true, "PA", 1001, 5001, 100, 0)
	b.seg(time.Millisecond, false, "FA", 5001, 1101, 0, 0)
	b.seg(time.Millisecond, true, "FA", 1101, 5002, 0, 0)
	b.seg(time.Millisecond, false, "A", 5002, 1102, 0, 0)
	// the same ports again, 3 s later (TIME-WAIT reuse), new ISNs
	b.seg(3*time.Second, true, "S", 700000, 0, 0, 0)
	b.seg(time.Millisecond, false, "SA", 900000, 700001, 0, 0)
	b.seg(time.Millisecond, true, "A", 700001, 900001, 0, 0)
	b.seg(time.Millisecond, true, "PA", 700001, 900001, 100, 0)
	b.seg(time.Millisecond, false, "A", 900001, 700101, 0, 0)
	// and again after an RST
	b.seg(time.Millisecond, true, "RA", 700101, 900001, 0, 0)
	b.seg(time.Second, true, "S", 1000, 0, 0, 0)
	b.seg(time.Millisecond, false, "SA", 42, 1001, 0, 0)
	b.seg(time.Millisecond, true, "A", 1001, 43, 0, 0)
	file := b.write("port-reuse.pcap")
	a := analyzeWith(t, file, tcpanalysis.Config{IdleTimeout: tcpanalysis.NoIdleTimeout})
	if a.Totals.Flows != 3 || a.Totals.Retransmissions != 1 || a.Table.Evictions[tcpanalysis.EvictReused] != 2 {
		t.Errorf("flows %d, retransmissions %d, reused %d; want 3, 1 (the SYN), 2",
			a.Totals.Flows, a.Totals.Retransmissions, a.Table.Evictions[tcpanalysis.EvictReused])
	}
	compareTshark(t, file, a)
}
