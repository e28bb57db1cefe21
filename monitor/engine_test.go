package monitor

import (
	"net/netip"
	"testing"
	"time"

	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/monitor/topology"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func testResolver() *topology.Resolver {
	r := &topology.Resolver{}
	net := func(name, cidr, zone string) topology.Network {
		return topology.Network{Name: name, Prefixes: []netip.Prefix{netip.MustParsePrefix(cidr)}, Zone: zone, VPC: "vpc-1", Region: "r1", Source: topology.SourceNetworks}
	}
	r.Set([]topology.Network{net("client", "10.1.0.0/24", "z1"), net("srv-a", "10.2.0.0/24", "z1"), net("srv-b", "10.3.0.0/24", "z2")},
		[]netip.Addr{netip.MustParseAddr("192.168.0.1")}, topology.Place{})
	return r
}

func conn(id uint64, local, remote string, dir flow.Direction) flow.Record {
	return flow.Record{ID: id, Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort(remote),
		Direction: dir, State: "established", Start: t0, SRTT: 2 * time.Millisecond, ConnectLatency: time.Millisecond}
}

func newTestEngine(t testing.TB) (*Engine, *flow.Table) {
	e := NewEngine(Config{Window: time.Minute, Monitors: []Spec{
		{Name: "to-a", LocalNets: []string{"client"}, RemoteNets: []string{"srv-a"}},
		{Name: "to-b", LocalNets: []string{"client"}, RemoteNets: []string{"srv-b"}},
		{Name: "https", RemotePorts: []uint16{443}},
	}}, testResolver())
	tab := flow.NewTable(flow.Config{})
	tab.SetObserver(e.Observe)
	return e, tab
}

func TestEngineWindows(t *testing.T) {
	e, tab := newTestEngine(t)
	// Client to srv-a (same zone), both sides on this host: the server
	// side must not count again in "all".
	a := conn(1, "10.1.0.2:40000", "10.2.0.2:5201", flow.DirClient)
	as := conn(2, "10.2.0.2:5201", "10.1.0.2:40000", flow.DirServer)
	b := conn(3, "10.1.0.2:40001", "10.3.0.2:443", flow.DirClient)
	for i := range 6 {
		now := t0.Add(time.Duration(i) * 10 * time.Second)
		a.BytesSent, a.Retransmits = uint64(i+1)*1000, uint64(i)
		as.BytesReceived = a.BytesSent
		b.BytesSent, b.Retransmits, b.RTOs = uint64(i+1)*10, uint64(i)*3, 1
		tab.UpsertBatch([]flow.Record{a, as, b}, now)
	}
	ws := e.Windows(t0.Add(55 * time.Second))
	byName := map[string]Window{}
	for _, w := range ws {
		byName[w.Name] = w
	}
	if len(ws) != 4 || ws[0].Name != AllMonitor {
		t.Fatalf("windows %v", ws)
	}
	check := func(name string, sent, recv, retrans, conns uint64) {
		t.Helper()
		s := byName[name].Totals
		if s.BytesSent != sent || s.BytesReceived != recv || s.Retransmits != retrans || s.Connections != conns {
			t.Errorf("%s: sent %d recv %d retrans %d conns %d, want %d %d %d %d", name,
				s.BytesSent, s.BytesReceived, s.Retransmits, s.Connections, sent, recv, retrans, conns)
		}
	}
	check("to-a", 6000, 0, 5, 1)
	check("to-b", 60, 0, 15, 1)
	check("https", 60, 0, 15, 1)
	check(AllMonitor, 6060, 0, 20, 2)
	all := byName[AllMonitor]
	if len(all.Remotes) != 2 || all.Remotes[0].Addr != netip.MustParseAddr("10.3.0.2") || all.Remotes[0].Place.Category != topology.InterZone {
		t.Errorf("all remotes: %+v", all.Remotes)
	}
	if all.Remotes[1].Place.Category != topology.IntraZone || all.Remotes[1].Port != 5201 {
		t.Errorf("srv-a remote: %+v", all.Remotes[1])
	}
	if ok := all.Totals.ConnectOK; ok != 2 {
		t.Errorf("connect ok = %d, want 2", ok)
	}
	if n := all.Totals.RTT.Count; n != 2 { // one per connection per window
		t.Errorf("rtt observations = %d, want 2", n)
	}
	// A window later than the activity holds the open connections and no
	// bytes.
	later := e.Windows(t0.Add(3 * time.Minute))[0]
	if later.Totals.BytesSent != 0 || later.Totals.Connections != 2 {
		t.Errorf("later window: %+v", later.Totals)
	}
}

func TestEngineEvicts(t *testing.T) {
	e := NewEngine(Config{MaxGroups: 10}, testResolver())
	tab := flow.NewTable(flow.Config{})
	tab.SetObserver(e.Observe)
	for i := range 100 {
		r := conn(uint64(i+1), "10.1.0.2:40000", netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, 0, byte(i)}), 80).String(), flow.DirClient)
		r.BytesSent = 1
		tab.Upsert(r, t0)
	}
	if g, ev := e.Groups(), e.Evicted(); g != 10 || ev != 90 {
		t.Errorf("groups %d evicted %d, want 10 and 90", g, ev)
	}
	if s := e.Windows(t0)[0].Totals; s.BytesSent != 100 || s.Connections != 100 {
		t.Errorf("all: sent %d conns %d, want 100 each (scopes are not evicted)", s.BytesSent, s.Connections)
	}
}

// A connection the table drops while open (idle expiry) leaves the
// open-connection count, even when its group was evicted meanwhile.
func TestEngineGone(t *testing.T) {
	e := NewEngine(Config{MaxGroups: 1, Monitors: []Spec{{Name: "to-a", RemoteNets: []string{"srv-a"}}}}, testResolver())
	tab := flow.NewTable(flow.Config{IdleTimeout: time.Minute})
	tab.SetObserver(e.Observe)
	tab.Upsert(conn(1, "10.1.0.2:40000", "10.2.0.2:80", flow.DirClient), t0)
	tab.Upsert(conn(2, "10.1.0.2:40001", "10.2.0.3:80", flow.DirClient), t0) // evicts the first group
	if w := e.Windows(t0)[1]; w.Totals.Connections != 2 {
		t.Fatalf("to-a connections %d, want 2", w.Totals.Connections)
	}
	tab.Expire(t0.Add(2 * time.Minute))
	now := t0.Add(5 * time.Minute)
	for _, w := range e.Windows(now) {
		if w.Totals.Connections != 0 {
			t.Errorf("%s: %d connections after both left the table", w.Name, w.Totals.Connections)
		}
	}
}
