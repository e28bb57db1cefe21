package testlab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Iperf3Options configure an iperf3 client run. Zero values take iperf3's
// defaults unless noted.
type Iperf3Options struct {
	Duration time.Duration // -t, rounded up to whole seconds (default 2s)
	Bytes    int64         // -n: send this many bytes instead of running for Duration
	Reverse  bool          // -R: the server sends
	Parallel int           // -P: parallel streams
	MSS      int           // -M: TCP maximum segment size
	Bitrate  string        // -b, iperf3 syntax ("200M"); default unlimited for TCP
	CPort    int           // --cport: client data port(s) start here
	UDP      bool          // -u
	// Timeout bounds the whole run (default Duration + 20s).
	Timeout time.Duration
	// ExtraArgs are appended to the client command line.
	ExtraArgs []string
}

// Iperf3Stream is one data connection of a run, seen from the client.
type Iperf3Stream struct {
	Socket          int
	Local, Remote   netip.AddrPort
	SentBytes       uint64
	ReceivedBytes   uint64
	Retransmits     int64
	MaxSndCwndBytes uint64
	MeanRTT         time.Duration
}

// Iperf3Result is the parsed JSON (-J) report of one iperf3 run.
type Iperf3Result struct {
	// SentBytes/SentBitsPerSecond are end.sum_sent, ReceivedBytes/
	// ReceivedBitsPerSecond end.sum_received. In reverse mode "sent" is what
	// the server sent.
	SentBytes             uint64
	ReceivedBytes         uint64
	SentBitsPerSecond     float64
	ReceivedBitsPerSecond float64
	// Retransmits is end.sum_sent.retransmits (TCP, from the sender).
	Retransmits int64
	Seconds     float64
	Streams     []Iperf3Stream
	// JSON is the raw report.
	JSON []byte
}

type iperfSum struct {
	Seconds       float64 `json:"seconds"`
	Bytes         uint64  `json:"bytes"`
	BitsPerSecond float64 `json:"bits_per_second"`
	Retransmits   int64   `json:"retransmits"`
}

// ParseIperf3JSON parses the report of `iperf3 -J` (client or server side).
// A report carrying an "error" is returned as an error.
func ParseIperf3JSON(data []byte) (*Iperf3Result, error) {
	var doc struct {
		Start struct {
			Connected []struct {
				Socket     int    `json:"socket"`
				LocalHost  string `json:"local_host"`
				LocalPort  uint16 `json:"local_port"`
				RemoteHost string `json:"remote_host"`
				RemotePort uint16 `json:"remote_port"`
			} `json:"connected"`
		} `json:"start"`
		End struct {
			Streams []struct {
				Sender *struct {
					Socket      int     `json:"socket"`
					Bytes       uint64  `json:"bytes"`
					Retransmits int64   `json:"retransmits"`
					MaxSndCwnd  uint64  `json:"max_snd_cwnd"`
					MeanRTT     float64 `json:"mean_rtt"`
				} `json:"sender"`
				Receiver *struct {
					Socket int    `json:"socket"`
					Bytes  uint64 `json:"bytes"`
				} `json:"receiver"`
				UDP *struct {
					Socket int    `json:"socket"`
					Bytes  uint64 `json:"bytes"`
				} `json:"udp"`
			} `json:"streams"`
			SumSent     *iperfSum `json:"sum_sent"`
			SumReceived *iperfSum `json:"sum_received"`
			Sum         *iperfSum `json:"sum"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse iperf3 json: %w", err)
	}
	if doc.Error != "" {
		return nil, fmt.Errorf("iperf3: %s", doc.Error)
	}
	res := &Iperf3Result{JSON: data}
	switch {
	case doc.End.SumSent != nil && doc.End.SumReceived != nil:
		res.SentBytes, res.SentBitsPerSecond = doc.End.SumSent.Bytes, doc.End.SumSent.BitsPerSecond
		res.ReceivedBytes, res.ReceivedBitsPerSecond = doc.End.SumReceived.Bytes, doc.End.SumReceived.BitsPerSecond
		res.Retransmits = doc.End.SumSent.Retransmits
		res.Seconds = doc.End.SumSent.Seconds
	case doc.End.Sum != nil: // UDP
		res.SentBytes, res.SentBitsPerSecond = doc.End.Sum.Bytes, doc.End.Sum.BitsPerSecond
		res.ReceivedBytes, res.ReceivedBitsPerSecond = doc.End.Sum.Bytes, doc.End.Sum.BitsPerSecond
		res.Seconds = doc.End.Sum.Seconds
	default:
		return nil, errors.New("parse iperf3 json: no end.sum_sent/sum_received")
	}
	bySocket := map[int]int{}
	for _, c := range doc.Start.Connected {
		st := Iperf3Stream{Socket: c.Socket}
		if a, err := netip.ParseAddr(c.LocalHost); err == nil {
			st.Local = netip.AddrPortFrom(a.Unmap(), c.LocalPort)
		}
		if a, err := netip.ParseAddr(c.RemoteHost); err == nil {
			st.Remote = netip.AddrPortFrom(a.Unmap(), c.RemotePort)
		}
		bySocket[c.Socket] = len(res.Streams)
		res.Streams = append(res.Streams, st)
	}
	for _, s := range doc.End.Streams {
		if s.Sender != nil {
			if i, ok := bySocket[s.Sender.Socket]; ok {
				st := &res.Streams[i]
				st.SentBytes = s.Sender.Bytes
				st.Retransmits = s.Sender.Retransmits
				st.MaxSndCwndBytes = s.Sender.MaxSndCwnd
				st.MeanRTT = time.Duration(s.Sender.MeanRTT * float64(time.Microsecond))
			}
		}
		if s.Receiver != nil {
			if i, ok := bySocket[s.Receiver.Socket]; ok {
				res.Streams[i].ReceivedBytes = s.Receiver.Bytes
			}
		}
		if s.UDP != nil {
			if i, ok := bySocket[s.UDP.Socket]; ok {
				res.Streams[i].SentBytes = s.UDP.Bytes
			}
		}
	}
	return res, nil
}

// Iperf3Server is a one-off (`iperf3 -s -1`) server running in a namespace.
type Iperf3Server struct {
	NS   *NetNS
	Port uint16
	out  bytes.Buffer
	errb bytes.Buffer
	done chan error
}

// StartIperf3Server starts `iperf3 -s -1 -J` on a free port in ns and waits
// until it listens. It serves one client run and exits; it is killed after
// timeout (default 60s) or in tb.Cleanup, whichever comes first.
func StartIperf3Server(tb testing.TB, ns *NetNS, timeout time.Duration) *Iperf3Server {
	tb.Helper()
	RequireBinary(tb, "iperf3")
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	port, err := ns.freePort()
	if err != nil {
		tb.Fatalf("testlab: iperf3 server: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	s := &Iperf3Server{NS: ns, Port: port, done: make(chan error, 1)}
	idle := max(int(timeout.Seconds()), 1)
	cmd := ns.Command(ctx, "iperf3", "-s", "-1", "-J", "-p", strconv.Itoa(int(port)),
		"--idle-timeout", strconv.Itoa(idle), "--rcv-timeout", "10000")
	cmd.Stdout, cmd.Stderr = &s.out, &s.errb
	if err := cmd.Start(); err != nil {
		cancel()
		tb.Fatalf("testlab: start iperf3 server in netns %s: %v", ns, err)
	}
	go func() { s.done <- cmd.Wait(); cancel() }()
	tb.Cleanup(func() {
		cancel()
		<-s.done
		s.done <- nil // keep Wait usable after cleanup
	})
	if err := ns.waitListening(port, 5*time.Second); err != nil {
		tb.Fatalf("testlab: iperf3 server in netns %s: %v (stderr: %s)", ns, err, strings.TrimSpace(s.errb.String()))
	}
	return s
}

// Wait waits for the server to finish its one run and returns its report.
func (s *Iperf3Server) Wait(ctx context.Context) (*Iperf3Result, error) {
	select {
	case err := <-s.done:
		s.done <- err
		res, perr := ParseIperf3JSON(s.out.Bytes())
		if perr != nil {
			return nil, fmt.Errorf("iperf3 server in netns %s: %w (exit: %v)", s.NS, perr, err)
		}
		return res, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("iperf3 server in netns %s: %w", s.NS, ctx.Err())
	}
}

// RunIperf3 runs an iperf3 client in ns against server and parses its JSON
// report. It is bounded by opts.Timeout and ctx.
func RunIperf3(ctx context.Context, ns *NetNS, server netip.AddrPort, opts Iperf3Options) (*Iperf3Result, error) {
	if opts.Duration <= 0 {
		opts.Duration = 2 * time.Second
	}
	secs := max(int(math.Ceil(opts.Duration.Seconds())), 1)
	if opts.Timeout <= 0 {
		opts.Timeout = time.Duration(secs)*time.Second + 20*time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	args := []string{"-c", server.Addr().Unmap().String(), "-p", strconv.Itoa(int(server.Port())), "-J",
		"--connect-timeout", "5000"}
	if opts.Bytes > 0 {
		args = append(args, "-n", strconv.FormatInt(opts.Bytes, 10))
	} else {
		args = append(args, "-t", strconv.Itoa(secs))
	}
	if opts.Reverse {
		args = append(args, "-R")
	}
	if opts.Parallel > 1 {
		args = append(args, "-P", strconv.Itoa(opts.Parallel))
	}
	if opts.MSS > 0 {
		args = append(args, "-M", strconv.Itoa(opts.MSS))
	}
	if opts.Bitrate != "" {
		args = append(args, "-b", opts.Bitrate)
	}
	if opts.CPort > 0 {
		args = append(args, "--cport", strconv.Itoa(opts.CPort))
	}
	if opts.UDP {
		args = append(args, "-u")
	}
	args = append(args, opts.ExtraArgs...)
	var out, errb bytes.Buffer
	cmd := ns.Command(ctx, "iperf3", args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run()
	res, err := ParseIperf3JSON(out.Bytes())
	if err != nil {
		return nil, fmt.Errorf("iperf3 client in netns %s: %w (exit: %v, stderr: %s)", ns, err, runErr, strings.TrimSpace(errb.String()))
	}
	if runErr != nil {
		return res, fmt.Errorf("iperf3 client in netns %s: %w", ns, runErr)
	}
	return res, nil
}

// Iperf3 starts a one-off server in serverNS, runs a client in clientNS
// against serverAddr and returns the client's report, failing the test on
// any error.
func Iperf3(tb testing.TB, clientNS, serverNS *NetNS, serverAddr netip.Addr, opts Iperf3Options) *Iperf3Result {
	tb.Helper()
	RequireBinary(tb, "iperf3")
	srv := StartIperf3Server(tb, serverNS, 0)
	res, err := RunIperf3(context.Background(), clientNS, netip.AddrPortFrom(serverAddr, srv.Port), opts)
	if err != nil {
		tb.Fatalf("testlab: %v", err)
	}
	return res
}

// freePort returns a TCP port that was free in the namespace a moment ago
// (on both IPv4 and IPv6).
func (ns *NetNS) freePort() (uint16, error) {
	ln, err := ns.Listen("tcp", ":0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port), nil
}

// waitListening polls the namespace's TCP tables until some socket listens
// on port. Unlike a test connection it does not disturb one-off servers.
func (ns *NetNS) waitListening(port uint16, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		err := ns.Do(func() error {
			for _, f := range []string{"/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"} {
				data, err := os.ReadFile(f)
				if err != nil {
					continue
				}
				if listensOn(data, port) {
					ok = true
					return nil
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on tcp port %d after %v", port, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// listensOn reports whether a /proc/net/tcp{,6} table has a socket in state
// LISTEN (0A) on the local port.
func listensOn(table []byte, port uint16) bool {
	want := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(bytes.NewReader(table))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 3 && f[3] == "0A" && strings.HasSuffix(f[1], want) {
			return true
		}
	}
	return false
}
