package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netsight/netsight/internal/testlab"
)

type labMonitor struct {
	Name          string  `json:"name"`
	BytesSent     uint64  `json:"bytes_sent"`
	BytesReceived uint64  `json:"bytes_received"`
	Retransmits   uint64  `json:"retransmits"`
	Connections   uint64  `json:"connections"`
	RTTP50        float64 `json:"rtt_p50_seconds"`
}

type labRow struct {
	Key           map[string]any `json:"key"`
	Category      string         `json:"category"`
	Zone          string         `json:"zone"`
	Retransmits   uint64         `json:"retransmits"`
	BytesSent     uint64         `json:"bytes_sent"`
	BytesReceived uint64         `json:"bytes_received"`
	Connections   uint64         `json:"connections"`
}

// TestLabMonitors is the monitors acceptance: a monitored client namespace
// and four server namespaces in two zones, iperf3 and short-lived
// connections to each, 5% loss toward one server. Per-monitor bytes are
// within 1% of what iperf3 and the connection generator sent, retransmits
// within 2% of iperf3's Retr, the lossy server tops the contributors, each
// server has its category, and "all" counts each connection once (the
// server sides, in other namespaces of this host, are not counted again).
func TestLabMonitors(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test: skipped with -short")
	}
	testlab.RequireRoot(t)
	testlab.RequireBinary(t, "iperf3")
	client := testlab.NewNetNS(t)
	type server struct {
		ns           *testlab.NetNS
		addr, client netip.Addr
		zone         string
	}
	servers := make([]server, 4)
	for i := range servers {
		ns := testlab.NewNetNS(t)
		l := testlab.ConnectVeth(t, client, ns)
		servers[i] = server{ns: ns, addr: l.B.Addr4(), client: l.A.Addr4(), zone: []string{"za", "za", "zb", "zb"}[i]}
	}
	const lossy = 2
	list := func(idx ...int) string {
		var s []string
		for _, i := range idx {
			s = append(s, servers[i].addr.String())
		}
		return "[" + strings.Join(s, ", ") + "]"
	}
	var clients []string
	for _, s := range servers {
		clients = append(clients, s.client.String())
	}
	cfg := fmt.Sprintf(`collectors:%s
topology:
  imds: "off"
  networks:
    - {name: client, cidrs: [%s], zone: za}
    - {name: zone-a, cidrs: %s, zone: za}
    - {name: zone-b, cidrs: %s, zone: zb}
monitors:
  window: 5m
  items:
    - {name: to-zone-a, local: {networks: [client]}, remote: {networks: [zone-a]}}
    - {name: to-zone-b, local: {networks: [client]}, remote: {networks: [zone-b]}}
`, strings.Replace(allOff, "flows: {enabled: false}", "flows: {enabled: true}", 1), strings.Join(clients, ", "), list(0, 1), list(2, 3))
	base := startAgent(t, cfg)
	waitReady(t, base)

	// Traffic: to each server an iperf3 run and short connections, all
	// four servers at once.
	const shortN, shortBytes = 100, 4000
	type result struct {
		// The bytes the client's connections delivered lie between what
		// the servers read (lo) and what the client wrote (hi): iperf3's
		// server closes its data socket at the end of the test with data
		// still unread, so the last bytes written are acknowledged (or
		// not) but never read. The short connections' bytes are exact.
		lo, hi uint64
		retr   int64
		failed int
	}
	results := make([]result, len(servers))
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	for i, s := range servers {
		srv := testlab.StartIperf3Server(t, s.ns, 40*time.Second)
		if i == lossy {
			s.ns.AddLoss(t, testlab.Ingress, 5, testlab.Proto("tcp"), testlab.DstPort(srv.Port))
		}
		echo := s.ns.StartEchoServer(t, s.addr.String()+":0")
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := testlab.RunIperf3(ctx, client, netip.AddrPortFrom(s.addr, srv.Port), testlab.Iperf3Options{Duration: 3 * time.Second})
			if err != nil {
				t.Errorf("iperf3 to %s: %v", s.addr, err)
				return
			}
			results[i].lo, results[i].hi, results[i].retr = res.ReceivedBytes, res.SentBytes, res.Retransmits
			conns, err := client.ShortConns(ctx, testlab.ShortConnsConfig{Target: echo.Addr(), Count: shortN, Bytes: shortBytes, Concurrency: 10})
			if err != nil {
				t.Errorf("short connections to %s: %v", s.addr, err)
				return
			}
			for _, c := range conns {
				if c.Err != nil {
					results[i].failed++
				}
				results[i].lo += uint64(c.Sent)
				results[i].hi += uint64(c.Sent)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i, r := range results {
		t.Logf("server %d (%s, zone %s): servers read %d bytes, the client wrote %d, iperf3 Retr %d, %d short connections failed",
			i, servers[i].addr, servers[i].zone, r.lo, r.hi, r.retr, r.failed)
	}
	if results[lossy].retr < 100 {
		t.Fatalf("iperf3 Retr %d toward the lossy server: the loss did not bite", results[lossy].retr)
	}
	want := map[string]struct {
		lo, hi uint64
		retr   int64
	}{}
	for i, r := range results {
		m := "to-zone-a"
		if servers[i].zone == "zb" {
			m = "to-zone-b"
		}
		w := want[m]
		w.lo += r.lo
		w.hi += r.hi
		w.retr += r.retr
		want[m] = w
	}

	// The flows back end reports closed connections at once and open ones
	// at its poll: wait until the monitors hold every byte.
	monitors := func() map[string]labMonitor {
		var body struct {
			Monitors []labMonitor `json:"monitors"`
		}
		if err := json.Unmarshal([]byte(get(t, base+"/api/v1/monitors")), &body); err != nil {
			t.Fatal(err)
		}
		out := map[string]labMonitor{}
		for _, m := range body.Monitors {
			out[m.Name] = m
		}
		return out
	}
	var got map[string]labMonitor
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		got = monitors()
		done := true
		for name, w := range want {
			if float64(got[name].BytesSent) < 0.99*float64(w.lo) {
				done = false
			}
		}
		if done || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(time.Second) // late reports (the last poll) settle
	got = monitors()
	var sumBytes, sumRetr uint64
	for name, w := range want {
		m := got[name]
		t.Logf("%s: bytes sent %d (servers read %d, the client wrote %d), received %d, retransmits %d (iperf3 Retr %d), connections %d, rtt p50 %.6fs",
			name, m.BytesSent, w.lo, w.hi, m.BytesReceived, m.Retransmits, w.retr, m.Connections, m.RTTP50)
		if float64(m.BytesSent) < 0.99*float64(w.lo) || float64(m.BytesSent) > 1.01*float64(w.hi) {
			t.Errorf("%s: bytes sent %d, more than 1%% outside iperf3's [%d read, %d written] (+ short connections)", name, m.BytesSent, w.lo, w.hi)
		}
		if w.retr >= 100 && math.Abs(float64(m.Retransmits)-float64(w.retr)) > 0.02*float64(w.retr) {
			t.Errorf("%s: retransmits %d, iperf3 Retr %d: more than 2%% apart", name, m.Retransmits, w.retr)
		}
		if m.Connections < 2*shortN+4 { // short ones + iperf3's control and data connections
			t.Errorf("%s: %d connections, want at least %d", name, m.Connections, 2*shortN+4)
		}
		sumBytes += m.BytesSent + m.BytesReceived
		sumRetr += m.Retransmits
	}

	// Contributors over all traffic: the lossy server first; each server
	// in its category; no row for the server sides (remote = a client
	// address); the lab's rows in "all" sum to the two monitors.
	top := func(q string) []labRow {
		var body struct {
			Rows []labRow `json:"rows"`
		}
		if err := json.Unmarshal([]byte(get(t, base+"/api/v1/monitors/all/top?"+q)), &body); err != nil {
			t.Fatal(err)
		}
		return body.Rows
	}
	if rows := top("metric=retransmits&limit=3"); len(rows) == 0 || rows[0].Key["remote"] != servers[lossy].addr.String() {
		t.Errorf("top contributors by retransmits: %+v, want %s first", rows, servers[lossy].addr)
	}
	byRemote := map[string]labRow{}
	for _, r := range top("metric=bytes&limit=1000") {
		byRemote[fmt.Sprint(r.Key["remote"])] = r
	}
	var allBytes, allRetr uint64
	for i, s := range servers {
		r, ok := byRemote[s.addr.String()]
		wantCat := map[string]string{"za": "intra_zone", "zb": "inter_zone"}[s.zone]
		if !ok || r.Category != wantCat || r.Zone != s.zone {
			t.Errorf("server %d %s: row %+v, want category %s zone %s", i, s.addr, r, wantCat, s.zone)
		}
		allBytes += r.BytesSent + r.BytesReceived
		allRetr += r.Retransmits
		if c, ok := byRemote[s.client.String()]; ok {
			t.Errorf("the server side of %s counted again in all: %+v", s.client, c)
		}
	}
	if allBytes != sumBytes || allRetr != sumRetr {
		t.Errorf("all over the lab's servers: %d bytes, %d retransmits; the monitors sum to %d and %d", allBytes, allRetr, sumBytes, sumRetr)
	}
	if a := got["all"]; a.BytesSent+a.BytesReceived < sumBytes {
		t.Errorf("all: %d bytes < the monitors' sum %d", a.BytesSent+a.BytesReceived, sumBytes)
	}
}
