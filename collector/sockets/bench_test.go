package sockets

import (
	"bufio"
	"context"
	"fmt"
	"github.com/netsight/netsight/internal/kernel"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netsight/netsight/internal/testlab"
)

// holderEnv makes the test binary a socket holder (see TestMain): it opens
// the given number of TCP connections to itself on the given address,
// prints "ready" and keeps them until stdin closes. Spreading sockets over
// holder processes gets past the per-process open-file limit.
const holderEnv = "NETSIGHT_HOLD_SOCKETS" // "addr:port:conns"

// inplaceEnv makes BenchmarkCount40k count the sockets of the namespace it
// runs in instead of building its own (bench/sockets/run.sh uses it to time
// us and ss on the same sockets).
const inplaceEnv = "NETSIGHT_BENCH_INPLACE"

func TestMain(m *testing.M) {
	if spec := os.Getenv(holderEnv); spec != "" {
		if err := holdSockets(spec); err != nil {
			fmt.Fprintln(os.Stderr, "holder:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func holdSockets(spec string) error {
	i := strings.LastIndex(spec, ":")
	addr, n := spec[:i], spec[i+1:]
	conns, err := strconv.Atoi(n)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	keep := make([]net.Conn, 0, 2*conns)
	for j := 0; j < conns; j++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return fmt.Errorf("dial %d: %w", j, err)
		}
		s, err := ln.Accept()
		if err != nil {
			return err
		}
		keep = append(keep, c, s)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin) // hold until stdin closes (or we are killed)
	for _, c := range keep {
		c.Close()
	}
	return nil
}

// startHolders runs procs holder processes in ns, each holding conns
// connections (2*conns sockets) on 10.80.0.1.
func startHolders(tb testing.TB, ns *testlab.NetNS, procs, conns int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	if out, err := ns.Run(ctx, "ip", "addr", "add", "10.80.0.1/32", "dev", "lo"); err != nil {
		tb.Fatalf("%v %s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	for p := 0; p < procs; p++ {
		cmd := ns.Command(ctx, "env", fmt.Sprintf("%s=10.80.0.1:%d:%d", holderEnv, 7100+p, conns), self)
		stdin, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || strings.TrimSpace(line) != "ready" {
			tb.Fatalf("holder %d: %q %v", p, line, err)
		}
	}
}

// BenchmarkCount40k counts 40 000 TCP sockets (20 000 connections, both
// ends) plus listeners, like `ss -tan | wc -l` (compare in bench/sockets/run.sh).
func BenchmarkCount40k(b *testing.B) {
	var ns *testlab.NetNS // nil: the current namespace
	if os.Getenv(inplaceEnv) == "" {
		testlab.RequireRoot(b)
		ns = testlab.NewNetNS(b)
		startHolders(b, ns, 4, 5000)
	}
	for _, backend := range []string{BackendBPFIter, BackendSockDiag} {
		b.Run(backend, func(b *testing.B) {
			err := ns.Do(func() error {
				c := kernel.SocketCounter{Backend: backend}
				defer c.Close()
				if _, err := c.Count(context.Background()); err != nil { // load BPF outside the timer
					return err
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					n, err := c.Count(context.Background())
					if err != nil {
						return err
					}
					if ns != nil && n.Total < 40000 {
						return fmt.Errorf("counted %d sockets, want >= 40000", n.Total)
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}

// TestLabCount40kMatchesSS checks the count of the benchmark's input against
// ss, so the benchmark measures a correct count.
func TestLabCount40kMatchesSS(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test: runs in the full (non -short) pass")
	}
	testlab.RequireRoot(t)
	testlab.RequireBinary(t, "ss")
	ns := testlab.NewNetNS(t)
	startHolders(t, ns, 2, 2000)
	for _, backend := range []string{BackendBPFIter, BackendSockDiag} {
		t.Run(backend, func(t *testing.T) { check40k(t, ns, backend) })
	}
}

func check40k(t *testing.T, ns *testlab.NetNS, backend string) {
	var got kernel.SocketCounts
	if err := ns.Do(func() error {
		c := kernel.SocketCounter{Backend: backend}
		defer c.Close()
		var err error
		got, err = c.Count(context.Background())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := ns.Run(ctx, "sh", "-c", "ss -tanH | wc -l")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := strconv.Atoi(strings.TrimSpace(out))
	tcp := uint64(0)
	for fi := range got.ByState {
		for _, n := range got.ByState[fi][0] {
			tcp += n
		}
	}
	t.Logf("tcp sockets: netsight %d, ss -tan %d", tcp, want)
	if int(tcp) != want || want < 8002 {
		t.Errorf("tcp sockets = %d, ss -tan = %d (want >= 8002)", tcp, want)
	}
}
