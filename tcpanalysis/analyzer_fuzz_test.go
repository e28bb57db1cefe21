package tcpanalysis

import (
	"encoding/binary"
	"testing"
)

// FuzzAnalyzerSequence drives the analyzer's TCP state machine with
// arbitrary sequences of segments between two hosts and up to four port
// pairs: every 12 input bytes are one segment (direction and flow, flags,
// sequence and ack deltas, payload length, window, time step). Whatever
// the order, the analyzer must not panic, its table must stay within
// MaxFlows, and its counters must stay consistent.
func FuzzAnalyzerSequence(f *testing.F) {
	seg := func(dir, flags byte, seqD, ackD uint16, payload uint16, win uint16, dt byte) []byte {
		b := make([]byte, 12)
		b[0], b[1] = dir, flags
		binary.BigEndian.PutUint16(b[2:], seqD)
		binary.BigEndian.PutUint16(b[4:], ackD)
		binary.BigEndian.PutUint16(b[6:], payload)
		binary.BigEndian.PutUint16(b[8:], win)
		b[10], b[11] = dt, 0
		return b
	}
	cat := func(s ...[]byte) []byte {
		var out []byte
		for _, b := range s {
			out = append(out, b...)
		}
		return out
	}
	const syn, ack, psh, fin, rst = 0x02, 0x10, 0x08, 0x01, 0x04
	handshake := cat(seg(0, syn, 0, 0, 0, 64240, 1), seg(1, syn|ack, 0, 1, 0, 65160, 1), seg(0, ack, 1, 1, 0, 502, 1))
	f.Add(handshake)
	f.Add(cat(handshake, seg(0, ack|psh, 0, 0, 1448, 502, 1), seg(0, ack|psh, 0, 0, 1448, 502, 1), seg(1, ack, 0, 2896, 0, 500, 2),
		seg(0, ack|fin, 0, 0, 0, 502, 1), seg(1, ack|fin, 0, 1, 0, 500, 1)))
	// Retransmission, out of order, duplicate ACKs, zero window, reset.
	f.Add(cat(handshake, seg(0, ack, 0, 0, 1000, 502, 1), seg(0, ack, 2000, 0, 1000, 502, 1), seg(0, ack, 0xf830, 0, 1000, 502, 1),
		seg(1, ack, 0, 1000, 0, 0, 1), seg(1, ack, 0, 0, 0, 0, 1), seg(1, ack, 0, 0, 0, 0, 1), seg(1, rst, 0, 0, 0, 0, 1)))
	f.Add(cat(seg(0x13, ack, 0xffff, 0xffff, 0xffff, 0, 0xff), seg(0x22, syn, 0, 0, 0, 0, 0)))
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxFlows = 3
		a := NewAnalyzer(Config{MaxFlows: maxFlows})
		var seq, ack [4][2]uint32
		now := int64(1_700_000_000_000_000_000)
		n := 0
		for ; len(data) >= 12 && n < 4096; data = data[12:] {
			d, fl := int(data[0]&1), int(data[0]>>1&3)
			seq[fl][d] += uint32(binary.BigEndian.Uint16(data[2:]))
			ack[fl][d] += uint32(binary.BigEndian.Uint16(data[4:]))
			payload := int(binary.BigEndian.Uint16(data[6:]) % 9000)
			now += int64(data[10]) * 1e5
			p := Packet{TimestampNanos: now, IPVersion: 4, IPProto: 6, TCPValid: true, Flags: data[1],
				Seq: seq[fl][d], Ack: ack[fl][d], Window: binary.BigEndian.Uint16(data[8:]), WScale: -1,
				PayloadLen: payload, IPLen: 40 + payload, WireLen: 54 + payload}
			p.Src[15], p.Dst[15] = 1, 2
			p.SrcPort, p.DstPort = 40000+uint16(fl), 443
			if data[11]&1 == 1 {
				p.WScale = int8(data[11] >> 4)
			}
			if data[11]&2 == 2 {
				p.SACKBlocks = data[11] >> 4 & 3
			}
			if d == 1 {
				p.Src, p.Dst = p.Dst, p.Src
				p.SrcPort, p.DstPort = p.DstPort, p.SrcPort
			}
			a.Process(&p)
			n++
			if a.Table.Len() > maxFlows {
				t.Fatalf("table holds %d flows, capacity %d", a.Table.Len(), maxFlows)
			}
		}
		if a.Totals.Packets != uint64(n) {
			t.Fatalf("totals count %d packets, processed %d", a.Totals.Packets, n)
		}
		a.Table.Each(func(fl *Flow) {
			for d := range 2 {
				if s := fl.Stats(d); s.PayloadBytes > s.Bytes {
					t.Fatalf("flow %v dir %d: payload bytes %d > bytes %d", fl.Key, d, s.PayloadBytes, s.Bytes)
				}
			}
		})
		a.Table.Flush()
		if a.Table.Len() != 0 {
			t.Fatalf("%d flows after Flush", a.Table.Len())
		}
	})
}
