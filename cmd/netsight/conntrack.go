package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netsight/netsight/collector"
	ctcollector "github.com/netsight/netsight/collector/conntrack"
	"github.com/netsight/netsight/collector/nic"
	"github.com/netsight/netsight/internal/kernel"
	"github.com/netsight/netsight/internal/termcolor"
	"github.com/netsight/netsight/monitor"
)

// conntrackReport is `netsight conntrack --json`.
type conntrackReport struct {
	// Loaded is false when nf_conntrack is not loaded in this kernel.
	Loaded  bool    `json:"conntrack_loaded"`
	Entries uint64  `json:"entries"`
	Max     uint64  `json:"max"`
	Usage   float64 `json:"usage_ratio"`
	// GrowthPerSecond and ExhaustionSeconds come from two readings --sample
	// apart; ExhaustionSeconds is null when the table is not growing.
	GrowthPerSecond   *float64 `json:"growth_per_second,omitempty"`
	ExhaustionSeconds *float64 `json:"exhaustion_seconds"`
	// ForecastBasis says what grew: "non_time_wait_entries" (TIME_WAIT
	// entries, churn that expires by itself, left out: needs the per-state
	// dump at both readings) or "all_entries" (no dump; ForecastNote says why).
	ForecastBasis string                   `json:"forecast_basis,omitempty"`
	ForecastNote  string                   `json:"forecast_note,omitempty"`
	Dump          ctcollector.DumpResult   `json:"dump"`
	Stats         map[string]uint64        `json:"stats,omitempty"`
	Tracked       uint64                   `json:"tracked_connections"`
	Interfaces    []conntrackNICAllowances `json:"interfaces,omitempty"`
	// Present only when some interface reports conntrack_allowance_available (ENA).
	AllowanceAvailable *uint64  `json:"allowance_available,omitempty"`
	SupportedTotal     *uint64  `json:"supported_total,omitempty"`
	Utilisation        *float64 `json:"utilisation_ratio,omitempty"`
	Errors             []string `json:"errors,omitempty"`
}

type conntrackNICAllowances struct {
	Device    string            `json:"device"`
	Driver    string            `json:"driver"`
	Available *uint64           `json:"allowance_available,omitempty"`
	Exceeded  map[string]uint64 `json:"allowance_exceeded,omitempty"`
}

func init() {
	c := &command{name: "conntrack", summary: "connection-tracking table, NIC allowances and capacity, once", order: 30,
		usage: `Usage: netsight conntrack [flags]

Reports, for the network namespace it runs in:
  - the conntrack table: entries, limit (nf_conntrack_max), usage, the
    per-protocol per-state breakdown (ctnetlink dump, bounded by
    --max-dump-entries), the kernel's per-CPU statistics summed, and the time
    until the table is full at the growth rate measured over --sample;
  - cloud NIC allowances per interface where the driver reports them (AWS ENA
    >= 2.8.1): conntrack_allowance_available and the *_allowance_exceeded counts;
  - tracked connections counted the way 'ss -A tcp,udp state all | awk ...'
    does in the EC2 connection-tracking guide (wildcard and 127.0.0.1 peers
    excluded), and from them the total connections supported
    (allowance available + tracked) and the utilisation.

Needs CAP_NET_ADMIN for the per-state dump and the NIC statistics; the rest
works unprivileged. Run it inside a namespace with 'ip netns exec NS'.`,
		examples: `  sudo netsight conntrack
  sudo netsight conntrack --json | jq '{entries, max, tracked_connections, supported_total}'
  sudo ip netns exec blue netsight conntrack --sample 5s`}
	c.run = func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := newFlagSet(c, stderr)
		asJSON := fs.Bool("json", false, "print JSON instead of text")
		sample := fs.Duration("sample", time.Second, "measure the growth rate over this `duration` (0: no forecast)")
		maxDump := fs.Int("max-dump-entries", ctcollector.DefaultConfig().MaxDumpEntries, "skip (or sample) the per-state dump above this many `entries`; 0 disables it")
		overLimit := fs.String("over-limit", ctcollector.OverLimitSkip, "above --max-dump-entries: `skip` or sample")
		if err := parseFlags(fs, args, stdout); err != nil {
			return err
		}
		if *sample < 0 || *sample > time.Hour {
			return fmt.Errorf("%w: --sample must be between 0 and 1h, got %s", errUsage, *sample)
		}
		if *maxDump < 0 {
			return fmt.Errorf("%w: --max-dump-entries must not be negative", errUsage)
		}
		if *overLimit != ctcollector.OverLimitSkip && *overLimit != ctcollector.OverLimitSample {
			return fmt.Errorf("%w: --over-limit must be skip or sample, got %q", errUsage, *overLimit)
		}
		rep, err := buildConntrackReport(ctx, *sample, *maxDump, *overLimit, nil)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(rep)
		}
		renderConntrack(stdout, termcolor.For(stdout), rep)
		return nil
	}
	register(c)
}

// buildConntrackReport reads everything on the calling goroutine (no
// goroutines: inside a locked, namespace-switched thread it reports that
// namespace).
// nicSource nil means the real ethtool ioctl.
func buildConntrackReport(ctx context.Context, sample time.Duration, maxDump int, overLimit string,
	nicSource func() (kernel.NICSource, error)) (*conntrackReport, error) {
	rep := &conntrackReport{Loaded: true}
	r := ctcollector.Reader{MaxDumpEntries: maxDump, OverLimit: overLimit}
	count, max, err := r.CountAndMax()
	switch {
	case errors.Is(err, kernel.ErrNoConntrack):
		rep.Loaded = false
	case err != nil:
		return nil, err
	}
	if rep.Loaded {
		dump := func(count uint64) (ctcollector.DumpResult, error) {
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			return r.DumpStates(dctx, count)
		}
		var first ctcollector.DumpResult
		var firstErr error
		t0 := time.Now()
		if sample > 0 && maxDump > 0 {
			first, firstErr = dump(count)
		}
		count0 := count
		if sample > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(sample):
			}
			if count, max, err = r.CountAndMax(); err != nil {
				return nil, err
			}
		}
		rep.Entries, rep.Max = count, max
		if max > 0 {
			rep.Usage = float64(count) / float64(max)
		}
		if st, err := r.Proc.CPUStats(); err != nil {
			rep.Errors = append(rep.Errors, err.Error())
		} else {
			var acc ctcollector.CPUStats
			totals, order := acc.Observe(st)
			rep.Stats = map[string]uint64{}
			for _, k := range order {
				rep.Stats[k] = totals[k]
			}
		}
		res, err := dump(count)
		if err != nil {
			res = ctcollector.DumpResult{Mode: "unavailable"}
			msg := err.Error()
			if errors.Is(err, unix.EPERM) {
				msg = "per-state dump needs CAP_NET_ADMIN: " + msg
			}
			rep.Errors = append(rep.Errors, msg)
		}
		if sample > 0 {
			conntrackForecast(rep, t0, count0, first, firstErr, time.Now(), count, res, err)
		}
		sort.Slice(res.States, func(i, j int) bool { return res.States[i].Entries > res.States[j].Entries })
		rep.Dump = res
	}

	// One-shot: sock_diag needs no BPF load (parsing the kernel's BTF costs
	// more than the dump it would save); the agent amortises it instead.
	sc := kernel.SocketCounter{Backend: kernel.SocketBackendSockDiag}
	socks, err := sc.Count(ctx)
	sc.Close()
	if err != nil {
		rep.Errors = append(rep.Errors, err.Error())
	}
	rep.Tracked = socks.Tracked

	nc, err := nic.NewWithSource(nic.DefaultConfig(), collector.Deps{}, nicSource)
	if err != nil {
		return nil, err
	}
	devs, err := nc.Read()
	if err != nil {
		rep.Errors = append(rep.Errors, err.Error())
	}
	var avail uint64
	var haveAvail bool
	for _, d := range devs {
		if !d.HasAvailable && len(d.Exceeded) == 0 {
			continue
		}
		a := conntrackNICAllowances{Device: d.Name, Driver: d.Driver, Exceeded: d.Exceeded}
		if d.HasAvailable {
			v := d.Available
			a.Available = &v
			avail += v
			haveAvail = true
		}
		rep.Interfaces = append(rep.Interfaces, a)
	}
	if haveAvail {
		capa := monitor.NICCapacity(avail, rep.Tracked)
		rep.AllowanceAvailable, rep.SupportedTotal = &capa.Available, &capa.Supported
		if capa.Supported > 0 {
			rep.Utilisation = &capa.Utilisation
		}
	}
	return rep, nil
}

// conntrackForecast fills the growth rate and time to full from two
// readings. TIME_WAIT entries are churn that expires by itself, not a leak:
// with a usable per-state dump at both readings the growth is that of the
// other entries, else of all entries (and ForecastNote says why).
func conntrackForecast(rep *conntrackReport, t0 time.Time, count0 uint64, d0 ctcollector.DumpResult, err0 error,
	t1 time.Time, count1 uint64, d1 ctcollector.DumpResult, err1 error) {
	f := monitor.Forecast{Window: 2 * t1.Sub(t0)}
	usable := func(d ctcollector.DumpResult, err error) bool {
		return err == nil && (d.Mode == "full" || d.Mode == "sampled")
	}
	if usable(d0, err0) && usable(d1, err1) {
		rep.ForecastBasis = "non_time_wait_entries"
		f.Add(t0, nonTimeWait(count0, d0))
		f.Add(t1, nonTimeWait(count1, d1))
	} else {
		rep.ForecastBasis = "all_entries"
		switch {
		case d1.Mode == "disabled":
			rep.ForecastNote = "per-state dump disabled (--max-dump-entries 0): TIME_WAIT entries not excluded"
		case d1.Mode == "skipped":
			rep.ForecastNote = "per-state dump skipped (more entries than --max-dump-entries): TIME_WAIT entries not excluded"
		default:
			rep.ForecastNote = "per-state dump unavailable: TIME_WAIT entries not excluded"
		}
		f.Add(t0, count0)
		f.Add(t1, count1)
	}
	if rate, ok := f.Rate(); ok {
		rep.GrowthPerSecond = &rate
	}
	if ex := f.Exhaustion(count1, rep.Max); !math.IsInf(ex, 0) {
		rep.ExhaustionSeconds = &ex
	}
}

// nonTimeWait is count less the TCP TIME_WAIT entries of the dump.
func nonTimeWait(count uint64, d ctcollector.DumpResult) uint64 {
	var tw float64
	for _, s := range d.States {
		if s.Protocol == "tcp" && s.State == "time_wait" {
			tw += s.Entries
		}
	}
	if tw >= float64(count) {
		return 0
	}
	return count - uint64(math.Round(tw))
}

func renderConntrack(w io.Writer, p termcolor.Painter, r *conntrackReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Connection tracking table (this network namespace)")
	if !r.Loaded {
		fmt.Fprintln(tw, "  nf_conntrack is not loaded: nothing is tracked here.")
	} else {
		usage := termcolor.None
		switch {
		case r.Usage >= 0.9:
			usage = termcolor.Fail
		case r.Usage >= 0.7:
			usage = termcolor.Warn
		}
		// Colour only a line's last cell: escape codes in an aligned
		// cell would count as width.
		fmt.Fprintf(tw, "  entries\t%s\n", p.Paint(usage, fmt.Sprintf("%d of %d (%.1f%% used)", r.Entries, r.Max, 100*r.Usage)))
		what := "entries/s"
		if r.ForecastBasis == "non_time_wait_entries" {
			what = "non-TIME_WAIT entries/s"
		}
		switch {
		case r.ExhaustionSeconds != nil && *r.ExhaustionSeconds == 0:
			fmt.Fprintf(tw, "  forecast\t%s\n", p.Paint(termcolor.Fail, "FULL: new connections are being dropped"))
		case r.ExhaustionSeconds != nil:
			l := termcolor.Warn
			if *r.ExhaustionSeconds < 3600 {
				l = termcolor.Fail
			}
			fmt.Fprintf(tw, "  forecast\t%s\n", p.Paint(l, fmt.Sprintf("full in %s at +%.1f %s", humanDuration(*r.ExhaustionSeconds), *r.GrowthPerSecond, what)))
		case r.GrowthPerSecond != nil:
			fmt.Fprintf(tw, "  forecast\tnot growing (%+.1f %s)\n", *r.GrowthPerSecond, what)
		}
		switch {
		case r.GrowthPerSecond == nil:
		case r.ForecastBasis == "non_time_wait_entries":
			fmt.Fprintln(tw, "  \tTIME_WAIT entries excluded: they expire by themselves (churn, not a leak)")
		case r.ForecastNote != "":
			fmt.Fprintf(tw, "  \tfrom all entries: %s\n", r.ForecastNote)
		}
		switch r.Dump.Mode {
		case "skipped":
			fmt.Fprintf(tw, "  by state\tskipped: more entries than --max-dump-entries\n")
		case "disabled":
		case "unavailable":
			fmt.Fprintln(tw, "  by state\tunavailable (see warning below)")
		default:
			note := ""
			if r.Dump.Mode == "sampled" {
				note = fmt.Sprintf(" (estimated from a sample of %d)", r.Dump.Seen)
			}
			if len(r.Dump.States) == 0 {
				fmt.Fprintln(tw, "  by state\tempty")
			} else {
				fmt.Fprintf(tw, "  by state%s\n", note)
			}
			for i, s := range r.Dump.States {
				if i == 12 {
					fmt.Fprintf(tw, "    ... %d more\n", len(r.Dump.States)-i)
					break
				}
				fmt.Fprintf(tw, "    %s %s\t%s\t%.0f\n", s.Family, s.Protocol, s.State, s.Entries)
			}
		}
		if r.Stats != nil {
			var parts []string
			for _, k := range []string{"insert_failed", "drop", "early_drop", "invalid", "search_restart"} {
				if v, ok := r.Stats[k]; ok {
					parts = append(parts, fmt.Sprintf("%s %d", k, v))
				}
			}
			fmt.Fprintf(tw, "  kernel stats\t%s\n", strings.Join(parts, "  "))
		}
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "Cloud NIC allowances")
	if len(r.Interfaces) == 0 {
		fmt.Fprintln(tw, "  none: no interface reports allowance counters (ENA driver >= 2.8.1 on EC2).")
	}
	for _, a := range r.Interfaces {
		avail := "n/a (driver < 2.8.1)"
		if a.Available != nil {
			avail = fmt.Sprint(*a.Available)
		}
		var ex []string
		for _, k := range []string{"conntrack_allowance_exceeded", "bw_in_allowance_exceeded", "bw_out_allowance_exceeded", "pps_allowance_exceeded", "linklocal_allowance_exceeded"} {
			if v, ok := a.Exceeded[k]; ok {
				ex = append(ex, fmt.Sprintf("%s %d", strings.TrimSuffix(k, "_allowance_exceeded"), v))
			}
		}
		fmt.Fprintf(tw, "  %s (%s)\tconntrack available %s\texceeded: %s\n", a.Device, a.Driver, avail, strings.Join(ex, ", "))
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "Tracked connections\t%d\t(TCP+UDP, any state, excluding wildcard and 127.0.0.1 peers)\n", r.Tracked)
	if r.SupportedTotal != nil {
		fmt.Fprintf(tw, "Total connections supported\t%d\t(allowance available %d + tracked %d)\n", *r.SupportedTotal, *r.AllowanceAvailable, r.Tracked)
		if r.Utilisation != nil {
			fmt.Fprintf(tw, "Utilisation\t%.2f%%\n", 100**r.Utilisation)
		}
	}
	for _, e := range r.Errors {
		fmt.Fprintf(tw, "%s: %s\n", p.Paint(termcolor.Warn, "warning"), e)
	}
	tw.Flush()
}

func humanDuration(sec float64) string {
	if sec > 100*365*86400 {
		return "over a century"
	}
	d := time.Duration(sec * float64(time.Second))
	if d >= 48*time.Hour {
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	}
	return d.Round(time.Second).String()
}
