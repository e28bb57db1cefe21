package top

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/netsight/netsight/flow"
)

// benchSnapshots are two snapshots of n connections one second apart.
func benchSnapshots(n int) (*Snapshot, *Snapshot) {
	recs := make([]flow.Record, n)
	for i := range recs {
		recs[i] = flow.Record{ID: uint64(i + 1), Comm: fmt.Sprintf("proc%d", i%50), NetNS: uint32(i % 7),
			Local:  netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), uint16(30000+i%30000)),
			Remote: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i % 200), 1}), 443),
			State:  "established", Start: t0.Add(-time.Minute), BytesSent: uint64(i) * 1000, Retransmits: uint64(i % 13),
			SRTT: time.Duration(i%1000) * time.Microsecond, Direction: flow.DirClient}
	}
	prev := &Snapshot{Time: t0, Flows: recs}
	next := make([]flow.Record, n)
	copy(next, recs)
	for i := range next {
		next[i].BytesSent += uint64(i%100) * 1500
		next[i].Retransmits += uint64(i % 3)
	}
	return prev, &Snapshot{Time: t0.Add(time.Second), Flows: next}
}

// BenchmarkRefresh is one refresh of 10000 connections: rates, filter,
// sort and the 160x48 view.
func BenchmarkRefresh(b *testing.B) {
	prev, cur := benchSnapshots(10000)
	m := New(Options{Source: &fakeSource{snaps: []*Snapshot{prev}}, Styles: testStyles(true)})
	nm, _ := m.Update(snapshotMsg{snap: prev})
	m = nm.(Model)
	nm, _ = m.Update(tea160x48)
	m = nm.(Model)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		mm := m
		mm.apply(cur)
		_ = mm.View()
	}
}

// BenchmarkAggregate is the per-remote view of 10000 connections.
func BenchmarkAggregate(b *testing.B) {
	prev, cur := benchSnapshots(10000)
	rows := rates(cur, countersOf(prev), prev.Time, nil)
	b.ReportAllocs()
	for b.Loop() {
		_ = Aggregate(rows, SortRetrans)
	}
}
