// Command flowbench is the helper of bench/flows/run.sh: it runs the flows
// collector alone and reports its cost (agent), generates short TCP
// connections at a fixed rate (gen), or serves them (sink). It is run by
// hand, as root, between network namespaces the script creates.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	cebpf "github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/collector/flows"
	"github.com/netsight/netsight/collector/flows/ebpf"
	"github.com/netsight/netsight/flow"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: flowbench agent|gen|sink [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "agent":
		err = agent(os.Args[2:])
	case "gen":
		err = gen(os.Args[2:])
	case "sink":
		err = sink(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "flowbench:", err)
		os.Exit(1)
	}
}

type agentReport struct {
	Backend        string  `json:"backend"`
	WallSeconds    float64 `json:"wall_seconds"`
	UserCPUSeconds float64 `json:"user_cpu_seconds"`
	SysCPUSeconds  float64 `json:"sys_cpu_seconds"`
	BPFSeconds     float64 `json:"bpf_seconds"`
	BPFRuns        uint64  `json:"bpf_runs"`
	IterSeconds    float64 `json:"iter_seconds"` // part of the sys CPU
	IterRuns       uint64  `json:"iter_runs"`
	Opened         uint64  `json:"connections_opened"`
	Closed         uint64  `json:"connections_closed"`
	RingLost       uint64  `json:"ringbuf_lost"`
	HotFull        uint64  `json:"hot_window_full"`
	Records        uint64  `json:"records_read"`
	// OtherSockOps is the most sock_ops programs loaded besides this
	// agent's (at start or end): other agents on the host. Their callback
	// flags (per-ACK RTT, state changes) make the kernel call every
	// sock_ops program, this one included, for those events too.
	OtherSockOps int `json:"other_sockops_programs"`
	// Before -warmup: the agent's CPU and eBPF time and the connections
	// closed (the flow table's first fill).
	WarmupCPUSeconds float64 `json:"warmup_cpu_seconds,omitempty"`
	WarmupBPFSeconds float64 `json:"warmup_bpf_seconds,omitempty"`
	WarmupClosed     uint64  `json:"warmup_connections_closed,omitempty"`
	// Programs is each eBPF program's run time and runs (ns per run).
	Programs map[string]programReport `json:"programs,omitempty"`
}

type programReport struct {
	Seconds  float64 `json:"seconds"`
	Runs     uint64  `json:"runs"`
	NsPerRun float64 `json:"ns_per_run"`
}

// sockOpsPrograms counts the sock_ops programs loaded on the host.
func sockOpsPrograms() int {
	n := 0
	var id cebpf.ProgramID
	for {
		next, err := cebpf.ProgramGetNextID(id)
		if err != nil {
			return n
		}
		id = next
		p, err := cebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		if info, err := p.Info(); err == nil && info.Type == cebpf.SockOps {
			n++
		}
		p.Close()
	}
}

// agent runs the flows collector (Run plus an Update every interval) until
// SIGTERM/SIGINT or -duration, then prints its CPU use as JSON.
func agent(args []string) error {
	fs := flag.NewFlagSet("agent", flag.ExitOnError)
	backend := fs.String("backend", "ebpf", "ebpf or sockdiag")
	duration := fs.Duration("duration", time.Minute, "stop after this long")
	interval := fs.Duration("interval", time.Second, "Update interval")
	ready := fs.String("ready", "", "file to create once attached")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file")
	attribution := fs.Bool("attribution", true, "sock_diag: scan /proc for socket owners")
	ringBytes := fs.Int("ring-bytes", 0, "eBPF: ring of closed connections (0: the default)")
	warmup := fs.Duration("warmup", 0, "measure from this long after the start (steady state: the flow table has filled); the report's warmup_* fields give the cost before")
	_ = fs.Parse(args)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	if st, err := cebpf.EnableStats(unix.BPF_STATS_RUN_TIME); err == nil {
		defer st.Close()
	}
	cfg := flows.DefaultConfig()
	cfg.Backend = *backend
	cfg.Interval = *interval
	cfg.ProcessAttribution = attribution
	if *ringBytes > 0 {
		cfg.RingBufferBytes = *ringBytes
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := flows.New(cfg, collector.Deps{Logger: logger})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	others := sockOpsPrograms() - 1
	var ru0, ruStart unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru0)
	ruStart = ru0
	start := time.Now()
	var ps0 ebpf.ProgramStats
	var closed0 uint64
	closedNow := func() uint64 {
		tot := c.Table().Totals()
		return tot.Closed[flow.DirClient] + tot.Closed[flow.DirServer]
	}
	var warm <-chan time.Time
	if *warmup > 0 {
		warm = time.After(*warmup)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.Run(ctx) })
	if *ready != "" {
		if err := os.WriteFile(*ready, nil, 0o644); err != nil {
			return err
		}
	}
	t := time.NewTicker(*interval)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-warm:
			// Steady state from here: take the baselines again.
			_ = unix.Getrusage(unix.RUSAGE_SELF, &ru0)
			ps0, _ = c.EBPFProgramStats()
			closed0 = closedNow()
			start = time.Now()
		case <-t.C:
			ch := make(chan prometheus.Metric, 1024)
			go func() { _ = c.Update(ctx, ch); close(ch) }()
			for range ch {
			}
		}
	}
	t.Stop()
	wg.Wait()
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	tv := func(a, b unix.Timeval) float64 { return float64(b.Nano()-a.Nano()) / 1e9 }
	tot := c.Table().Totals()
	rep := agentReport{Backend: c.Backend(), WallSeconds: time.Since(start).Seconds(),
		UserCPUSeconds: tv(ru0.Utime, ru.Utime), SysCPUSeconds: tv(ru0.Stime, ru.Stime),
		Opened: tot.Opened[flow.DirClient] + tot.Opened[flow.DirServer], Closed: closedNow() - closed0,
		WarmupCPUSeconds: tv(ruStart.Utime, ru0.Utime) + tv(ruStart.Stime, ru0.Stime), WarmupClosed: closed0}
	rep.OtherSockOps = others
	if c.Backend() == flows.BackendEBPF {
		rep.OtherSockOps = max(others, sockOpsPrograms()-1)
	} else {
		rep.OtherSockOps = max(others+1, sockOpsPrograms())
	}
	if st, err := c.EBPFStats(); err == nil {
		rep.RingLost, rep.HotFull, rep.Records = st.RingBufferLost, st.HotFull, st.RingBufferRecords
	}
	if ps, err := c.EBPFProgramStats(); err == nil {
		rep.BPFSeconds, rep.BPFRuns = (ps.Runtime - ps0.Runtime).Seconds(), ps.Runs-ps0.Runs
		rep.IterSeconds, rep.IterRuns = (ps.IterRuntime - ps0.IterRuntime).Seconds(), ps.IterRuns-ps0.IterRuns
		rep.WarmupBPFSeconds = ps0.Runtime.Seconds()
		rep.Programs = map[string]programReport{}
		for name, pr := range ps.PerProgram {
			pr0 := ps0.PerProgram[name]
			if runs := pr.Runs - pr0.Runs; runs > 0 {
				rt := pr.Runtime - pr0.Runtime
				rep.Programs[name] = programReport{Seconds: rt.Seconds(), Runs: runs, NsPerRun: float64(rt.Nanoseconds()) / float64(runs)}
			}
		}
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// gen opens short connections to -target at -rate per second for -duration:
// connect, write -bytes, close.
func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	target := fs.String("target", "", "host:port")
	rate := fs.Int("rate", 10000, "connections per second")
	duration := fs.Duration("duration", 10*time.Second, "how long (bounded)")
	size := fs.Int("bytes", 100, "bytes written per connection")
	workers := fs.Int("workers", 64, "concurrent connections")
	_ = fs.Parse(args)
	if *duration > 2*time.Minute || *rate > 100000 {
		return fmt.Errorf("refusing: duration at most 2m and rate at most 100000")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	tokens := make(chan struct{}, *workers)
	var ok, fail atomic.Uint64
	var wg sync.WaitGroup
	buf := make([]byte, *size)
	for range *workers {
		wg.Go(func() {
			d := net.Dialer{Timeout: 2 * time.Second}
			for range tokens {
				c, err := d.DialContext(ctx, "tcp", *target)
				if err != nil {
					fail.Add(1)
					continue
				}
				if _, err := c.Write(buf); err != nil {
					fail.Add(1)
				} else {
					ok.Add(1)
				}
				c.Close()
			}
		})
	}
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	per := float64(*rate) / 1000
	var owed float64
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			owed += per
			for ; owed >= 1; owed-- {
				select {
				case tokens <- struct{}{}:
				default: // workers saturated: the rate is not reached
				}
			}
		}
	}
	tick.Stop()
	close(tokens)
	wg.Wait()
	el := time.Since(start).Seconds()
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"connections": ok.Load(), "failed": fail.Load(),
		"seconds": el, "rate": float64(ok.Load()) / el})
}

// sink accepts connections and discards what they send.
func sink(args []string) error {
	fs := flag.NewFlagSet("sink", flag.ExitOnError)
	listen := fs.String("listen", "", "host:port")
	duration := fs.Duration("duration", time.Minute, "stop after this long")
	_ = fs.Parse(args)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	time.AfterFunc(*duration, func() { ln.Close() })
	for {
		c, err := ln.Accept()
		if err != nil {
			return nil
		}
		go func() {
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			_, _ = io.Copy(io.Discard, c)
			c.Close()
		}()
	}
}
