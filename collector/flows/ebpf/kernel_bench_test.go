package ebpf

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	cebpf "github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/internal/testlab"
)

// openForBench opens a tracer with BPF run-time statistics on and drains
// its ring buffer until the benchmark ends.
func openForBench(b *testing.B) *Tracer {
	b.Helper()
	testlab.RequireRoot(b)
	st, err := cebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		b.Skipf("BPF statistics: %v", err)
	}
	b.Cleanup(func() { st.Close() })
	tr, err := Open(Options{RingBufferBytes: benchRing})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = tr.RunBatch(ctx, func([]flow.Record) {}); close(done) }()
	b.Cleanup(func() { cancel(); <-done; tr.Close() })
	return tr
}

func sink(b *testing.B) net.Listener {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	return ln
}

// BenchmarkKernelPerConn is the in-kernel cost of one short loopback
// connection (connect, 100 bytes, close; both ends tracked): run time and
// runs of the sock_ops and tracepoint programs per connection. Other
// sock_ops programs on the host (other agents) add runs: the kernel calls
// every program for the callbacks any of them enables.
func BenchmarkKernelPerConn(b *testing.B) {
	tr := openForBench(b)
	ln := sink(b)
	buf := make([]byte, 100)
	ps0, err := tr.ProgramStats()
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		_, _ = c.Write(buf)
		c.Close()
		n++
	}
	b.StopTimer()
	time.Sleep(200 * time.Millisecond) // the server ends close
	ps, err := tr.ProgramStats()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(ps.Runtime-ps0.Runtime)/float64(n), "bpf-ns/conn")
	b.ReportMetric(float64(ps.Runs-ps0.Runs)/float64(n), "runs/conn")
}

// BenchmarkActive is one refresh of the live table (iterator pass in the
// agent's namespace, then the batched map read) with 1000 open loopback
// connections (2000 tracked ends); ns/op is for the whole refresh.
func BenchmarkActive(b *testing.B) {
	tr := openForBench(b)
	ln := sink(b)
	const open = 1000
	for range open {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
	}
	time.Sleep(100 * time.Millisecond)
	ps0, _ := tr.ProgramStats()
	seen := 0
	for b.Loop() {
		seen = 0
		if err := tr.Active(func(flow.Record) { seen++ }); err != nil {
			b.Fatal(err)
		}
	}
	if seen < 2*open {
		b.Fatalf("Active saw %d connections, want >= %d", seen, 2*open)
	}
	ps, _ := tr.ProgramStats()
	b.ReportMetric(float64(ps.IterRuntime-ps0.IterRuntime)/float64(ps.IterRuns-ps0.IterRuns), "iter-ns/socket")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(seen), "ns/conn")
}

var benchRing uint32 = 0
