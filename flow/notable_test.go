package flow

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestNotableClosedOutlivesRetention: a closed connection with
// retransmissions leaves the table after Retention but stays in
// NotableClosed with its reason; a clean one is not kept; the keeper is
// bounded per reason and keeps the worst.
func TestNotableClosedOutlivesRetention(t *testing.T) {
	tab := NewTable(Config{Retention: 5 * time.Second, NotablePerReason: 3})
	bad := rec(1, "10.0.0.1:40000", "10.0.0.2:443", DirClient)
	bad.Retransmits, bad.RTOs, bad.Closed, bad.End = 7, 1, true, t0.Add(time.Second)
	clean := rec(2, "10.0.0.1:40001", "10.0.0.2:443", DirClient)
	clean.Closed, clean.End = true, t0.Add(time.Second)
	failed := rec(3, "10.0.0.1:40002", "10.0.0.3:80", DirClient)
	failed.ConnectFailed, failed.Closed, failed.End = true, true, t0.Add(2*time.Second)
	for _, r := range []Record{bad, clean, failed} {
		tab.Upsert(r, r.End)
	}
	tab.Expire(t0.Add(time.Minute))
	if n := len(tab.Flows(Filter{})); n != 0 {
		t.Fatalf("table still holds %d flows after Retention", n)
	}
	got := tab.notable.Since(t0, t0.Add(time.Minute))
	if len(got) != 2 || got[0].ID != 3 || got[1].ID != 1 {
		t.Fatalf("notable = %+v, want the failed then the retransmitting flow", got)
	}
	if !slices.Equal(got[1].Reasons, []string{NotableRetransmits, NotableRTOs}) || !slices.Equal(got[0].Reasons, []string{NotableFailed}) {
		t.Errorf("reasons %v, %v", got[1].Reasons, got[0].Reasons)
	}
	// The time range: closed before since is left out.
	if got := tab.notable.Since(t0.Add(1500*time.Millisecond), t0.Add(time.Minute)); len(got) != 1 || got[0].ID != 3 {
		t.Errorf("since 1.5s: %+v", got)
	}
	// Bounded: 10 more retransmitting flows, only the 3 worst stay.
	for i := range 10 {
		r := rec(uint64(10+i), fmt.Sprintf("10.0.0.1:%d", 41000+i), "10.0.0.2:443", DirClient)
		r.Retransmits, r.Closed, r.End = uint64(i+1), true, t0.Add(3*time.Second)
		tab.notable.Offer(&r)
	}
	var kept []uint64
	for _, r := range tab.notable.Since(t0, t0.Add(time.Minute)) {
		if slices.Contains(r.Reasons, NotableRetransmits) {
			kept = append(kept, r.Retransmits)
		}
	}
	slices.Sort(kept)
	if !slices.Equal(kept, []uint64{8, 9, 10}) {
		t.Errorf("kept retransmissions %v, want the 3 worst", kept)
	}
	if n := tab.notable.Len(); n > 4*3 {
		t.Errorf("holds %d records, bound 12", n)
	}
	// Aged out after NotableMaxAge.
	if got := tab.notable.Since(time.Time{}, t0.Add(NotableMaxAge+time.Hour)); len(got) != 0 {
		t.Errorf("after max age: %d records", len(got))
	}
}

func BenchmarkNotableOffer(b *testing.B) {
	n := NewNotable(DefaultNotablePerReason)
	r := rec(1, "10.0.0.1:40000", "10.0.0.2:443", DirClient)
	r.Closed, r.End = true, t0
	b.ReportAllocs()
	for i := range b.N {
		r.ID, r.Retransmits, r.BytesSent = uint64(i), uint64(i%97), uint64(i%1000)
		n.Offer(&r)
	}
}
