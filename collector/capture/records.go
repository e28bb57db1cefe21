package capture

import (
	"encoding/binary"
	"hash/fnv"
	"time"

	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/tcpanalysis"
)

// SourceName is how the flow API names capture as the table's source.
const SourceName = "capture"

// captureIDBit marks the IDs of capture records, keeping them apart from
// kernel socket cookies.
const captureIDBit = 1 << 63

// feedFlows emits one flow.Record per TCP flow of every ring into the
// agent's table, unless a kernel source (the flows collector) already feeds
// it: one authority per connection, so no connection is counted twice.
func (c *Collector) feedFlows(rings []*ring, now time.Time) {
	t := c.flows
	if t == nil {
		return
	}
	switch t.Source() {
	case "":
		t.SetSource(SourceName)
	case SourceName:
	default:
		return
	}
	var recs []flow.Record
	for _, r := range rings {
		recs = r.records(recs)
	}
	t.UpsertBatch(recs, now)
	t.Expire(now)
}

// records appends a record for every flow of the ring's analyzer. The
// connection's client (the SYN sender) is the local side. Bytes are the
// TCP payload seen on the wire, retransmitted segments included (the kernel
// sources report bytes acknowledged).
func (r *ring) records(out []flow.Record) []flow.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.an.Table.Each(func(f *tcpanalysis.Flow) {
		out = append(out, flowRecord(r.link.index, f))
	})
	return out
}

func flowRecord(ifindex int, f *tcpanalysis.Flow) flow.Record {
	cl, sv := f.Client, 1-f.Client
	c, s := f.Stats(cl), f.Stats(sv)
	rec := flow.Record{
		ID:            flowID(ifindex, &f.Key),
		Local:         f.Key.Endpoint(cl),
		Remote:        f.Key.Endpoint(sv),
		Direction:     flow.DirClient,
		State:         "established",
		Start:         time.Unix(0, f.FirstSeen),
		BytesSent:     c.PayloadBytes,
		BytesReceived: s.PayloadBytes,
		SegsOut:       c.Packets,
		SegsIn:        s.Packets,
		Retransmits:   c.Retransmissions,
		RSTSent:       c.Resets,
		RSTReceived:   s.Resets,
	}
	if f.SYNTime == 0 {
		rec.Direction = flow.DirUnknown // joined mid-connection: roles guessed
	}
	if c.Fins > 0 || s.Fins > 0 || c.Resets > 0 || s.Resets > 0 {
		rec.State = "closing"
	}
	if rtt := c.RTT; rtt.Count > 0 {
		rec.SRTT = rtt.Sum / time.Duration(rtt.Count)
		rec.MinRTT, rec.MaxRTT = rtt.Min, rtt.Max
	}
	if a, b := f.HandshakeRTT(); a > 0 && b > 0 {
		rec.ConnectLatency = a + b
	}
	return rec
}

// flowID hashes the interface and the flow key.
func flowID(ifindex int, k *tcpanalysis.Key) uint64 {
	h := fnv.New64a()
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(ifindex))
	h.Write(b[:])
	h.Write(k.AddrA[:])
	h.Write(k.AddrB[:])
	binary.LittleEndian.PutUint16(b[:2], k.PortA)
	binary.LittleEndian.PutUint16(b[2:], k.PortB)
	h.Write(b[:])
	return h.Sum64() | captureIDBit
}
