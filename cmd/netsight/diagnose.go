package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/netsight/netsight/agent"
	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/monitor/health"
)

// Exit codes of `netsight diagnose`.
const (
	diagnoseHealthy      = 0
	diagnoseDegraded     = 1
	diagnoseInsufficient = 2
	diagnoseError        = 3
)

func init() {
	c := &command{name: "diagnose", summary: "say whether the network is healthy and, if not, who is to blame", order: 2,
		usage: `Usage: netsight diagnose [flags]

Prints the health verdict of every monitor (or one, --monitor): healthy,
path_degraded, remote_degraded, remote_application, local_application,
host_conntrack, host_stack, cloud_nic_limit or insufficient_data, with a
sentence to act on and the numbers behind it (docs/health.md).

With --agent it asks a running agent (GET /api/v1/health). Without, it runs
the collectors itself for --for (as netsight run would, without the store
and on a loopback port of its own) and judges that span.

Exit code: 0 healthy, 1 degraded, 2 insufficient data, 3 error.`,
		examples: `  sudo netsight diagnose
  sudo netsight diagnose --for 1m --monitor to-db
  netsight diagnose --agent http://127.0.0.1:19977 --json`}
	c.run = func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := newFlagSet(c, stderr)
		span := fs.Duration("for", 30*time.Second, "how long to watch when running the collectors itself (at least 5s)")
		mon := fs.String("monitor", "", "only this monitor `name`")
		asJSON := fs.Bool("json", false, "print the API's JSON")
		agentURL := fs.String("agent", "", "ask the running agent at this base `URL` instead of running the collectors")
		cfgFile := fs.String("config", "", "YAML config `file` when running the collectors (default "+config.DefaultPath+" if it exists)")
		var sets stringList
		fs.Var(&sets, "set", "set any config field when running the collectors: `path=value` (repeatable)")
		if err := parseFlags(fs, args, stdout); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return &exitError{code: diagnoseError, err: fmt.Errorf("%v (run 'netsight diagnose --help')", err)}
		}
		var (
			body []byte
			err  error
		)
		if *agentURL != "" {
			body, err = fetchHealth(ctx, *agentURL, *mon)
		} else {
			body, err = diagnoseLocally(ctx, *span, *mon, *cfgFile, sets, stderr)
		}
		if err != nil {
			return &exitError{code: diagnoseError, err: err}
		}
		var rep health.Report
		if err := json.Unmarshal(body, &rep); err != nil {
			return &exitError{code: diagnoseError, err: fmt.Errorf("decode health report: %w", err)}
		}
		if *asJSON {
			_, _ = stdout.Write(body)
		} else {
			printReport(stdout, rep)
		}
		switch {
		case rep.Verdict.Degraded():
			return &exitError{code: diagnoseDegraded}
		case rep.Verdict == health.InsufficientData:
			return &exitError{code: diagnoseInsufficient}
		}
		return nil
	}
	register(c)
}

// fetchHealth asks an agent for its report.
func fetchHealth(ctx context.Context, base, mon string) ([]byte, error) {
	u, err := url.Parse(strings.TrimRight(base, "/") + "/api/v1/health")
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--agent %q: want a base URL such as http://127.0.0.1:19977", base)
	}
	if mon != "" {
		u.RawQuery = url.Values{"monitor": {mon}}.Encode()
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask the agent: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("read the agent's answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound && mon != "":
		return nil, fmt.Errorf("the agent has no monitor %q", mon)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, bytes.TrimSpace(body))
	}
	return body, nil
}

// diagnoseLocally runs the agent (no store, a loopback port of its own,
// monitors judged over the whole span) for span and asks it.
func diagnoseLocally(ctx context.Context, span time.Duration, mon, cfgFile string, sets []string, stderr io.Writer) ([]byte, error) {
	if span < 5*time.Second {
		return nil, fmt.Errorf("--for %v: must be at least 5s (the shortest monitor window)", span)
	}
	overrides, err := agent.ParseSets(sets)
	if err != nil {
		return nil, err
	}
	every := max(time.Second, (span / 10).Round(time.Second))
	for k, v := range map[string]string{
		"server.listen": "127.0.0.1:0", "store.enabled": "false",
		"monitors.window": min(span, 5*time.Minute).String(), "monitors.evaluate_every": every.String(),
	} {
		if _, ok := overrides[k]; !ok {
			overrides[k] = v
		}
	}
	dir, err := os.MkdirTemp("", "netsight-diagnose-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if _, ok := overrides["data_dir"]; !ok {
		overrides["data_dir"] = dir
	}
	addr := make(chan string, 1)
	var logs bytes.Buffer
	opts := agent.Options{ConfigFile: cfgFile, Overrides: overrides, LogOutput: &logs,
		OnListen: func(a string) { addr <- a }}
	if opts.ConfigFile == "" {
		opts.ConfigFile, opts.ConfigOptional = config.DefaultPath, true
	}
	a, err := agent.New(opts)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	var base string
	select {
	case base = <-addr:
	case err := <-done:
		done <- err
		return nil, fmt.Errorf("start the collectors: %w\n%s", err, logs.String())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	fmt.Fprintf(stderr, "watching for %v (monitors evaluated every %v)...\n", span, every)
	select {
	case <-time.After(span):
	case err := <-done:
		done <- err
		return nil, fmt.Errorf("the collectors stopped: %v\n%s", err, logs.String())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return fetchHealth(ctx, "http://"+base, mon)
}

// printReport writes the report for a person.
func printReport(w io.Writer, rep health.Report) {
	fmt.Fprintf(w, "verdict: %s (worst of %d monitors)\n", rep.Verdict, len(rep.Monitors))
	for _, m := range rep.Monitors {
		fmt.Fprintf(w, "\n%s: %s since %s, confidence %s\n", m.Name, m.Verdict, m.Since.Local().Format(time.TimeOnly), m.Confidence)
		fmt.Fprintf(w, "  %s\n", m.Summary)
		if m.Scope != "" {
			fmt.Fprintf(w, "  scope: %s\n", m.Scope)
		}
		if m.Culprit != "" {
			fmt.Fprintf(w, "  culprit: %s\n", m.Culprit)
		}
		if len(m.Evidence) > 0 {
			fmt.Fprintf(w, "  evidence: %s\n", evidenceLine(m.Evidence))
		}
		for _, f := range m.Findings {
			fmt.Fprintf(w, "  also (%s): %s\n", f.Verdict, f.Summary)
		}
	}
}

func evidenceLine(ev health.Evidence) string {
	keys := make([]string, 0, len(ev))
	for k := range ev {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		var v string
		switch x := ev[k].(type) {
		case float64:
			v = strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", x), "0"), ".")
		case map[string]any:
			v = fmt.Sprintf("{%d entries}", len(x))
		default:
			v = fmt.Sprint(x)
		}
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, " ")
}
