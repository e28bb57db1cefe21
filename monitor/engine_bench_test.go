package monitor

import (
	"net/netip"
	"testing"
	"time"

	"github.com/netsight/netsight/flow"
)

// benchRecords are n open client connections to n/4 remotes in the test
// topology.
func benchRecords(n int) []flow.Record {
	recs := make([]flow.Record, n)
	for i := range recs {
		remote := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(2 + i%2), byte(i / 4 >> 8), byte(i / 4)}), 443)
		recs[i] = flow.Record{ID: uint64(i + 1), Local: netip.AddrPortFrom(netip.MustParseAddr("10.1.0.2"), uint16(20000+i)),
			Remote: remote, Direction: flow.DirClient, State: "established", SRTT: time.Millisecond}
	}
	return recs
}

// BenchmarkUpsertObserved is the table's Upsert of an open connection
// whose counters moved, with the engine as observer (4 monitors) — the
// per-record cost of the delta hook plus the engine — next to the same
// without an observer.
func BenchmarkUpsertObserved(b *testing.B) {
	for _, observed := range []bool{false, true} {
		name := "table-only"
		if observed {
			name = "table+engine"
		}
		b.Run(name, func(b *testing.B) {
			e, tab := newTestEngine(b)
			if !observed {
				tab.SetObserver(nil)
			}
			recs := benchRecords(1024)
			now := t0
			tab.UpsertBatch(recs, now)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				r := &recs[i&1023]
				r.BytesSent += 1000
				r.Retransmits += uint64(i & 1)
				if i&1023 == 0 {
					now = now.Add(100 * time.Millisecond)
				}
				tab.Upsert(*r, now)
			}
			b.StopTimer()
			_ = e
		})
	}
}

// BenchmarkObserveChurn: every record is a new short connection to a new
// remote, so the engine evicts a group for each (the churn worst case).
func BenchmarkObserveChurn(b *testing.B) {
	e, tab := newTestEngine(b)
	now := t0
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r := flow.Record{ID: uint64(i + 1), Local: netip.MustParseAddrPort("10.1.0.2:40000"),
			Remote:    netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), 80),
			Direction: flow.DirClient, State: "close", Closed: true, BytesSent: 100, SRTT: time.Millisecond}
		if i&255 == 0 {
			now = now.Add(time.Second)
		}
		tab.Upsert(r, now)
	}
	b.StopTimer()
	if b.N > 4096 && e.Evicted() == 0 {
		b.Fatal("no eviction")
	}
}
