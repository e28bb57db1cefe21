package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/netsight/netsight/agent"
	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/internal/hostcheck"
	"github.com/netsight/netsight/internal/termcolor"
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
			writeCheckText(stdout, termcolor.For(stdout), rep)
		}
		if !rep.CanRun {
			return &exitError{code: 1, err: fmt.Errorf("netsight cannot run on this host")}
		}
		return nil
	}
	register(c)
}

// writeCheckText prints one line per result, the verdict word coloured on a
// terminal, and a closing sentence that says whether anything is degraded.
func writeCheckText(w io.Writer, p termcolor.Painter, rep hostcheck.Report) {
	var notOK int
	for _, r := range rep.Results {
		// Pad before colouring: escape codes would break %-5s.
		v := string(r.Verdict)
		line := p.Verdict(v) + strings.Repeat(" ", max(0, 5-len(v))) + " " + fmt.Sprintf("%-22s %s", r.Check, r.Detail)
		if r.Verdict != hostcheck.OK {
			notOK++
			if r.Affects != "" {
				line += "  [affects: " + r.Affects + "]"
			}
		}
		fmt.Fprintln(w, line)
	}
	switch {
	case !rep.CanRun:
	case notOK == 0:
		fmt.Fprintln(w, "\n"+p.Paint(termcolor.OK, "All features available.")+" netsight can run here with every collector.")
	default:
		fmt.Fprintf(w, "\nnetsight can run here; %d check(s) not ok: the features they affect are off and exported as netsight_collector_up 0.\n", notOK)
	}
}
