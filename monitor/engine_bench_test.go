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

// BenchmarkConnectionChurn models one short-lived connection per iteration
// at 10,000 connections/s (the table is full: each new connection evicts
// the oldest closed one) or at 1,000/s ("expiry": closed connections leave
// after Retention, the table never fills): its first report (established, handshake
// latency), its close (bytes, RTT), and, through a Roll every simulated
// second, its expiry after the table's Retention. Clients on one host
// connect to 64 servers (ephemeral ports vary), through the table alone and
// with the engine and 1 or 3 monitors. ns/op is the cost per connection.
func BenchmarkConnectionChurn(b *testing.B) {
	for _, tc := range []struct {
		name     string
		monitors int // -1: no observer
		gap      time.Duration
	}{
		{"table-only", -1, 100 * time.Microsecond}, {"engine-1mon", 1, 100 * time.Microsecond},
		{"engine-3mon", 3, 100 * time.Microsecond},
		{"expiry/table-only", -1, time.Millisecond}, {"expiry/engine-3mon", 3, time.Millisecond},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tab := flow.NewTable(flow.Config{})
			if tc.monitors >= 0 {
				specs := []Spec{
					{Name: "https", RemotePorts: []uint16{443}},
					{Name: "to-a", LocalNets: []string{"client"}, RemoteNets: []string{"srv-a"}},
					{Name: "to-b", LocalNets: []string{"client"}, RemoteNets: []string{"srv-b"}},
				}
				e := NewEngine(Config{Window: time.Minute, Monitors: specs[:tc.monitors]}, testResolver())
				tab.SetObserver(e.Observe)
			}
			local := netip.MustParseAddr("10.1.0.2")
			now := t0
			b.ReportAllocs()
			i := uint64(0)
			for b.Loop() {
				i++
				remote := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(2 + i%2), 0, byte(i % 32)}), 443)
				r := flow.Record{ID: i, Local: netip.AddrPortFrom(local, uint16(i)), Remote: remote, Direction: flow.DirClient,
					PID: 42, Comm: "curl", State: "established", Start: now, ConnectLatency: time.Millisecond,
					SRTT: time.Millisecond, SegsOut: 1, SegsIn: 1}
				tab.Upsert(r, now)
				r.State, r.Closed, r.End = "close", true, now
				r.BytesSent, r.BytesReceived, r.SegsOut, r.SegsIn = 100, 1000, 3, 3
				tab.Upsert(r, now)
				now = now.Add(tc.gap)
				if i%uint64(time.Second/tc.gap) == 0 {
					tab.Roll(now)
				}
			}
		})
	}
}
