package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/netsight/netsight/agent"
	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/internal/kernel"
	"github.com/netsight/netsight/internal/termcolor"
	"github.com/netsight/netsight/internal/top"
)

func init() {
	c := &command{name: "top", summary: "live view of connections: retransmissions, RTT, throughput, failures", order: 25,
		usage: `Usage: netsight top [flags]

A live terminal view of this host's TCP connections, worst first: sorted by
retransmissions per second, RTT, throughput or connect failures, with the
process, the network namespace (its 'ip netns' name when it has one),
the state, bytes/s, RTT and retransmissions/s. A per-remote view sums the
connections to each remote address; a host pane shows the collectors,
the conntrack table, cloud NIC allowance counters and probe targets.

Without --agent it runs its own collectors, as the agent would (flows:
eBPF, else sock_diag; conntrack; nic; probe with the targets of --config),
so no agent is needed; eBPF and the per-state conntrack dump need root or
CAP_BPF/CAP_PERFMON/CAP_NET_ADMIN (without them it falls back and says so in
the host pane). The eBPF back end sees every namespace but only connections
opened after top started; --set collectors.flows.backend=sockdiag shows the
ones already open in this namespace. With --agent it reads a running agent's /api/v1/flows,
/metrics and /api/v1/status/collectors.

Keys: r t b f sort by retransmissions, RTT, bytes/s, failures (s cycles);
/ filter (remote:ADDR|CIDR port:N proc:NAME netns:NAME, or a bare word),
esc clears it; p or space pause; a per-remote view; c host pane (conntrack,
NIC allowances, probes); tab cycles the panes; arrows/j/k scroll; ? all
keys; q quits. NO_COLOR=1 turns colours off.

--once prints one snapshot and exits: rates are taken over --interval
(two readings). With --json the snapshot is JSON: each connection carries
every field of /api/v1/flows plus netns_name and the rates
(send_rate_bytes_per_second, receive_rate_bytes_per_second,
retransmissions_per_second); "remotes" sums them per remote address;
"host" holds collectors, conntrack, nic_allowances and probes.`,
		examples: `  sudo netsight top
  sudo netsight top --sort rtt --filter port:443
  netsight top --agent http://127.0.0.1:19977
  netsight top --agent https://node1:19977 --agent-ca-file ca.pem \
      --agent-basic-auth-user ops --agent-basic-auth-password-file pw
  sudo netsight top --once --json | jq '.connections[:5][] | {comm, remote_addr, retransmissions_per_second}'
  sudo netsight top --config /etc/netsight/netsight.yaml   # probe targets of the agent's config`}
	c.run = func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := newFlagSet(c, stderr)
		agentOpts := addAgentFlags(fs, "running collectors here")
		interval := fs.Duration("interval", time.Second, "refresh every `duration` (--once: the interval rates are taken over)")
		sortBy := fs.String("sort", "retrans", "initial sort: `retrans`, rtt, throughput or failures")
		filterStr := fs.String("filter", "", "initial `filter`, e.g. \"remote:10.0.0.0/8 port:443 proc:nginx\"")
		once := fs.Bool("once", false, "print one snapshot and exit")
		asJSON := fs.Bool("json", false, "with --once: print JSON")
		limit := fs.Int("limit", 0, "with --once: print at most `n` connections and remotes (0: all)")
		maxConns := fs.Int("max-connections", 0, "read at most `n` connections per refresh (0: all the local table holds; an agent sends at most 10000)")
		cfgFile := fs.String("config", "", "YAML config `file` for the local collectors (probe targets, paths, flows back end)")
		var sets stringList
		fs.Var(&sets, "set", "set a config field of the local collectors: `path=value` (repeatable), e.g. collectors.flows.backend=sockdiag")
		netnsDir := fs.String("netns-dir", kernel.DefaultNetNSDir, "`dir` of named network namespaces (ip netns)")
		if err := parseFlags(fs, args, stdout); err != nil {
			return err
		}
		sortKey, err := top.ParseSortKey(*sortBy)
		if err != nil {
			return fmt.Errorf("%w: --sort: %v", errUsage, err)
		}
		filter, err := top.ParseFilter(*filterStr)
		if err != nil {
			return fmt.Errorf("%w: --filter: %v", errUsage, err)
		}
		switch {
		case fs.NArg() > 0:
			return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
		case *interval < 100*time.Millisecond || *interval > time.Hour:
			return fmt.Errorf("%w: --interval must be between 100ms and 1h, got %s", errUsage, *interval)
		case *asJSON && !*once:
			return fmt.Errorf("%w: --json needs --once", errUsage)
		case *limit < 0:
			return fmt.Errorf("%w: --limit must not be negative", errUsage)
		case *maxConns < 0 || *maxConns > 1<<22 || (agentOpts.url != "" && *maxConns > 10000):
			return fmt.Errorf("%w: --max-connections must be 0 to 10000 with --agent, 0 to 4194304 without, got %d", errUsage, *maxConns)
		case agentOpts.url != "" && (*cfgFile != "" || len(sets) > 0):
			return fmt.Errorf("%w: --config and --set configure local collectors; not with --agent", errUsage)
		}
		if !*once {
			if !termcolor.IsTerminal(stdout) {
				return fmt.Errorf("%w: standard output is not a terminal; use --once (and --json) in scripts", errUsage)
			}
		}

		var src top.Source
		if agentOpts.url != "" {
			u, cl, err := agentOpts.client()
			if err != nil {
				return err
			}
			src = &top.AgentSource{URL: u, Client: cl, Limit: *maxConns}
		} else {
			logger := slog.New(slog.DiscardHandler)
			if *once {
				logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			}
			ls, err := startLocal(ctx, localOptions{ConfigFile: *cfgFile, Sets: sets, Interval: *interval,
				Once: *once, MaxConnections: *maxConns, Logger: logger})
			if err != nil {
				return err
			}
			defer ls.Close()
			src = ls
		}
		// An agent names the places of its connections itself.
		var names top.Names
		if agentOpts.url == "" {
			names = localNames(*netnsDir, *cfgFile, sets)
		}
		if *once {
			return topOnce(ctx, src, *interval, top.ReportOptions{Source: src.Name(), Sort: sortKey, Filter: filter,
				Limit: *limit, Names: names}, *asJSON, stdout)
		}
		return topLive(ctx, src, top.Options{Interval: *interval, Sort: sortKey, Filter: filter, Names: names}, stdout)
	}
	register(c)
}

// topLive runs the terminal view until q or ctx ends.
func topLive(ctx context.Context, src top.Source, opts top.Options, stdout io.Writer) error {
	r := lipgloss.NewRenderer(stdout)
	// The commands' colour rule (NO_COLOR, CLICOLOR_FORCE, TERM=dumb).
	colour := termcolor.Enabled(stdout, os.Getenv)
	switch {
	case colour && r.ColorProfile() == termenv.Ascii:
		r.SetColorProfile(termenv.ANSI) // CLICOLOR_FORCE
	case !colour && os.Getenv("TERM") != "dumb":
		// NO_COLOR forbids colour, not bold or reverse video.
		r.SetColorProfile(termenv.ANSI)
	}
	opts.Styles = top.NewStyles(r, colour)
	opts.Source, opts.Context = src, ctx
	p := tea.NewProgram(top.New(opts), tea.WithAltScreen(), tea.WithContext(ctx), tea.WithOutput(stdout))
	_, err := p.Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil // interrupted: a normal way out
	}
	return err
}

// topOnce prints one snapshot, its rates taken over interval.
func topOnce(ctx context.Context, src top.Source, interval time.Duration, o top.ReportOptions, asJSON bool, stdout io.Writer) error {
	prev, err := src.Snapshot(ctx, o.Filter.Pushdown())
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return &exitError{code: 130, err: errors.New("interrupted")}
	case <-time.After(interval):
	}
	if u, ok := src.(interface{ Update(context.Context) }); ok {
		u.Update(ctx)
	}
	cur, err := src.Snapshot(ctx, o.Filter.Pushdown())
	if err != nil {
		return err
	}
	rep := top.BuildReport(prev, cur, o)
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	width := 160
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n >= 40 {
		width = n
	}
	fmt.Fprint(stdout, top.RenderReport(rep, width))
	return nil
}

// localNames names namespaces (from netnsDir) and workloads (from the
// cgroup v2 tree under the config's paths.cgroupfs) on this host.
func localNames(netnsDir, cfgFile string, sets []string) *kernel.Names {
	paths := kernel.Paths{}
	if overrides, err := agent.ParseSets(sets); err == nil {
		if cfg, err := config.LoadFile(cfgFile, overrides); err == nil {
			paths = agent.HostPaths(cfg)
		}
	}
	n := kernel.NewNames(paths)
	n.NetNSDir = netnsDir
	return n
}
