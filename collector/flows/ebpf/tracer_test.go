package ebpf

import (
	"context"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/internal/testlab"
)

// TestTracerLoopback: one loopback connection is seen live (Active) and at
// close (ring buffer) from both ends, with bytes, direction and process.
func TestTracerLoopback(t *testing.T) {
	testlab.RequireRoot(t)
	tr, err := Open(Options{MaxConns: 1024, RingBufferBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan flow.Record, 1024)
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx, func(r flow.Record) { got <- r }) }()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	local := c.LocalAddr().(*net.TCPAddr).AddrPort()
	const size = 100000
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	var live bool
	if err := tr.Active(func(r flow.Record) {
		if r.Local == local {
			live = r.Direction == flow.DirClient && !r.Closed && r.BytesSent >= size
		}
	}); err != nil {
		t.Fatal(err)
	}
	if !live {
		t.Error("open connection not in the kernel table with its bytes")
	}
	c.Close()
	var client, server *flow.Record
	timeout := time.After(5 * time.Second)
	for client == nil || server == nil {
		select {
		case r := <-got:
			switch {
			case r.Local == local:
				client = &r
			case r.Remote == local:
				server = &r
			}
		case <-timeout:
			t.Fatalf("closed records: client %v server %v", client, server)
		}
	}
	pid := uint32(os.Getpid())
	if client.Direction != flow.DirClient || client.PID != pid || client.Comm == "" || client.BytesSent < size || client.ConnectLatency <= 0 || client.SRTT <= 0 {
		t.Errorf("client record: %+v", client)
	}
	if server.Direction != flow.DirServer || server.PID != pid || server.BytesReceived < size || !server.Closed {
		t.Errorf("server record: %+v", server)
	}
	st, err := tr.Stats()
	if err != nil || st.ProgramsAttached != 6 {
		t.Errorf("stats %+v, %v; want 6 programs attached", st, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

// TestTracerActiveMany: more open connections than one batch, and than the
// hot window holds (the rest go to the conns map), are all reported by
// Active, with the right directions, and every close arrives, from both
// places.
func TestTracerActiveMany(t *testing.T) {
	testlab.RequireRoot(t)
	// A hot window of 128 buckets (1,024 slots) for 5,000 tracked ends:
	// most go to the conns map, and their closes through the ring.
	tr, err := Open(Options{MaxConns: 8192, RingBufferBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const n = 2500
	accepted := make(chan net.Conn, n)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for range n {
		select {
		case c := <-accepted:
			conns = append(conns, c)
		case <-time.After(10 * time.Second):
			t.Fatal("accept timed out")
		}
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	// By ID: Active reads the tables twice when a namespace with tracked
	// connections appeared meanwhile (e.g. another test's), so a
	// connection may be reported twice.
	live := map[uint64]flow.Direction{}
	if err := tr.Active(func(r flow.Record) {
		switch {
		case r.Remote.Port() == port && r.Direction == flow.DirClient, r.Local.Port() == port && r.Direction == flow.DirServer:
			live[r.ID] = r.Direction
		}
	}); err != nil {
		t.Fatal(err)
	}
	var clients, servers int
	for _, d := range live {
		if d == flow.DirClient {
			clients++
		} else {
			servers++
		}
	}
	if clients != n || servers != n {
		t.Errorf("active: %d clients, %d servers; want %d each", clients, servers, n)
	}
	st, err := tr.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if hot := uint64(hotBuckets(8192)) * hotSlots; st.HotFull < 2*n-hot {
		t.Errorf("%d connections went to the conns map, want at least %d (hot window of %d)", st.HotFull, 2*n-hot, hot)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	closed := map[uint64]flow.Direction{}
	var mu sync.Mutex
	go func() {
		defer close(done)
		_ = tr.RunBatch(ctx, func(recs []flow.Record) {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range recs {
				if (r.Remote.Port() == port || r.Local.Port() == port) && r.Closed {
					closed[r.ID] = r.Direction
				}
			}
		})
	}()
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		got := len(closed)
		mu.Unlock()
		if got >= 2*n || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	clients, servers = 0, 0
	for _, d := range closed {
		if d == flow.DirClient {
			clients++
		} else if d == flow.DirServer {
			servers++
		}
	}
	st2, _ := tr.Stats()
	if clients != n || servers != n {
		// Events counts the closes the kernel program saw.
		t.Errorf("closed: %d clients, %d servers; want %d each (stats %+v)", clients, servers, n, st2)
	}
	if st, err := tr.Stats(); err != nil || st.RingBufferLost != 0 {
		t.Errorf("stats %+v, %v: want no record lost", st, err)
	}
}

// TestTracerPreexisting: a connection opened before the tracer attached is
// tracked from the first refresh on (both ends, the server told by its
// listener, no process) and its close arrives.
func TestTracerPreexisting(t *testing.T) {
	testlab.RequireRoot(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cli, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := cli.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(srv, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}

	tr, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	ours := func(r *flow.Record) bool { return r.Remote.Port() == port || r.Local.Port() == port }
	ids := map[uint64]flow.Direction{}
	for pass := range 2 {
		n := 0
		if err := tr.Active(func(r flow.Record) {
			if !ours(&r) {
				return
			}
			n++
			ids[r.ID] = r.Direction
			switch {
			case r.Remote.Port() == port && r.Direction == flow.DirClient:
				if r.BytesSent < 1000 || r.PID != 0 || r.State != "established" {
					t.Errorf("pass %d: client %+v", pass, r)
				}
			case r.Local.Port() == port && r.Direction == flow.DirServer:
				if r.BytesReceived < 1000 {
					t.Errorf("pass %d: server %+v", pass, r)
				}
			default:
				t.Errorf("pass %d: direction %v for %v -> %v", pass, r.Direction, r.Local, r.Remote)
			}
		}); err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Fatalf("pass %d: %d records for the connection, want 2 (client and server)", pass, n)
		}
	}
	if st, err := tr.Stats(); err != nil || st.Seeded < 2 {
		t.Errorf("stats %+v, %v: want at least 2 seeded", st, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan flow.Record, 16)
	go func() {
		_ = tr.RunBatch(ctx, func(recs []flow.Record) {
			for _, r := range recs {
				if ours(&r) {
					got <- r
				}
			}
		})
	}()
	cli.Close()
	srv.Close()
	for range 2 {
		select {
		case r := <-got:
			if _, ok := ids[r.ID]; !ok || !r.Closed || r.Direction != ids[r.ID] {
				t.Errorf("close %+v, want one of %v", r, ids)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("close not seen")
		}
	}
}
