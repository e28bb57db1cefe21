package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/netsight/netsight/internal/termcolor"
	"github.com/netsight/netsight/probe"
)

func init() {
	c := &command{name: "probe", summary: "one-shot ICMP/TCP probes: loss and RTT per target, ping/mtr style", order: 30,
		usage: `Usage: netsight probe [flags] TARGET[:PORT]...

Sends --count probes to each target, every --interval, and prints loss and
RTT (min/p50/avg/p90/p99/max) per target. A TARGET is an IP address or a
name; a TARGET:PORT (or --tcp) probes a TCP handshake instead of an ICMP echo.
IPv6 with a port: [2001:db8::1]:443.

ICMP uses an unprivileged ping socket when net.ipv4.ping_group_range allows
it, else a raw socket (root or CAP_NET_RAW). TCP probes need no privilege;
their outcomes are distinct: ok, refused (the port answered RST), timeout,
unreachable. A retransmitted SYN counts as a lost packet, so "sent" may
exceed --count for TCP. A target that never answers shows 100% loss and no
RTT (null in JSON), never 0 ms.

Exit status: 0 when every target answered at least once with success,
1 otherwise (including refused ports), 2 on usage errors.`,
		examples: `  netsight probe 10.0.0.1
  netsight probe --count 100 --interval 10ms 10.0.0.1 10.0.0.2
  netsight probe --tcp --count 10 api.internal:443 db.internal:5432
  netsight probe --size 1472 --df 10.0.0.1          # path MTU 1500 check
  netsight probe --json --count 20 10.0.0.1 | jq .loss_ratio`}
	c.run = func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := newFlagSet(c, stderr)
		count := fs.Int("count", 5, "probes per target")
		interval := fs.Duration("interval", time.Second, "time between probes to one target (min 10ms)")
		timeout := fs.Duration("timeout", probe.DefaultTimeout, "how long a probe waits for its answer")
		size := fs.Int("size", probe.DefaultSize, fmt.Sprintf("ICMP payload `bytes` (%d..%d), as ping -s", probe.MinSize, probe.MaxSize))
		tcp := fs.Bool("tcp", false, "probe TCP handshakes (every TARGET needs a :PORT)")
		df := fs.Bool("df", false, "set don't-fragment on ICMP probes")
		jsonOut := fs.Bool("json", false, "print JSON: one object for one target, an array for several")
		mode := fs.String("icmp-mode", "auto", "ICMP socket: auto, datagram or raw")
		if err := parseFlags(fs, args, stdout); err != nil {
			return err
		}
		switch {
		case fs.NArg() == 0:
			return fmt.Errorf("%w: no TARGET given", errUsage)
		case *count < 1 || *count > 1_000_000:
			return fmt.Errorf("%w: --count must be 1 to 1000000, got %d", errUsage, *count)
		case *interval < probe.MinInterval || *interval > probe.MaxInterval:
			return fmt.Errorf("%w: --interval must be between %s and %s, got %s", errUsage, probe.MinInterval, probe.MaxInterval, *interval)
		case *timeout <= 0 || *timeout > time.Minute:
			return fmt.Errorf("%w: --timeout must be between 0 and 1m, got %s", errUsage, *timeout)
		case *size < probe.MinSize || *size > probe.MaxSize:
			return fmt.Errorf("%w: --size must be %d to %d, got %d", errUsage, probe.MinSize, probe.MaxSize, *size)
		}
		var targets []probe.Target
		for _, a := range fs.Args() {
			t, err := parseProbeTarget(a, *tcp)
			if err != nil {
				return fmt.Errorf("%w: %v", errUsage, err)
			}
			if t.Protocol == probe.ICMP {
				t.Size, t.DF = *size, *df
			}
			t.Interval, t.Timeout = *interval, *timeout
			targets = append(targets, t)
		}
		return runProbe(ctx, targets, *count, probe.ICMPMode(*mode), *jsonOut, stdout)
	}
	register(c)
}

// parseProbeTarget parses TARGET[:PORT]. A port selects TCP; tcp requires one.
func parseProbeTarget(s string, tcp bool) (probe.Target, error) {
	host, portStr := s, ""
	if a, err := netip.ParseAddr(s); err == nil {
		host = a.String() // a bare IPv6 address: its colons are no port
	} else if h, p, err := net.SplitHostPort(s); err == nil {
		host, portStr = h, p
	} else if strings.Contains(s, "[") || strings.Count(s, ":") > 1 {
		return probe.Target{}, fmt.Errorf("target %q: %v", s, err)
	}
	if host == "" {
		return probe.Target{}, fmt.Errorf("target %q: empty host", s)
	}
	t := probe.Target{Name: s, Host: host, Protocol: probe.ICMP}
	if portStr != "" {
		p, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil || p == 0 {
			return probe.Target{}, fmt.Errorf("target %q: port must be 1..65535", s)
		}
		t.Protocol, t.Port = probe.TCP, uint16(p)
	} else if tcp {
		return probe.Target{}, fmt.Errorf("target %q: --tcp needs TARGET:PORT", s)
	}
	return t, nil
}

// probeJSON is the JSON form of one target's summary.
type probeJSON struct {
	Target      string   `json:"target"`
	Protocol    string   `json:"protocol"`
	Address     string   `json:"address,omitempty"`
	Sent        int64    `json:"sent"`
	Received    int64    `json:"received"`
	LossRatio   float64  `json:"loss_ratio"`
	OK          int64    `json:"ok"`
	Refused     int64    `json:"refused"`
	Timeouts    int64    `json:"timeouts"`
	Unreachable int64    `json:"unreachable"`
	Errors      int64    `json:"errors"`
	RTT         *rttJSON `json:"rtt_seconds"`
	Error       string   `json:"error,omitempty"`
}

type rttJSON struct {
	Min float64 `json:"min"`
	P50 float64 `json:"p50"`
	Avg float64 `json:"avg"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func runProbe(ctx context.Context, targets []probe.Target, count int, mode probe.ICMPMode, jsonOut bool, stdout io.Writer) error {
	sums := make([]*probe.Summary, len(targets))
	firstErr := make([]error, len(targets))
	for i := range sums {
		sums[i] = &probe.Summary{}
	}
	var mu sync.Mutex
	lines := !jsonOut // one line per probe, ping style
	paint := termcolor.For(stdout)
	seq := make([]int, len(targets))
	eng, err := probe.New(targets, probe.Options{
		ICMPMode: mode, Count: count, NoSpread: true,
		OnResult: func(r probe.Result) {
			mu.Lock()
			defer mu.Unlock()
			sums[r.Target].Add(r)
			if r.Err != nil && firstErr[r.Target] == nil && r.Outcome != probe.Timeout {
				firstErr[r.Target] = r.Err
			}
			if lines {
				seq[r.Target]++
				fmt.Fprintln(stdout, probeLine(paint, targets[r.Target], r, seq[r.Target]))
			}
		},
	})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := eng.Run(ctx); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	out := make([]probeJSON, len(targets))
	failed := false
	for i, t := range targets {
		out[i] = summaryJSON(t, eng.Addr(i), sums[i], firstErr[i])
		if sums[i].Outcomes[probe.OK] == 0 {
			failed = true
		}
	}
	if jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		var v any = out
		if len(out) == 1 {
			v = out[0]
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(stdout)
		printProbeTable(stdout, paint, out)
	}
	if ctx.Err() != nil {
		return &exitError{code: 130, err: errors.New("interrupted")}
	}
	if failed {
		return &exitError{code: 1}
	}
	return nil
}

func summaryJSON(t probe.Target, addr netip.Addr, s *probe.Summary, firstErr error) probeJSON {
	j := probeJSON{Target: t.Name, Protocol: string(t.Protocol), Sent: s.Sent, Received: s.Received,
		OK: s.Outcomes[probe.OK], Refused: s.Outcomes[probe.Refused], Timeouts: s.Outcomes[probe.Timeout],
		Unreachable: s.Outcomes[probe.Unreachable], Errors: s.Outcomes[probe.Error]}
	if addr.IsValid() {
		j.Address = addr.String()
	}
	if loss, ok := s.Loss(); ok {
		j.LossRatio = loss
	} else {
		j.LossRatio = 1
	}
	if firstErr != nil {
		j.Error = firstErr.Error()
	}
	if len(s.RTTs) > 0 {
		q := func(p float64) float64 { d, _ := s.Quantile(p); return d.Seconds() }
		avg, _ := s.RTTAvg()
		j.RTT = &rttJSON{Min: s.RTTMin.Seconds(), P50: q(0.5), Avg: avg.Seconds(), P90: q(0.9), P99: q(0.99), Max: s.RTTMax.Seconds()}
	}
	return j
}

// probeLine is one probe's line: "127.0.0.1: probe 1 ok rtt=0.119 ms", the
// name and the address it resolved to when they differ
// ("db.internal:5432 (10.0.0.7): probe 3 refused").
func probeLine(p termcolor.Painter, t probe.Target, r probe.Result, seq int) string {
	who := t.Name
	if r.Addr.IsValid() && r.Addr.String() != t.Host {
		who += " (" + r.Addr.String() + ")"
	}
	outcome := r.Outcome.String()
	if r.Outcome == probe.OK {
		outcome = p.Paint(termcolor.OK, outcome)
	} else {
		outcome = p.Paint(termcolor.Fail, outcome)
	}
	line := fmt.Sprintf("%s: probe %d %s", who, seq, outcome)
	if r.HasRTT {
		line += fmt.Sprintf(" rtt=%.3f ms", r.RTT.Seconds()*1e3)
	}
	if r.Err != nil && r.Outcome != probe.OK {
		line += ": " + r.Err.Error()
	}
	return line
}

// printProbeTable prints the summary table; on a terminal a target that
// never succeeded is red (a refused port too: it answers, so its loss is 0%,
// but the probe failed) and one with loss yellow.
func printProbeTable(w io.Writer, p termcolor.Painter, rows []probeJSON) {
	var buf strings.Builder
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "TARGET\tPROTO\tSENT\tRECV\tLOSS\tOK\tREFUSED\tTIMEOUT\tMIN ms\tP50 ms\tAVG ms\tP90 ms\tP99 ms\tMAX ms\t")
	ms := func(v float64) string { return strconv.FormatFloat(v*1e3, 'f', 3, 64) }
	for _, r := range rows {
		rtt := "-\t-\t-\t-\t-\t-"
		if r.RTT != nil {
			rtt = strings.Join([]string{ms(r.RTT.Min), ms(r.RTT.P50), ms(r.RTT.Avg), ms(r.RTT.P90), ms(r.RTT.P99), ms(r.RTT.Max)}, "\t")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.1f%%\t%d\t%d\t%d\t%s\t\n", r.Target, r.Protocol, r.Sent, r.Received, r.LossRatio*100, r.OK, r.Refused, r.Timeouts, rtt)
	}
	_ = tw.Flush()
	// Colour whole lines after alignment: escape codes inside cells would
	// count as width.
	for i, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		if i > 0 {
			switch r := rows[i-1]; {
			case r.OK == 0:
				line = p.Paint(termcolor.Fail, line)
			case r.OK < r.Sent || r.LossRatio > 0:
				line = p.Paint(termcolor.Warn, line)
			}
		}
		fmt.Fprintln(w, line)
	}
	for _, r := range rows {
		if r.Error != "" {
			fmt.Fprintf(w, "%s: %s\n", r.Target, p.Paint(termcolor.Fail, r.Error))
		}
	}
}
