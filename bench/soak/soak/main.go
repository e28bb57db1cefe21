// Command soak runs the netsight agent for a long time under every kind of
// load the flood and churn tests use, at a low, steady intensity, and prints
// its RSS, file descriptors and goroutines every minute and a summary at the
// end. It is what bench/soak/run.sh runs; see there.
//
// The agent runs in lab namespace B, inside a memory-limited cgroup; the
// loads come from namespace A over a veth pair (SYN bursts with random
// source ports, short connections to several echo servers) and from inside
// B (veth pairs created and deleted while capture follows them), plus
// query_range requests against the store API and /metrics scrapes. Every
// load is bounded per round, the whole run by -duration, and everything is
// removed at the end (or on SIGINT/SIGTERM).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/netsight/netsight/internal/e2e"
	"github.com/netsight/netsight/internal/testlab"
)

type counters struct {
	syns, conns, connErrs, ifaces, queries, queryErrs, scrapes, scrapeErrs atomic.Int64
}

func main() {
	duration := flag.Duration("duration", 30*time.Minute, "how long the load runs")
	report := flag.Duration("report", time.Minute, "interval between reports")
	memMax := flag.Int64("memory-max", 512<<20, "the agent's cgroup memory limit in bytes")
	bin := flag.String("bin", "", "netsight binary (default: build it)")
	synBurst := flag.Int("syn-burst", 20000, "SYNs per flood burst (one burst a minute)")
	synRate := flag.Int("syn-rate", 5000, "SYNs per second in a burst")
	connBatch := flag.Int("conn-batch", 2000, "short connections per batch (a batch every 10s)")
	churnPairs := flag.Int("churn-pairs", 10, "veth pairs created and deleted per churn round (a round every 30s)")
	queryEvery := flag.Duration("query-every", 2*time.Second, "interval between query_range requests")
	scrapeEvery := flag.Duration("scrape-every", time.Second, "interval between /metrics scrapes")
	flag.Parse()
	log.SetFlags(0)
	if os.Geteuid() != 0 {
		log.Fatal("soak: run as root (network namespaces, cgroups)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, config{*duration, *report, *memMax, *bin, *synBurst, *synRate, *connBatch, *churnPairs, *queryEvery, *scrapeEvery}); err != nil {
		log.Fatalf("soak: %v", err)
	}
}

type config struct {
	duration, report        time.Duration
	memMax                  int64
	bin                     string
	synBurst, synRate       int
	connBatch, churnPairs   int
	queryEvery, scrapeEvery time.Duration
}

func run(ctx context.Context, cfg config) (err error) {
	tmp, err := os.MkdirTemp("", "netsight-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if cfg.bin == "" {
		log.Printf("building netsight")
		if cfg.bin, err = e2e.Build(ctx, tmp); err != nil {
			return err
		}
	}
	a, err := testlab.CreateNetNS()
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := testlab.CreateNetNS()
	if err != nil {
		return err
	}
	defer b.Close()
	link, err := testlab.Connect(a, b)
	if err != nil {
		return err
	}
	for k, v := range map[string]string{"net.ipv4.ip_local_port_range": "1024 65000", "net.ipv4.tcp_tw_reuse": "1"} {
		if err := a.Sysctl(k, v); err != nil {
			return err
		}
	}
	cg, err := testlab.CreateCgroup(cfg.memMax)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := cg.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	agentCfg := fmt.Sprintf(`store:
  scrape_interval: 5s
collectors:
  capture:
    enabled: true
    interval: 5s
    interfaces: [%q, "soak*"]
  flows:
    interval: 5s
    max_connections: 4096
    top_k: 10
`, link.B.Name)
	agent, err := e2e.Start(ctx, e2e.Options{Binary: cfg.bin, NS: b, Cgroup: cg, Config: agentCfg, DataDir: filepath.Join(tmp, "data")})
	if err != nil {
		return err
	}
	defer func() {
		if serr := agent.Stop(); serr != nil {
			log.Printf("agent stop: %v", serr)
		}
	}()
	log.Printf("agent pid %d in netns %s, cgroup %s (memory limit %s), for %s", agent.Pid(), b.Name, cg.Path, testlab.MiB(cfg.memMax), cfg.duration)

	var servers []*testlab.Server
	for range 8 {
		ln, err := b.ListenTCP(netip.AddrPortFrom(link.B.Addr4(), 0).String())
		if err != nil {
			return err
		}
		s := testlab.NewServer(ln, true)
		defer s.Close()
		servers = append(servers, s)
	}
	sink, err := b.ListenTCP(netip.AddrPortFrom(link.B.Addr4(), 0).String())
	if err != nil {
		return err
	}
	sinkSrv := testlab.NewServer(sink, false)
	defer sinkSrv.Close()

	lctx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	var c counters
	var wg sync.WaitGroup
	every := func(d time.Duration, fn func(context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(d)
			defer t.Stop()
			for {
				fn(lctx)
				select {
				case <-lctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	// SYN flood bursts.
	seed := uint64(1)
	every(time.Minute, func(ctx context.Context) {
		seed++
		res, err := a.SYNFlood(ctx, testlab.SYNFloodConfig{Src: link.A.Addr4(), Dst: link.B.Addr4(), DstPort: sinkSrv.Addr().Port(),
			Count: cfg.synBurst, Rate: cfg.synRate, Seed: seed, Timeout: 30 * time.Second})
		if err != nil && ctx.Err() == nil {
			log.Printf("syn flood: %v", err)
		}
		c.syns.Add(int64(res.Sent))
	})
	// Short connections.
	round := 0
	every(10*time.Second, func(ctx context.Context) {
		round++
		res, err := a.ShortConns(ctx, testlab.ShortConnsConfig{Target: servers[round%len(servers)].Addr(), Count: cfg.connBatch,
			Bytes: 64, Concurrency: 4, Timeout: 9 * time.Second})
		if err != nil {
			log.Printf("short conns: %v", err)
			return
		}
		for _, r := range res {
			switch {
			case r.Err == nil:
				c.conns.Add(1)
			case ctx.Err() == nil && !errors.Is(r.Err, context.DeadlineExceeded):
				c.connErrs.Add(1)
			}
		}
	})
	// Interface churn inside the agent's namespace.
	every(30*time.Second, func(ctx context.Context) {
		h := b.Handle()
		for i := range cfg.churnPairs {
			name := fmt.Sprintf("soak%d", i)
			if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}); err != nil {
				log.Printf("churn: add %s: %v", name, err)
				continue
			}
			for _, n := range []string{name, name + "p"} {
				if l, err := h.LinkByName(n); err == nil {
					_ = h.LinkSetUp(l)
				}
			}
			c.ifaces.Add(2)
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
		for i := range cfg.churnPairs {
			if l, err := h.LinkByName(fmt.Sprintf("soak%d", i)); err == nil {
				_ = h.LinkDel(l)
			}
		}
	})
	// Query load: dashboard-like range queries over the last 15 minutes.
	queries := []string{
		`sum by (device, direction) (rate(netsight_capture_tcp_packets_total[1m]))`,
		`sum by (reason) (rate(netsight_capture_flow_evictions_total[5m]))`,
		`rate(netsight_flow_connections_opened_total[1m])`,
		`topk(5, netsight_flow_top_connections)`,
		`max_over_time(go_goroutines[5m])`,
		`{__name__=~"netsight_flow_.*"}`,
	}
	qi := 0
	every(cfg.queryEvery, func(ctx context.Context) {
		q := queries[qi%len(queries)]
		qi++
		qctx, qcancel := context.WithTimeout(ctx, 30*time.Second)
		defer qcancel()
		now := time.Now()
		if _, err := agent.QueryRange(qctx, q, now.Add(-15*time.Minute), now, 15*time.Second); err != nil {
			if ctx.Err() == nil {
				c.queryErrs.Add(1)
				log.Printf("query %s: %.200v", q, err)
			}
			return
		}
		c.queries.Add(1)
	})
	// Scrape load.
	var goroutines, heap atomic.Int64
	every(cfg.scrapeEvery, func(ctx context.Context) {
		sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
		defer scancel()
		m, err := agent.Metrics(sctx)
		if err != nil {
			if ctx.Err() == nil {
				c.scrapeErrs.Add(1)
			}
			return
		}
		goroutines.Store(int64(m.Sum("go_goroutines")))
		heap.Store(int64(m.Sum("go_memstats_heap_inuse_bytes")))
		c.scrapes.Add(1)
	})

	// Reports.
	type sample struct {
		at         time.Duration
		p          testlab.ProcStats
		mem        testlab.CgroupMemory
		goroutines int64
		heap       int64
	}
	var samples []sample
	start := time.Now()
	take := func() (sample, error) {
		p, err := agent.Proc()
		if err != nil {
			return sample{}, err
		}
		m, err := cg.Memory()
		if err != nil {
			return sample{}, err
		}
		return sample{time.Since(start), p, m, goroutines.Load(), heap.Load()}, nil
	}
	fmt.Printf("%8s %8s %8s %8s %8s %8s %8s %5s %7s %6s %10s %9s %7s %8s %8s\n", "elapsed", "rss_mib", "anon_mib", "file_mib", "heap_mib", "peak_mib", "cg_mib", "fds", "threads", "gorout",
		"syns", "conns", "ifaces", "queries", "scrapes")
	printSample := func(s sample) {
		fmt.Printf("%8s %8.1f %8.1f %8.1f %8.1f %8.1f %8.1f %5d %7d %6d %10d %9d %7d %8d %8d\n", s.at.Round(time.Second),
			mb(s.p.RSS), mb(s.p.RSSAnon), mb(s.p.RSSFile), mb(s.heap), mb(s.p.PeakRSS), mb(s.mem.Current),
			s.p.FDs, s.p.Threads, s.goroutines, c.syns.Load(), c.conns.Load(), c.ifaces.Load(), c.queries.Load(), c.scrapes.Load())
	}
	t := time.NewTicker(cfg.report)
	defer t.Stop()
	var runErr error
loop:
	for {
		select {
		case <-lctx.Done():
			break loop
		case <-t.C:
		}
		if ok, err := agent.Exited(); ok {
			runErr = fmt.Errorf("agent exited: %v\n%s", err, agent.Logs())
			break
		}
		s, err := take()
		if err != nil {
			runErr = err
			break
		}
		samples = append(samples, s)
		printSample(s)
	}
	if runErr == nil && lctx.Err() != nil && ctx.Err() == nil {
		// The last report interval ends with the run: sample it too.
		if ok, err := agent.Exited(); ok {
			runErr = fmt.Errorf("agent exited: %v\n%s", err, agent.Logs())
		} else if s, err := take(); err == nil && (len(samples) == 0 || s.at-samples[len(samples)-1].at > time.Second) {
			samples = append(samples, s)
			printSample(s)
		}
	}
	cancel()
	wg.Wait()
	if runErr != nil {
		return runErr
	}
	if len(samples) == 0 {
		return errors.New("no samples: run for at least one report interval")
	}
	first, last := samples[0], samples[len(samples)-1]
	var maxRSS, maxFDs, maxG int64
	for _, s := range samples {
		maxRSS, maxFDs, maxG = max(maxRSS, s.p.RSS), max(maxFDs, int64(s.p.FDs)), max(maxG, s.goroutines)
	}
	fmt.Printf("\nsummary after %s (%d samples):\n", last.at.Round(time.Second), len(samples))
	fmt.Printf("  RSS: first %.1f MiB, last %.1f MiB, max sampled %.1f MiB, peak (VmHWM) %.1f MiB; growth first->last %+.1f MiB (anon %+.1f, file %+.1f); Go heap in use first %.1f, last %.1f MiB\n",
		mb(first.p.RSS), mb(last.p.RSS), mb(maxRSS), mb(last.p.PeakRSS), mb(last.p.RSS-first.p.RSS),
		mb(last.p.RSSAnon-first.p.RSSAnon), mb(last.p.RSSFile-first.p.RSSFile), mb(first.heap), mb(last.heap))
	fmt.Printf("  cgroup: limit %.0f MiB, peak %.1f MiB, limit hits %d, OOM kills %d\n", mb(last.mem.Limit), mb(last.mem.Peak), last.mem.LimitHits, last.mem.OOMKills)
	fmt.Printf("  fds: first %d, last %d, max %d; goroutines: first %d, last %d, max %d; threads: first %d, last %d\n",
		first.p.FDs, last.p.FDs, maxFDs, first.goroutines, last.goroutines, maxG, first.p.Threads, last.p.Threads)
	fmt.Printf("  load: %d SYNs, %d connections (%d failed), %d interfaces, %d queries (%d failed), %d scrapes (%d failed)\n",
		c.syns.Load(), c.conns.Load(), c.connErrs.Load(), c.ifaces.Load(), c.queries.Load(), c.queryErrs.Load(), c.scrapes.Load(), c.scrapeErrs.Load())
	if last.mem.OOMKills > 0 {
		return fmt.Errorf("%d OOM kills", last.mem.OOMKills)
	}
	return nil
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }
