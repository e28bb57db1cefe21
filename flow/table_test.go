package flow

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func rec(id uint64, local, remote string, dir Direction) Record {
	return Record{ID: id, Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort(remote),
		Direction: dir, State: "established", Start: t0}
}

func TestUpsertDeltas(t *testing.T) {
	tab := NewTable(Config{})
	r := rec(1, "10.0.0.1:40000", "10.0.0.2:443", DirClient)
	r.BytesSent, r.Retransmits = 100, 2
	tab.Upsert(r, t0)
	r.BytesSent, r.Retransmits = 300, 5
	tab.Upsert(r, t0.Add(time.Second))
	// A reused ID whose counters went down restarts from the new values.
	r.BytesSent, r.Retransmits = 50, 1
	tab.Upsert(r, t0.Add(2*time.Second))
	r.Closed, r.State, r.BytesSent = true, "close", 60
	tab.Upsert(r, t0.Add(3*time.Second))
	// A late poll result after the close is ignored.
	r.Closed, r.BytesSent = false, 1000
	tab.Upsert(r, t0.Add(4*time.Second))

	tt := tab.Totals()
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"bytes sent", tt.BytesSent[DirClient], 300 + 60},
		{"retransmits", tt.Retransmits[DirClient], 5 + 1},
		{"opened", tt.Opened[DirClient], 1},
		{"closed", tt.Closed[DirClient], 1},
		{"stale", tt.StaleIgnored, 1},
		{"server opened", tt.Opened[DirServer], 0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

func TestConnectFailure(t *testing.T) {
	tab := NewTable(Config{})
	r := rec(7, "10.0.0.1:40000", "10.0.0.2:9", DirClient)
	r.State = "syn_sent"
	tab.Upsert(r, t0)
	r.State, r.Closed, r.ConnectFailed, r.RSTReceived = "close", true, true, 1
	tab.Upsert(r, t0)
	tt := tab.Totals()
	if tt.ConnectFailures[DirClient] != 1 || tt.Opened[DirClient] != 0 || tt.Closed[DirClient] != 0 || tt.RSTReceived[DirClient] != 1 {
		t.Errorf("totals: failures %v opened %v closed %v rst %v", tt.ConnectFailures, tt.Opened, tt.Closed, tt.RSTReceived)
	}
}

func TestBoundsAndExpiry(t *testing.T) {
	tab := NewTable(Config{MaxEntries: 3, IdleTimeout: 10 * time.Second, Retention: 5 * time.Second})
	for i := range uint64(4) {
		tab.Upsert(rec(i, fmt.Sprintf("10.0.0.1:%d", 40000+i), "10.0.0.2:80", DirClient), t0.Add(time.Duration(i)*time.Second))
	}
	if tab.Len() != 3 || tab.Totals().Evicted != 1 {
		t.Fatalf("len %d evicted %d, want 3 and 1", tab.Len(), tab.Totals().Evicted)
	}
	if got := tab.Flows(Filter{Port: 40000}); len(got) != 0 {
		t.Errorf("the least recently updated entry should be gone: %+v", got)
	}
	// Close id 3; ids 1, 2 stay open but go idle.
	c := rec(3, "10.0.0.1:40003", "10.0.0.2:80", DirClient)
	c.Closed = true
	tab.Upsert(c, t0.Add(4*time.Second))
	tab.Roll(t0.Add(8 * time.Second)) // closed 4s ago: kept
	if tab.Len() != 3 {
		t.Fatalf("len %d after first roll, want 3", tab.Len())
	}
	tab.Roll(t0.Add(12 * time.Second)) // closed 8s ago: gone; id 1 idle 11s: gone; id 2 idle 10s: gone
	if tab.Len() != 0 {
		t.Fatalf("len %d after second roll, want 0: %+v", tab.Len(), tab.Flows(Filter{}))
	}
	if got := tab.Totals().IdleExpired; got != 2 {
		t.Errorf("idle expired %d, want 2", got)
	}
}

func TestRollTopK(t *testing.T) {
	tab := NewTable(Config{TopK: 2})
	add := func(id uint64, local, remote string, dir Direction, retr uint64, srtt time.Duration, bytes uint64) {
		r := rec(id, local, remote, dir)
		r.Retransmits, r.SRTT, r.BytesSent = retr, srtt, bytes
		tab.Upsert(r, t0)
	}
	// Two client connections to 10.0.0.9:443 from different ephemeral
	// ports fold into one group.
	add(1, "10.0.0.1:40001", "10.0.0.9:443", DirClient, 3, time.Millisecond, 10)
	add(2, "10.0.0.1:40002", "10.0.0.9:443", DirClient, 4, 2*time.Millisecond, 10)
	// A server connection: its server port is the local one.
	add(3, "10.0.0.1:8080", "10.0.0.5:51000", DirServer, 0, 50*time.Millisecond, 5)
	add(4, "10.0.0.1:40003", "10.0.0.7:22", DirClient, 0, time.Millisecond, 1000)
	add(5, "10.0.0.1:40004", "10.0.0.8:22", DirClient, 1, time.Millisecond, 1)
	iv := tab.Roll(t0.Add(time.Second))
	if len(iv.Top) != 2 {
		t.Fatalf("top: %d groups", len(iv.Top))
	}
	want0 := GroupKey{Local: netip.MustParseAddr("10.0.0.1"), Remote: netip.MustParseAddr("10.0.0.9"), ServerPort: 443, Direction: DirClient}
	if iv.Top[0].Key != want0 || iv.Top[0].Retransmits != 7 || iv.Top[0].Connections != 2 || iv.Top[0].MaxSRTT != 2*time.Millisecond {
		t.Errorf("top[0] = %+v", iv.Top[0])
	}
	if iv.Top[1].Key.Remote != netip.MustParseAddr("10.0.0.8") {
		t.Errorf("top[1] = %+v (want the one with a retransmit)", iv.Top[1])
	}
	// Other: the server group (by srtt third) and 10.0.0.7.
	if !iv.Other.Other || iv.Other.Connections != 2 || iv.Other.BytesSent != 1005 || iv.Other.MaxSRTT != 50*time.Millisecond {
		t.Errorf("other = %+v", iv.Other)
	}
	// Next interval: nothing changed, no groups.
	iv = tab.Roll(t0.Add(2 * time.Second))
	if len(iv.Top) != 0 || iv.Other.Connections != 0 {
		t.Errorf("idle interval: %+v", iv)
	}
	// The RTT histogram got one observation per active connection.
	if got := tab.Totals().RTT[DirClient].Count; got != 4 {
		t.Errorf("client rtt observations %d, want 4", got)
	}
}

func TestFlowsFilter(t *testing.T) {
	tab := NewTable(Config{})
	a := rec(1, "10.0.0.1:40001", "10.0.0.9:443", DirClient)
	a.Retransmits = 5
	b := rec(2, "10.0.0.1:8080", "192.168.1.5:51000", DirServer)
	c := rec(3, "[2001:db8::1]:40002", "[2001:db8::9]:443", DirClient)
	c.Retransmits = 1
	a.NetNS, b.NetNS, c.NetNS = 4026531840, 4026532999, 4026531840
	for _, r := range []Record{a, b, c} {
		tab.Upsert(r, t0)
	}
	for _, tc := range []struct {
		name string
		f    Filter
		want []uint64
	}{
		{"all, most retransmissions first", Filter{}, []uint64{1, 3, 2}},
		{"remote prefix", Filter{Remote: netip.MustParsePrefix("192.168.0.0/16")}, []uint64{2}},
		{"remote v6", Filter{Remote: netip.MustParsePrefix("2001:db8::9/128")}, []uint64{3}},
		{"port local or remote", Filter{Port: 443}, []uint64{1, 3}},
		{"min retransmissions", Filter{MinRetransmits: 2}, []uint64{1}},
		{"direction", Filter{Direction: DirServer}, []uint64{2}},
		{"netns", Filter{NetNS: 4026532999}, []uint64{2}},
		{"netns host", Filter{NetNS: 4026531840}, []uint64{1, 3}},
		{"limit", Filter{Limit: 1}, []uint64{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tab.Flows(tc.f)
			var ids []uint64
			for _, r := range got {
				ids = append(ids, r.ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
				t.Errorf("ids %v, want %v", ids, tc.want)
			}
		})
	}
}

func TestRecordJSONGolden(t *testing.T) {
	r := Record{ID: 42, Local: netip.MustParseAddrPort("[::ffff:10.0.0.1]:40000"), Remote: netip.MustParseAddrPort("10.0.0.2:5201"),
		Direction: DirClient, PID: 1234, Comm: "iperf3", CgroupID: 1, State: "close", Closed: true,
		Start: t0, End: t0.Add(5 * time.Second), BytesSent: 1 << 30, BytesReceived: 37, SegsOut: 800000, SegsIn: 10,
		SRTT: 1500 * time.Microsecond, MinRTT: time.Millisecond, MaxRTT: 3 * time.Millisecond,
		Retransmits: 2199, SynRetransmits: 1, RTOs: 3, RSTSent: 0, RSTReceived: 1, ConnectLatency: 2 * time.Millisecond,
		NetNS: 4026531840}
	setHostNetNS(t, 4026531840)
	lab := r
	lab.ID, lab.NetNS = 43, 4026532999 // same addresses, another namespace
	unknown := r
	unknown.ID, unknown.NetNS = 44, 0
	got, err := json.MarshalIndent(map[string]any{"flows": []Record{r, lab, unknown}}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "flows.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(got) != string(want) {
		t.Errorf("JSON differs from %s:\n%s", path, got)
	}
}

func TestHistogram(t *testing.T) {
	h := NewHistogram([]float64{1, 2, 5})
	for _, v := range []float64{0.5, 1, 1.5, 7} {
		h.Observe(v)
	}
	c := h.Cumulative()
	if c[1] != 2 || c[2] != 3 || c[5] != 3 || h.Count != 4 || h.Sum != 10 {
		t.Errorf("cumulative %v count %d sum %v", c, h.Count, h.Sum)
	}
}

func BenchmarkUpsert(b *testing.B) {
	tab := NewTable(Config{MaxEntries: 65536})
	recs := make([]Record, 10000)
	for i := range recs {
		recs[i] = rec(uint64(i), fmt.Sprintf("10.0.%d.%d:%d", i/250, i%250, 30000+i%30000), "10.1.0.1:443", DirClient)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r := recs[i%len(recs)]
		r.BytesSent = uint64(i)
		tab.Upsert(r, t0)
	}
}

func BenchmarkRoll10k(b *testing.B) {
	tab := NewTable(Config{MaxEntries: 65536})
	for i := range 10000 {
		r := rec(uint64(i), fmt.Sprintf("10.0.%d.%d:%d", i/250, i%250, 30000+i), fmt.Sprintf("10.1.%d.1:443", i%200), DirClient)
		tab.Upsert(r, t0)
	}
	for b.Loop() {
		tab.Roll(t0)
	}
}

// BenchmarkUpsertChurn: every record is a new closed connection into a full
// table (the short-connection case: insert, evict the oldest).
func BenchmarkUpsertChurn(b *testing.B) {
	tab := NewTable(Config{MaxEntries: 65536})
	r := rec(0, "10.0.0.1:40000", "10.1.0.1:443", DirClient)
	r.Closed, r.BytesSent, r.BytesReceived, r.SRTT, r.Comm = true, 100, 100, time.Millisecond, "curl"
	i := uint64(0)
	for b.Loop() {
		i++
		r.ID = i
		r.Local = netip.AddrPortFrom(r.Local.Addr(), uint16(i))
		tab.Upsert(r, t0)
		if i%100000 == 0 {
			tab.Roll(t0)
		}
	}
}

// setHostNetNS makes ino the host namespace's inode for the test.
func setHostNetNS(t *testing.T, ino uint32) {
	old := hostNetNS
	hostNetNS = func() uint32 { return ino }
	t.Cleanup(func() { hostNetNS = old })
}

func TestHostNetNS(t *testing.T) {
	self := NetNSInode("/proc/self/ns/net")
	if self == 0 {
		t.Skip("cannot stat /proc/self/ns/net")
	}
	if NetNSInode("/nonexistent/ns/net") != 0 {
		t.Error("missing file: want inode 0")
	}
	// PID 1 may be unreadable without privileges; when readable, a test
	// that runs in the host namespace (as CI does) sees the same inode.
	if h := HostNetNS(); h != 0 && h != self {
		t.Logf("test runs outside the host network namespace (self %d, host %d)", self, h)
	}
	r := Record{NetNS: self}
	setHostNetNS(t, self)
	if !r.IsHostNetNS() {
		t.Error("record in the host namespace not recognised")
	}
	r.NetNS = 0
	if r.IsHostNetNS() {
		t.Error("unknown namespace reported as the host's")
	}
	// The fixed inode of the initial namespace is the host's even when
	// PID 1 could not be inspected.
	setHostNetNS(t, 0)
	for _, tc := range []struct {
		ino  uint32
		host bool
	}{{InitNetNSInode, true}, {4026532999, false}, {0, false}} {
		r.NetNS = tc.ino
		if r.IsHostNetNS() != tc.host {
			t.Errorf("netns %d: host %v, want %v", tc.ino, !tc.host, tc.host)
		}
	}
}

func TestHostNetNSFallback(t *testing.T) {
	// A process in the initial namespace of a kernel >= 6.15 knows the
	// host's inode even when /proc/1/ns/net is out of reach.
	if self := NetNSInode("/proc/self/ns/net"); self == InitNetNSInode && HostNetNS() != self {
		t.Errorf("HostNetNS %d, want %d (own namespace is the initial one)", HostNetNS(), self)
	}
}

// TestFreeListBounded: the memory of a burst that left the table is kept
// for reuse only up to a bound: entries of open connections up to the
// table's size plus freeSlack, chunks of closed ones up to maxSpare.
func TestFreeListBounded(t *testing.T) {
	tab := NewTable(Config{Retention: time.Second, IdleTimeout: time.Minute})
	r := rec(0, "10.0.0.1:40000", "10.1.0.1:443", DirClient)
	for i := range uint64(3 * freeSlack) { // open, then closed
		r.ID, r.Closed, r.State = i+1, false, "established"
		tab.Upsert(r, t0)
	}
	for i := range uint64(3 * freeSlack) {
		r.ID, r.Closed, r.State = i+1, true, "close"
		tab.Upsert(r, t0)
	}
	for i := range uint64(10 * chunkSlots) { // closed at once
		r.ID = 1e6 + i
		tab.Upsert(r, t0)
	}
	if got := tab.Len(); got != 3*freeSlack+10*chunkSlots {
		t.Fatalf("%d held, want %d", got, 3*freeSlack+10*chunkSlots)
	}
	tab.Roll(t0.Add(2 * time.Second))
	chunks := 0
	for _, c := range tab.closed.chunks {
		if c != nil {
			chunks++
		}
	}
	if tab.Len() != 0 || tab.freeLen != freeSlack || chunks > 1 || len(tab.closed.spare) > maxSpare {
		t.Fatalf("after the burst left: %d held, %d free entries, %d chunks, %d spare chunks; want 0, %d, <= 1, <= %d",
			tab.Len(), tab.freeLen, chunks, len(tab.closed.spare), freeSlack, maxSpare)
	}
	for i := range uint64(10) {
		r.ID, r.Closed, r.State = 2e6+i, false, "established"
		tab.Upsert(r, t0.Add(3*time.Second))
	}
	if tab.Len() != 10 || tab.freeLen != freeSlack-10 {
		t.Errorf("%d held, %d free, want 10 and %d", tab.Len(), tab.freeLen, freeSlack-10)
	}
}

// TestClosedRing: closed connections are held in close order, listed by
// Flows, dropped after Retention or when the table is full (oldest of open
// and closed first), and late reports of them are ignored.
func TestClosedRing(t *testing.T) {
	tab := NewTable(Config{MaxEntries: 2500, Retention: 10 * time.Second, IdleTimeout: time.Minute})
	r := rec(0, "10.0.0.1:40000", "10.1.0.1:443", DirClient)
	r.Closed, r.State = true, "close"
	for i := range uint64(2000) {
		r.ID = i + 1
		tab.Upsert(r, t0.Add(time.Duration(i)*time.Millisecond))
	}
	open := rec(5000, "10.0.0.1:50000", "10.1.0.1:443", DirClient)
	tab.Upsert(open, t0.Add(3*time.Second))
	for i := range uint64(1000) { // 500 beyond the bound: the oldest closed go
		r.ID = 10001 + i
		tab.Upsert(r, t0.Add(4*time.Second))
	}
	tt := tab.Totals()
	if tab.Len() != 2500 || tt.Evicted != 501 || tt.Closed[DirClient] != 3000 {
		t.Fatalf("len %d evicted %d closed %d, want 2500, 501, 3000", tab.Len(), tt.Evicted, tt.Closed[DirClient])
	}
	if got := tab.Flows(Filter{Port: 50000}); len(got) != 1 || got[0].Closed {
		t.Fatalf("open connection: %+v", got)
	}
	// A late open report and a second close of a closed connection.
	late := r
	late.ID, late.Closed, late.State = 1500, false, "established"
	tab.Upsert(late, t0.Add(5*time.Second))
	late.Closed = true
	tab.Upsert(late, t0.Add(5*time.Second))
	if got := tab.Totals().StaleIgnored; got != 2 {
		t.Errorf("stale ignored %d, want 2", got)
	}
	// The open one closes: it moves to the ring.
	open.Closed, open.State = true, "close"
	tab.Upsert(open, t0.Add(6*time.Second))
	if got := tab.Flows(Filter{Port: 50000}); len(got) != 1 || !got[0].Closed || tab.Len() != 2500 {
		t.Fatalf("closed connection: %+v, len %d", got, tab.Len())
	}
	tab.Roll(t0.Add(12 * time.Second)) // the first 2000 closed before 2s: gone
	if got := tab.Len(); got != 1001 {
		t.Errorf("len %d after retention, want 1001", got)
	}
	tab.Roll(t0.Add(20 * time.Second))
	if got := tab.Len(); got != 0 {
		t.Errorf("len %d, want 0", got)
	}
}
