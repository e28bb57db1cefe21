package sockets

import (
	"context"
	"github.com/netsight/netsight/internal/kernel"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netsight/netsight/internal/testlab"
)

// guidePipeline is the EC2 connection-tracking guide's exact `ss | awk` pipeline.
const guidePipeline = `ss -A tcp,udp state all | awk 'NR > 1 && $6 !~ /0.0.0.0:\*/ && $6 !~ /\[::\]:\*/ && $6 !~ /127.0.0.1:/ && $6 !~ /\[::ffff:127.0.0.1\]/ && $6 != "*:*" {print $6}' | wc -l`

// mix opens, inside ns, a mixture that exercises every rule of the seed
// pipeline: connections to a non-loopback address (counted on both ends),
// to 127.0.0.1 (excluded), to ::1 (counted: the seed does not exclude it),
// v4-mapped 127.0.0.1 (excluded), connected UDP (counted), unconnected UDP
// and listeners (excluded), TIME_WAIT sockets (counted).
func mix(t *testing.T, ns *testlab.NetNS, held int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := ns.Run(ctx, "ip", "addr", "add", "10.77.0.1/32", "dev", "lo"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	var (
		mu   sync.Mutex
		keep []interface{ Close() error }
	)
	add := func(c interface{ Close() error }) { mu.Lock(); keep = append(keep, c); mu.Unlock() }
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range keep {
			c.Close()
		}
	})
	serve := func(network, addr string) net.Listener {
		ln, err := ns.Listen(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		add(ln)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				add(c)
			}
		}()
		return ln
	}
	dial := func(network, addr string, n int) {
		for i := 0; i < n; i++ {
			c, err := ns.Dial(ctx, network, addr)
			if err != nil {
				t.Fatal(err)
			}
			add(c)
		}
	}
	l4 := serve("tcp4", "0.0.0.0:0")
	port := strconv.Itoa(l4.Addr().(*net.TCPAddr).Port)
	dial("tcp4", "10.77.0.1:"+port, held)
	dial("tcp4", "127.0.0.1:"+port, 5)
	l6 := serve("tcp", "[::]:0") // dual stack
	port6 := strconv.Itoa(l6.Addr().(*net.TCPAddr).Port)
	dial("tcp6", "[::1]:"+port6, 3)
	dial("tcp4", "127.0.0.1:"+port6, 2) // accepted as ::ffff:127.0.0.1
	// TIME_WAIT: the dialer closes first.
	for i := 0; i < 4; i++ {
		c, err := ns.Dial(ctx, "tcp4", "10.77.0.1:"+port)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	u, err := ns.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	add(u)
	uport := strconv.Itoa(u.LocalAddr().(*net.UDPAddr).Port)
	dial("udp4", "10.77.0.1:"+uport, 4)
	dial("udp6", "[::1]:"+uport, 1) // connected; nobody listens on v6: still a socket
	// Let the accept loop pick everything up.
	time.Sleep(200 * time.Millisecond)
}

func TestLabTrackedMatchesGuidePipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test: runs in the full (non -short) pass")
	}
	testlab.RequireRoot(t)
	testlab.RequireBinary(t, "ss")
	ns := testlab.NewNetNS(t)
	mix(t, ns, 50)

	for _, backend := range []string{BackendBPFIter, BackendSockDiag} {
		t.Run(backend, func(t *testing.T) { checkAgainstSS(t, ns, backend) })
	}
}

func checkAgainstSS(t *testing.T, ns *testlab.NetNS, backend string) {
	var counts kernel.SocketCounts
	if err := ns.Do(func() error {
		c := kernel.SocketCounter{Backend: backend}
		defer c.Close()
		var err error
		counts, err = c.Count(context.Background())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := ns.Run(ctx, "sh", "-c", guidePipeline)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("pipeline output %q", out)
	}
	t.Logf("tracked: netsight %d, guide pipeline %d (total sockets %d)", counts.Tracked, seed, counts.Total)
	if int(counts.Tracked) != seed {
		full, _ := ns.Run(ctx, "ss", "-A", "tcp,udp", "state", "all")
		t.Errorf("tracked = %d, guide pipeline = %d\n%s", counts.Tracked, seed, full)
	}
	if counts.Tracked < 2*50 {
		t.Errorf("tracked = %d, want >= 100 (50 held connections, both ends)", counts.Tracked)
	}

	// Per-state counts against ss -tan / -uan.
	for _, tc := range []struct {
		args  []string
		proto int
	}{{[]string{"-tan"}, 0}, {[]string{"-uan"}, 1}} {
		out, err := ns.Run(ctx, "ss", tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]uint64{}
		for _, l := range strings.Split(out, "\n")[1:] {
			if f := strings.Fields(l); len(f) > 0 {
				want[ssState(f[0])]++
			}
		}
		got := map[string]uint64{}
		for fi := range counts.ByState {
			for st, n := range counts.ByState[fi][tc.proto] {
				if n > 0 {
					got[kernel.SocketStateNames[st]] += n
				}
			}
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("ss %v: %s = %d, netsight %d", tc.args, k, v, got[k])
			}
		}
		for k, v := range got {
			if want[k] != v {
				t.Errorf("netsight %s %s = %d, ss %v says %d", kernel.SocketProtocolNames[tc.proto], k, v, tc.args, want[k])
			}
		}
	}
}

func ssState(s string) string {
	return map[string]string{
		"ESTAB": "established", "SYN-SENT": "syn_sent", "SYN-RECV": "syn_recv", "FIN-WAIT-1": "fin_wait1",
		"FIN-WAIT-2": "fin_wait2", "TIME-WAIT": "time_wait", "UNCONN": "close", "CLOSE-WAIT": "close_wait",
		"LAST-ACK": "last_ack", "LISTEN": "listen", "CLOSING": "closing",
	}[s]
}
