package ebpf

import (
	"testing"
	"time"

	"github.com/netsight/netsight/flow"
)

func testConn(i uint64) flowConn {
	c := flowConn{Cookie: i + 1, StartNs: 1e9, ConnectNs: 1e9, EndNs: 2e9, BytesAcked: 101, BytesReceived: 1,
		DataSegsOut: 1, SrttUs: 40, MinRttUs: 30, MaxRttUs: 50, Lport: uint16(10000 + i%50000), Rport: 7000,
		Family: 2, Direction: dirClient, State: 7, Netns: 4026532001}
	c.Laddr[0], c.Raddr[0] = 0x0100fb0a, 0x0200fb0a // 10.251.0.1, 10.251.0.2
	for j, b := range "flowbench" {
		c.Comm[j] = int8(b)
	}
	return c
}

func TestToRecordInto(t *testing.T) {
	c := testConn(41)
	clk := clock{wall: time.Unix(100, 0), mono: 0}
	var r flow.Record
	in := newInterner()
	toRecordInto(&r, &c, clk, in)
	if r.ID != 42 || r.Local.String() != "10.251.0.1:10041" || r.Remote.String() != "10.251.0.2:7000" ||
		r.Comm != "flowbench" || r.NetNS != 4026532001 || r.State != "close" || !r.Closed || r.Direction != flow.DirClient ||
		r.BytesSent != 101 || r.SRTT != 40*time.Microsecond || r.MaxRTT != 50*time.Microsecond ||
		!r.Start.Equal(time.Unix(101, 0)) || !r.End.Equal(time.Unix(102, 0)) {
		t.Errorf("record %+v", r)
	}
	var r2 flow.Record
	toRecordInto(&r2, &c, clk, in)
	if r2.Comm != r.Comm || r2 != r || len(in.m) != 1 {
		t.Errorf("interned record differs or interner holds %d names", len(in.m))
	}
}

// BenchmarkDecodeUpsert is the user-space cost per closed connection of the
// eBPF back end: decode a ring-buffer record (as RunBatch does) and insert
// it into a full flow table in batches (as the collector does).
func BenchmarkDecodeUpsert(b *testing.B) {
	tab := flow.NewTable(flow.Config{MaxEntries: 65536})
	clk := newClock()
	in := newInterner()
	const n = 4096
	conns := make([]flowConn, n)
	for i := range conns {
		conns[i] = testConn(uint64(i))
	}
	batch := make([]flow.Record, 0, maxBatch)
	now := time.Now()
	var id uint64
	for b.Loop() {
		c := &conns[id%n]
		id++
		c.Cookie = id
		batch = append(batch, flow.Record{})
		toRecordInto(&batch[len(batch)-1], c, clk, in)
		if len(batch) == maxBatch {
			tab.UpsertBatch(batch, now)
			clear(batch)
			batch = batch[:0]
		}
	}
}

// BenchmarkRefreshUpsert is the user-space cost per open connection of one
// refresh (ActiveBatch): decode a map entry read by BPF_MAP_LOOKUP_BATCH
// and update its table entry, in batches of activeChunk, with 10,000 open
// connections.
func BenchmarkRefreshUpsert(b *testing.B) {
	tab := flow.NewTable(flow.Config{MaxEntries: 65536})
	clk := newClock()
	in := newInterner()
	const n = 10000
	conns := make([]flowConn, n)
	for i := range conns {
		conns[i] = testConn(uint64(i))
		conns[i].EndNs = 0
		conns[i].State = 1
	}
	batch := make([]flow.Record, 0, activeChunk)
	now := time.Now()
	i := 0
	for b.Loop() {
		c := &conns[i%n]
		i++
		c.BytesAcked += 1000
		batch = append(batch, flow.Record{})
		toRecordInto(&batch[len(batch)-1], c, clk, in)
		if len(batch) == cap(batch) {
			tab.UpsertBatch(batch, now)
			clear(batch)
			batch = batch[:0]
		}
	}
}
