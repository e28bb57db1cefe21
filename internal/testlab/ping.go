package testlab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// PingOptions bound a ping run. Zero values take the defaults noted.
type PingOptions struct {
	Count    int           // echo requests to send (default 10)
	Interval time.Duration // between requests (default 200ms; below 200ms needs root, minimum 2ms)
	Wait     time.Duration // how long to wait for the last reply (default 1s)
	Size     int           // ICMP payload bytes (default 56)
}

// PingReply is one echo reply.
type PingReply struct {
	Seq int
	RTT time.Duration
	Dup bool
}

// PingResult is the parsed output of one ping run.
type PingResult struct {
	Transmitted int
	Received    int // unique replies, as counted by ping
	Replies     []PingReply
}

// RTTs returns the round-trip times of the non-duplicate replies, in arrival
// order.
func (r *PingResult) RTTs() []time.Duration {
	out := make([]time.Duration, 0, len(r.Replies))
	for _, p := range r.Replies {
		if !p.Dup {
			out = append(out, p.RTT)
		}
	}
	return out
}

// MedianRTT is the median round-trip time, 0 without replies.
func (r *PingResult) MedianRTT() time.Duration { return Median(r.RTTs()) }

// ReplyRatio is Received/Transmitted, 0 when nothing was sent.
func (r *PingResult) ReplyRatio() float64 {
	if r.Transmitted == 0 {
		return 0
	}
	return float64(r.Received) / float64(r.Transmitted)
}

// Median returns the median of ds (mean of the two middle values for an even
// count), 0 for none.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Ping runs the ping CLI inside the namespace (or the host for nil) against
// addr, bounded by opts (ping's own -w deadline) and ctx. Lost replies are not
// an error; an unreachable address is not either (Received is 0).
func (ns *NetNS) Ping(ctx context.Context, addr netip.Addr, opts PingOptions) (*PingResult, error) {
	if opts.Count <= 0 {
		opts.Count = 10
	}
	if opts.Interval <= 0 {
		opts.Interval = 200 * time.Millisecond
	}
	if opts.Interval < 2*time.Millisecond {
		opts.Interval = 2 * time.Millisecond
	}
	if opts.Wait <= 0 {
		opts.Wait = time.Second
	}
	deadline := time.Duration(opts.Count)*opts.Interval + opts.Wait + time.Second
	fam := "-4"
	if addr.Is6() && !addr.Is4In6() {
		fam = "-6"
	}
	args := []string{fam, "-n",
		"-c", strconv.Itoa(opts.Count),
		"-i", strconv.FormatFloat(opts.Interval.Seconds(), 'f', 3, 64),
		"-W", strconv.FormatFloat(opts.Wait.Seconds(), 'f', 3, 64),
	}
	if opts.Size > 0 {
		args = append(args, "-s", strconv.Itoa(opts.Size))
	}
	args = append(args, addr.Unmap().String())
	ctx, cancel := context.WithTimeout(ctx, deadline+5*time.Second)
	defer cancel()
	var out, stderr bytes.Buffer
	cmd := ns.Command(ctx, "ping", args...)
	cmd.Stdout = &out
	cmd.Stderr = &stderr
	runErr := cmd.Run()
	res, perr := ParsePing(out.Bytes())
	if perr != nil {
		return nil, fmt.Errorf("ping %s from netns %s: %w (run: %v; stderr: %s)", addr, ns, perr, runErr, strings.TrimSpace(stderr.String()))
	}
	// ping exits 1 when some replies are missing, which is not an error here.
	var ee *exec.ExitError
	if runErr != nil && !(errors.As(runErr, &ee) && ee.ExitCode() == 1) {
		return res, fmt.Errorf("ping %s from netns %s: %w: %s", addr, ns, runErr, strings.TrimSpace(stderr.String()))
	}
	return res, nil
}

var (
	pingReplyRE   = regexp.MustCompile(`icmp_seq=(\d+) .*time[=<]([0-9.]+) ?(ms|s|us|µs)`)
	pingSummaryRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) (?:packets )?received`)
)

// ParsePing parses the output of iputils (or busybox) ping: one line per
// reply and the "N packets transmitted, M received" summary, which must be
// present.
func ParsePing(out []byte) (*PingResult, error) {
	res := &PingResult{}
	haveSummary := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := pingReplyRE.FindStringSubmatch(line); m != nil {
			seq, err := strconv.Atoi(m[1])
			if err != nil {
				return nil, fmt.Errorf("parse ping reply %q: %w", line, err)
			}
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil || v < 0 || v > 1e9 {
				return nil, fmt.Errorf("parse ping reply %q: bad time", line)
			}
			unit := map[string]float64{"s": 1e9, "ms": 1e6, "us": 1e3, "µs": 1e3}[m[3]]
			res.Replies = append(res.Replies, PingReply{
				Seq: seq,
				RTT: time.Duration(v * unit),
				Dup: strings.Contains(line, "DUP!"),
			})
			continue
		}
		if m := pingSummaryRE.FindStringSubmatch(line); m != nil {
			tx, err1 := strconv.Atoi(m[1])
			rx, err2 := strconv.Atoi(m[2])
			if err := errors.Join(err1, err2); err != nil {
				return nil, fmt.Errorf("parse ping summary %q: %w", line, err)
			}
			res.Transmitted, res.Received = tx, rx
			haveSummary = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read ping output: %w", err)
	}
	if !haveSummary {
		return nil, errors.New("parse ping output: no summary line")
	}
	return res, nil
}
