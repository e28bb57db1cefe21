package tcpanalysis

import (
	"net/netip"
	"testing"
	"time"
)

// conv builds packets of one connection between a client and a server.
type conv struct {
	t      *testing.T
	a      *Analyzer
	now    int64
	ver    uint8
	cli    [16]byte
	srv    [16]byte
	cport  uint16
	sport  uint16
	events []Events
}

func newConv(t *testing.T, v6 bool) *conv {
	c := &conv{t: t, a: NewAnalyzer(Config{}), now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano(),
		ver: 4, cport: 40000, sport: 443}
	if v6 {
		c.ver = 6
		c.cli = netip.MustParseAddr("2001:db8::1").As16()
		c.srv = netip.MustParseAddr("2001:db8::2").As16()
	} else {
		c.cli = [16]byte{10, 0, 0, 1}
		c.srv = [16]byte{10, 0, 0, 2}
	}
	return c
}

type seg struct {
	fromServer bool
	after      time.Duration
	seq, ack   uint32
	flags      uint8
	win        uint16
	len        int
	wscale     int8
	df         bool
}

func (c *conv) send(s seg) Events {
	c.t.Helper()
	c.now += int64(s.after)
	p := Packet{TimestampNanos: c.now, IPVersion: c.ver, IPProto: 6, TCPValid: true,
		Seq: s.seq, Ack: s.ack, Flags: s.flags, Window: s.win, PayloadLen: s.len, WScale: -1, DF: s.df}
	if s.flags&FlagSYN != 0 {
		p.WScale = s.wscale
	}
	p.IPLen = 40 + s.len
	p.WireLen = p.IPLen + 14
	if s.fromServer {
		p.Src, p.Dst, p.SrcPort, p.DstPort = c.srv, c.cli, c.sport, c.cport
	} else {
		p.Src, p.Dst, p.SrcPort, p.DstPort = c.cli, c.srv, c.cport, c.sport
	}
	ev, f := c.a.Process(&p)
	if f == nil {
		c.t.Fatalf("packet not analysed")
	}
	ev &^= EvNewFlow | EvRTTSample
	c.events = append(c.events, ev)
	return ev
}

func (c *conv) flow() *Flow {
	var out *Flow
	c.a.Table.Each(func(f *Flow) { out = f })
	return out
}

// handshake opens the connection with ISNs ci and si, window scale 7 both
// ways, and returns the next client and server sequence numbers.
func (c *conv) handshake(ci, si uint32) (uint32, uint32) {
	c.send(seg{seq: ci, flags: FlagSYN, win: 64240, wscale: 7})
	c.send(seg{fromServer: true, after: 100 * time.Microsecond, seq: si, ack: ci + 1, flags: FlagSYN | FlagACK, win: 65160, wscale: 7})
	c.send(seg{after: 120 * time.Microsecond, seq: ci + 1, ack: si + 1, flags: FlagACK, win: 502})
	return ci + 1, si + 1
}

const mss = 1000

func names(e Events) string {
	all := []struct {
		e Events
		n string
	}{
		{EvRetransmission, "retrans"}, {EvFastRetransmission, "fast"}, {EvSpuriousRetransmission, "spurious"},
		{EvOutOfOrder, "ooo"}, {EvDuplicateAck, "dupack"}, {EvZeroWindow, "zerowin"}, {EvZeroWindowProbe, "zwp"},
		{EvZeroWindowProbeAck, "zwpack"}, {EvWindowFull, "winfull"}, {EvWindowUpdate, "winupdate"},
		{EvKeepAlive, "keepalive"}, {EvKeepAliveAck, "keepaliveack"}, {EvLostSegment, "lost"},
		{EvAckedUnseen, "ackunseen"}, {EvRST, "rst"}, {EvFIN, "fin"}, {EvSYN, "syn"},
	}
	s := ""
	for _, x := range all {
		if e&x.e != 0 {
			if s != "" {
				s += ","
			}
			s += x.n
		}
	}
	if s == "" {
		return "-"
	}
	return s
}

func expect(t *testing.T, got Events, want string) {
	t.Helper()
	if g := names(got); g != want {
		t.Errorf("events = %s, want %s", g, want)
	}
}

func TestAnalysisCases(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		name := "ipv4"
		if v6 {
			name = "ipv6"
		}
		t.Run(name, func(t *testing.T) {
			t.Run("in order, no events, wscale, handshake and ack rtt", func(t *testing.T) {
				c := newConv(t, v6)
				cs, ss := c.handshake(1000, 5000)
				for i := 0; i < 4; i++ {
					expect(t, c.send(seg{after: 10 * time.Microsecond, seq: cs + uint32(i*mss), ack: ss, flags: FlagACK | FlagPSH, win: 502, len: mss, df: true}), "-")
				}
				expect(t, c.send(seg{fromServer: true, after: 200 * time.Microsecond, seq: ss, ack: cs + 4*mss, flags: FlagACK, win: 500}), "-")
				f := c.flow()
				if f.Dir[f.Client].Stats.WScale != 7 || f.Dir[1-f.Client].Stats.WScale != 7 {
					t.Errorf("wscale = %d/%d, want 7/7", f.Dir[f.Client].Stats.WScale, f.Dir[1-f.Client].Stats.WScale)
				}
				a, b := f.HandshakeRTT()
				if a != 100*time.Microsecond || b != 120*time.Microsecond {
					t.Errorf("handshake = %v, %v", a, b)
				}
				rtt := f.Dir[f.Client].Stats.RTT
				if rtt.Count != 1 || rtt.Min != 230*time.Microsecond {
					t.Errorf("rtt = %+v, want one sample of 230µs (first data segment to its ACK)", rtt)
				}
				if got := f.Dir[f.Client].Stats.DF; got != 4 {
					t.Errorf("DF = %d, want 4", got)
				}
				r := Report(f)
				if r.Client != endpoint(c.ver, c.cli, c.cport) || r.Server != endpoint(c.ver, c.srv, c.sport) {
					t.Errorf("report client/server = %s/%s", r.Client, r.Server)
				}
			})
			t.Run("rto retransmission", func(t *testing.T) {
				c := newConv(t, v6)
				cs, ss := c.handshake(1000, 5000)
				c.send(seg{seq: cs, ack: ss, flags: FlagACK, win: 502, len: mss})
				c.send(seg{seq: cs + mss, ack: ss, flags: FlagACK, win: 502, len: mss})
				c.send(seg{fromServer: true, after: time.Millisecond, seq: ss, ack: cs + mss, flags: FlagACK, win: 500})
				expect(t, c.send(seg{after: 300 * time.Millisecond, seq: cs + mss, ack: ss, flags: FlagACK, win: 502, len: mss}), "retrans")
			})
			t.Run("fast retransmission after dup acks", func(t *testing.T) {
				c := newConv(t, v6)
				cs, ss := c.handshake(1000, 5000)
				for i := 0; i < 5; i++ {
					c.send(seg{seq: cs + uint32(i*mss), ack: ss, flags: FlagACK, win: 502, len: mss})
				}
				// segment 1 lost downstream: the receiver acks segment 0, then dup-acks.
				expect(t, c.send(seg{fromServer: true, after: 100 * time.Microsecond, seq: ss, ack: cs + mss, flags: FlagACK, win: 500}), "-")
				expect(t, c.send(seg{fromServer: true, after: 10 * time.Microsecond, seq: ss, ack: cs + mss, flags: FlagACK, win: 500}), "dupack")
				expect(t, c.send(seg{fromServer: true, after: 10 * time.Microsecond, seq: ss, ack: cs + mss, flags: FlagACK, win: 500}), "dupack")
				// a window update between dup acks does not end the run (Wireshark)
				expect(t, c.send(seg{fromServer: true, after: 10 * time.Microsecond, seq: ss, ack: cs + mss, flags: FlagACK, win: 510}), "winupdate")
				expect(t, c.send(seg{after: 50 * time.Microsecond, seq: cs + mss, ack: ss, flags: FlagACK, win: 502, len: mss}), "retrans,fast")
				// too late for "fast": plain retransmission
				c.send(seg{fromServer: true, after: 10 * time.Microsecond, seq: ss, ack: cs + 2*mss, flags: FlagACK, win: 510})
				c.send(seg{fromServer: true, after: 10 * time.Microsecond, seq: ss, ack: cs + 2*mss, flags: FlagACK, win: 510})
				c.send(seg{fromServer: true, after: 10 * time.Microsecond, seq: ss, ack: cs + 2*mss, flags: FlagACK, win: 510})
				expect(t, c.send(seg{after: 30 * time.Millisecond, seq: cs + 2*mss, ack: ss, flags: FlagACK, win: 502, len: mss}), "retrans")
				f := c.flow()
				st := f.Dir[f.Client].Stats
				if st.Retransmissions != 2 || st.FastRetransmissions != 1 {
					t.Errorf("retrans=%d fast=%d, want 2, 1", st.Retransmissions, st.FastRetransmissions)
				}
				if got := f.Dir[1-f.Client].Stats.DuplicateAcks; got != 4 {
					t.Errorf("dup acks = %d, want 4", got)
				}
			})
			t.Run("spurious retransmission", func(t *testing.T) {
				c := newConv(t, v6)
				cs, ss := c.handshake(1000, 5000)
				c.send(seg{seq: cs, ack: ss, flags: FlagACK, win: 502, len: mss})
				c.send(seg{fromServer: true, after: time.Millisecond, seq: ss, ack: cs + mss, flags: FlagACK, win: 500})
				expect(t, c.send(seg{after: 200 * time.Millisecond, seq: cs, ack: ss, flags: FlagACK, win: 502, len: mss}), "retrans,spurious")
			})
			t.Run("out of order vs repeat", func(t *testing.T) {
				c := newConv(t, v6)
				cs, ss := c.handshake(1000, 5000)
				c.send(seg{seq: cs, ack: ss, flags: FlagACK, win: 502, len: mss})
				// segment 1 overtaken by segment 2: a gap this capture never saw
				expect(t, c.send(seg{after: 10 * time.Microsecond, seq: cs + 2*mss, ack: ss, flags: FlagACK, win: 502, len: mss}), "lost")
				expect(t, c.send(seg{after: 10 * time.Microsecond, seq: cs + mss, ack: ss, flags: FlagACK, win: 502, len: mss}), "ooo")
				// the same bytes again right away: seen before, so a retransmission
				// (Wireshark would call it out-of-order: documented difference)
				expect(t, c.send(seg{after: 10 * time.Microsecond, seq: cs + mss, ack: ss, flags: FlagACK, win: 502, len: mss}), "retrans")
				// a gap filled long after: the original was lost before the capture point
				expect(t, c.send(seg{after: 10 * time.Microsecond, seq: cs + 4*mss, ack: ss, flags: FlagACK, win: 502, len: mss}), "lost")
				expect(t, c.send(seg{after: 200 * time.Millisecond, seq: cs + 3*mss, ack: ss, flags: FlagACK, win: 502, len: mss}), "retrans")
			})
			t.Run("zero window, probe, probe ack, window update", func(t *testing.T) {
				c := newConv(t, v6)
				cs, ss := c.handshake(1000, 5000)
				c.send(seg{seq: cs, ack: ss, flags: FlagACK, win: 502, len: mss})
				expect(t, c.send(seg{fromServer: true, after: time.Millisecond, seq: ss, ack: cs + mss, flags: FlagACK, win: 0}), "zerowin")
				expect(t, c.send(seg{after: 200 * time.Millisecond, seq: cs + mss, ack: ss, flags: FlagACK, win: 502, len: 1}), "zwp")
				expect(t, c.send(seg{fromServer: true, after: time.Millisecond, seq: ss, ack: cs + mss, flags: FlagACK, win: 0}), "zerowin,zwpack")
				expect(t, c.send(seg{fromServer: true, after: time.Millisecond, seq: ss, ack: cs + mss, flags: FlagACK, win: 300}), "winupdate")
				// the probe byte, sent again as part of a full segment, is not a retransmission
				expect(t, c.send(seg{after: time.Millisecond, seq: cs + mss, ack: ss, flags: FlagACK, win: 502, len: mss}), "-")
				f := c.flow()
				if got := f.Dir[1-f.Client].Stats.ZeroWindows; got != 2 {
					t.Errorf("zero windows = %d, want 2", got)
				}
			})
			t.Run("window full with scaling", func(t *testing.T) {
				c := newConv(t, v6)
				cs, ss := c.handshake(1000, 5000)
				// server advertises 16 << 7 = 2048 bytes
				c.send(seg{fromServer: true, after: time.Millisecond, seq: ss, ack: cs, flags: FlagACK, win: 16})
				expect(t, c.send(seg{seq: cs, ack: ss, flags: FlagACK, win: 502, len: 1048}), "-")
				expect(t, c.send(seg{seq: cs + 1048, ack: ss, flags: FlagACK, win: 502, len: 1000}), "winfull")
			})
			t.Run("keep-alive and its ack", func(t *testing.T) {
				c := newConv(t, v6)
				cs, ss := c.handshake(1000, 5000)
				c.send(seg{seq: cs, ack: ss, flags: FlagACK, win: 502, len: 10})
				c.send(seg{fromServer: true, after: time.Millisecond, seq: ss, ack: cs + 10, flags: FlagACK, win: 500})
				expect(t, c.send(seg{after: 45 * time.Second, seq: cs + 9, ack: ss, flags: FlagACK, win: 502}), "keepalive")
				expect(t, c.send(seg{fromServer: true, after: time.Millisecond, seq: ss, ack: cs + 10, flags: FlagACK, win: 500}), "keepaliveack")
				expect(t, c.send(seg{after: 45 * time.Second, seq: cs + 9, ack: ss, flags: FlagACK, win: 502, len: 1}), "keepalive")
			})
			t.Run("fin and rst by side", func(t *testing.T) {
				c := newConv(t, v6)
				cs, ss := c.handshake(1000, 5000)
				expect(t, c.send(seg{seq: cs, ack: ss, flags: FlagACK | FlagFIN, win: 502}), "fin")
				expect(t, c.send(seg{fromServer: true, seq: ss, ack: cs + 1, flags: FlagRST | FlagACK}), "rst")
				r := Report(c.flow())
				if r.ResetBy != "server" || r.ClientToServer.Fins != 1 {
					t.Errorf("reset_by=%q fins=%d", r.ResetBy, r.ClientToServer.Fins)
				}
				// a retransmitted FIN is a retransmission
				expect(t, c.send(seg{after: 200 * time.Millisecond, seq: cs, ack: ss, flags: FlagACK | FlagFIN, win: 502}), "retrans,fin")
			})
			t.Run("sequence wrap-around", func(t *testing.T) {
				c := newConv(t, v6)
				isn := uint32(0xffffffff - 2500)
				cs, ss := c.handshake(isn, 0xfffffff0)
				for i := 0; i < 6; i++ { // crosses 2^32 at the third segment
					expect(t, c.send(seg{after: 10 * time.Microsecond, seq: cs + uint32(i*mss), ack: ss, flags: FlagACK, win: 502, len: mss}), "-")
				}
				expect(t, c.send(seg{fromServer: true, after: time.Millisecond, seq: ss, ack: cs + 6*mss, flags: FlagACK, win: 500}), "-")
				// retransmissions on both sides of the wrap
				expect(t, c.send(seg{after: 300 * time.Millisecond, seq: cs + 1*mss, ack: ss, flags: FlagACK, win: 502, len: mss}), "retrans,spurious")
				expect(t, c.send(seg{after: time.Millisecond, seq: cs + 4*mss, ack: ss, flags: FlagACK, win: 502, len: mss}), "retrans,spurious")
				expect(t, c.send(seg{after: time.Millisecond, seq: cs + 6*mss, ack: ss, flags: FlagACK, win: 502, len: mss}), "-")
				expect(t, c.send(seg{after: time.Millisecond, seq: cs + 8*mss, ack: ss, flags: FlagACK, win: 502, len: mss}), "lost")
				f := c.flow()
				if got := f.Dir[f.Client].Stats.LostSegments; got != 1 {
					t.Errorf("lost segments = %d, want 1 (no false gap at the wrap)", got)
				}
			})
			t.Run("no syn seen: client is the higher port, window scale unknown", func(t *testing.T) {
				c := newConv(t, v6)
				c.send(seg{seq: 77, ack: 99, flags: FlagACK, win: 502, len: mss})
				c.send(seg{seq: 77 + mss, ack: 99, flags: FlagACK, win: 502, len: mss})
				f := c.flow()
				r := Report(f)
				if r.Client != endpoint(c.ver, c.cli, c.cport) || r.ClientToServer.WScale != -1 {
					t.Errorf("client=%s wscale=%d", r.Client, r.ClientToServer.WScale)
				}
			})
		})
	}
}

func endpoint(v uint8, a [16]byte, port uint16) string {
	return netip.AddrPortFrom(Addr(v, a), port).String()
}

func TestFlowTableBounds(t *testing.T) {
	var evicted [numEvictReasons]int
	a := NewAnalyzer(Config{MaxFlows: 3, IdleTimeout: 10 * time.Second, OnEvict: func(_ *Flow, r EvictReason) { evicted[r]++ }})
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	pkt := func(at time.Duration, port uint16) {
		p := Packet{TimestampNanos: base + int64(at), IPVersion: 4, IPProto: 6, TCPValid: true,
			Src: [16]byte{10, 0, 0, 1}, Dst: [16]byte{10, 0, 0, 2}, SrcPort: port, DstPort: 80, Flags: FlagACK, WScale: -1}
		a.Process(&p)
	}
	for i := 0; i < 5; i++ {
		pkt(time.Duration(i)*time.Millisecond, uint16(1000+i))
	}
	if a.Table.Len() != 3 || a.Table.Evictions[EvictCapacity] != 2 || evicted[EvictCapacity] != 2 {
		t.Fatalf("len=%d capacity evictions=%d", a.Table.Len(), a.Table.Evictions[EvictCapacity])
	}
	// the least recently seen go first: 1000 and 1001
	pkt(6*time.Millisecond, 1002) // refresh 1002
	pkt(7*time.Millisecond, 1005) // evicts 1003
	seen := map[uint16]bool{}
	a.Table.Each(func(f *Flow) { seen[f.Key.PortA] = true })
	if !seen[1002] || !seen[1004] || !seen[1005] {
		t.Fatalf("flows left = %v, want 1002 1004 1005", seen)
	}
	pkt(20*time.Second, 2000)
	if a.Table.Len() != 1 || a.Table.Evictions[EvictIdle] != 3 {
		t.Fatalf("after idle: len=%d idle evictions=%d", a.Table.Len(), a.Table.Evictions[EvictIdle])
	}
	a.Table.Flush()
	if a.Table.Len() != 0 || evicted[EvictFlush] != 1 {
		t.Fatalf("flush: len=%d", a.Table.Len())
	}
	if a.Totals.Flows != 7 {
		t.Fatalf("flows created = %d, want 7", a.Totals.Flows)
	}
}

func TestSeqCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b uint32
		lt   bool
	}{
		{1, 2, true}, {2, 1, false}, {0xffffffff, 0, true}, {0, 0xffffffff, false},
		{0xfffffff0, 0x10, true}, {0x7fffffff, 0x80000000, true}, {5, 5, false},
	} {
		if got := seqLT(tc.a, tc.b); got != tc.lt {
			t.Errorf("seqLT(%#x, %#x) = %v", tc.a, tc.b, got)
		}
		if got := seqGT(tc.b, tc.a); got != tc.lt {
			t.Errorf("seqGT(%#x, %#x) = %v", tc.b, tc.a, got)
		}
	}
}

func TestWorstKeepsTopN(t *testing.T) {
	w := NewWorst(2)
	for i, r := range []uint64{5, 1, 9, 3} {
		f := &Flow{Key: Key{Version: 4, PortA: uint16(i), PortB: 80}}
		f.Dir[0].Stats.Retransmissions = r
		f.Dir[0].Stats.Packets = 10
		w.Offer(f)
	}
	got := w.Flows()
	if len(got) != 2 || got[0].Retransmissions != 9 || got[1].Retransmissions != 5 {
		t.Fatalf("worst = %+v", got)
	}
}
