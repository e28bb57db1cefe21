package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netsight/netsight/agent"
	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/export/collectd"
	"github.com/netsight/netsight/internal/kernel"
)

func init() {
	c := &command{name: "collectd", summary: "print metrics as PUTVAL lines for collectd's Exec plugin", order: 60,
		usage: `Usage: netsight collectd [--config file] [--set path=value]... [--once]

Runs the configured collectors (no HTTP server, no store) and prints every
sample as a collectd PUTVAL line on stdout every COLLECTD_INTERVAL seconds
("60", "60.000" and "60,000" all mean 60 s; missing: 10 s), with the host
from COLLECTD_HOSTNAME. Counters are "derive", gauges "gauge"; nftables
conntrack-state counters keep seed 003's identifiers
(nftables-netsight/packets-tcp_conntrack_fwd_new). Collectd's Exec plugin
refuses to run programs as root: run it as an unprivileged user and give the
binary the capabilities its collectors need (the nftables collector needs
CAP_NET_ADMIN: setcap cap_net_admin=ep). A collector that lacks one says so
on stderr, which collectd logs.`,
		examples: `  # collectd.conf
  LoadPlugin exec
  <Plugin exec>
    Exec "netsight:netsight" "/usr/bin/netsight" "collectd" "--config" "/etc/netsight/collectd.yaml"
  </Plugin>`}
	c.run = func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := newFlagSet(c, stderr)
		cfgFile := fs.String("config", "", "YAML config `file` (only collectors and data_dir are used)")
		once := fs.Bool("once", false, "print one round and exit (dry run)")
		var sets stringList
		fs.Var(&sets, "set", "set any config field: `path=value` (repeatable)")
		if err := parseFlags(fs, args, stdout); err != nil {
			return err
		}
		overrides, err := agent.ParseSets(sets)
		if err != nil {
			return err
		}
		cfg, err := config.LoadFile(*cfgFile, overrides)
		if err != nil {
			return err
		}
		return runCollectd(ctx, cfg, *once, stdout, stderr)
	}
	register(c)
}

func runCollectd(ctx context.Context, cfg *config.Config, once bool, stdout, stderr io.Writer) error {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	interval, err := collectd.ParseInterval(os.Getenv("COLLECTD_INTERVAL"))
	if err != nil {
		logger.Warn(err.Error())
	}
	host := collectd.Hostname()
	m, err := collector.NewManager(cfg.Collectors, collector.Deps{Logger: logger, DataDir: cfg.DataDir,
		Paths: kernel.Paths{ProcFS: cfg.Paths.ProcFS, SysFS: cfg.Paths.SysFS, CgroupFS: cfg.Paths.CgroupFS}})
	if err != nil {
		return err
	}
	for _, s := range m.Status() {
		if s.State == collector.StateUnsupported || s.State == collector.StateFailed {
			fmt.Fprintf(stderr, "netsight collectd: collector %s does not run as uid %d: %s\n", s.Name, os.Geteuid(), s.Reason)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	m.Start(runCtx)
	defer func() {
		sctx, c2 := context.WithTimeout(context.Background(), 5*time.Second)
		defer c2()
		_ = m.Stop(sctx)
	}()
	select {
	case <-m.Ready():
	case <-ctx.Done():
		return nil
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		mfs, err := reg.Gather()
		if err != nil {
			logger.Warn("gather (partial)", "err", err)
		}
		if _, err := collectd.WritePutval(stdout, mfs, host, interval); err != nil {
			return fmt.Errorf("write PUTVAL: %w", err) // collectd closed the pipe
		}
		if once {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
