package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/netsight/netsight/agent"
	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/internal/hostcheck"
)

// collectorChecks asks every collector's factory whether it can run here
// with its section of cfg (the same probes its New uses) and the host paths
// of cfg.
func collectorChecks(ctx context.Context, cfg *config.Config) []hostcheck.Result {
	var out []hostcheck.Result
	deps := collector.Deps{Paths: agent.HostPaths(cfg)}
	for _, f := range collector.Factories() {
		r := hostcheck.Result{Check: "collector " + f.Type(), Verdict: hostcheck.OK, Detail: "can run"}
		section, ok := cfg.Collectors[f.Type()]
		if !ok {
			section = f.DefaultConfig()
		}
		if err := f.Check(ctx, section, deps); err != nil {
			r.Verdict, r.Detail, r.Affects = hostcheck.Warn, err.Error(), f.Type()+" collector (exported as netsight_collector_up 0)"
		}
		out = append(out, r)
	}
	return out
}

func init() {
	c := &command{name: "check", summary: "report what this host supports, one verdict per line", order: 10,
		usage: `Usage: netsight check [--json]

Checks what netsight can do here: kernel version, BTF, capabilities, whether
eBPF programs load, cgroup v2, nf_conntrack, nftables, AF_PACKET, ICMP sockets,
and which interfaces expose cloud NIC (ENA) allowance counters. Each line says
ok, warn or fail and which feature depends on it. It changes nothing and sends
no packets. Host files are read below the config's paths (paths.procfs,
paths.sysfs, paths.cgroupfs; --config and --set as for run). Exit status 0
means the agent can run (possibly degraded).`,
		examples: `  sudo netsight check
  netsight check --set paths.procfs=/host/proc --set paths.sysfs=/host/sys
  netsight check --json | jq '.results[] | select(.verdict != "ok")'`}
	c.run = func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := newFlagSet(c, stderr)
		asJSON := fs.Bool("json", false, "print JSON instead of text")
		cfgFile := fs.String("config", "", "YAML config `file` whose paths (paths.procfs, paths.sysfs, paths.cgroupfs) and collector sections are checked")
		var sets stringList
		fs.Var(&sets, "set", "set any config field: `path=value` (repeatable), e.g. paths.procfs=/host/proc")
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
		p := agent.HostPaths(cfg)
		rep := hostcheck.Run(ctx, hostcheck.Options{ProcRoot: p.ProcFS, SysRoot: p.SysFS, CgroupRoot: p.CgroupFS})
		rep.Results = append(rep.Results, collectorChecks(ctx, cfg)...)
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(rep); err != nil {
				return err
			}
		} else {
			for _, r := range rep.Results {
				line := fmt.Sprintf("%-5s %-22s %s", r.Verdict, r.Check, r.Detail)
				if r.Affects != "" && r.Verdict != hostcheck.OK {
					line += "  [affects: " + r.Affects + "]"
				}
				fmt.Fprintln(stdout, line)
			}
			if rep.CanRun {
				fmt.Fprintln(stdout, "\nnetsight can run here; features marked fail are off and exported as netsight_collector_up 0.")
			}
		}
		if !rep.CanRun {
			return &exitError{code: 1, err: fmt.Errorf("netsight cannot run on this host")}
		}
		return nil
	}
	register(c)
}
