package flow

import (
	"testing"
	"time"
)

func TestObserverDeltas(t *testing.T) {
	tab := NewTable(Config{MaxEntries: 2, IdleTimeout: time.Minute})
	var got []Delta
	tab.SetObserver(func(d *Delta) {
		c := *d
		c.Rec = nil
		*d.Mark++ // the observer's word persists per connection
		if d.Closed && *d.Mark != 4 {
			t.Errorf("mark of connection 1 at its 4th delta = %d", *d.Mark)
		}
		got = append(got, c)
	})
	r := rec(1, "10.0.0.1:40000", "10.0.0.2:443", DirClient)
	r.State = "syn_sent"
	tab.Upsert(r, t0)
	r.State, r.BytesSent, r.Retransmits, r.DSACKDups, r.BusyTime = "established", 100, 2, 1, time.Second
	tab.Upsert(r, t0.Add(time.Second))
	r.BytesSent, r.Retransmits, r.BusyTime = 50, 3, 500*time.Millisecond // reused ID: restart
	tab.Upsert(r, t0.Add(2*time.Second))
	r.Closed, r.State, r.BytesSent = true, "close", 80
	tab.Upsert(r, t0.Add(3*time.Second))
	// A second and third connection: the third evicts the closed first
	// (no Gone: it was closed), then idle expiry drops the open ones.
	tab.Upsert(rec(2, "10.0.0.1:40001", "10.0.0.2:443", DirClient), t0.Add(4*time.Second))
	tab.Upsert(rec(3, "10.0.0.1:40002", "10.0.0.2:443", DirClient), t0.Add(5*time.Second))
	tab.Expire(t0.Add(2 * time.Minute))

	want := []Delta{
		{New: true},
		{Established: true, BytesSent: 100, Retransmits: 2, DSACKDups: 1, BusyTime: time.Second},
		{BytesSent: 50, Retransmits: 1, BusyTime: 500 * time.Millisecond},
		{Closed: true, BytesSent: 30},
		{New: true, Established: true},
		{New: true, Established: true},
		{Gone: true},
		{Gone: true},
	}
	if len(got) != len(want) {
		t.Fatalf("%d deltas, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g := got[i]
		if g.Mark == nil {
			t.Fatalf("delta %d: no mark", i)
		}
		g.Mark, g.Now = nil, time.Time{}
		if g != want[i] {
			t.Errorf("delta %d = %+v, want %+v", i, g, want[i])
		}
	}
}

func TestObserverNoAlloc(t *testing.T) {
	tab := NewTable(Config{})
	var n uint64
	tab.SetObserver(func(d *Delta) { n += d.BytesSent })
	r := rec(1, "10.0.0.1:40000", "10.0.0.2:443", DirClient)
	now := t0
	allocs := testing.AllocsPerRun(1000, func() {
		r.BytesSent += 10
		now = now.Add(time.Millisecond)
		tab.Upsert(r, now)
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per update with an observer", allocs)
	}
	if n == 0 {
		t.Error("observer not called")
	}
}
