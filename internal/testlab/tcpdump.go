package testlab

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TcpdumpOptions configure NetNS.StartTcpdump. Zero values take tcpdump's
// defaults.
type TcpdumpOptions struct {
	// Snaplen is -s, the bytes kept per packet (0: tcpdump's 262144).
	Snaplen int
	// BufferKiB is -B, the kernel capture buffer in KiB (0: tcpdump's).
	BufferKiB int
	// Filter is the pcap filter expression, e.g. "tcp" ("": every packet).
	Filter string
	// Timeout bounds the whole capture: tcpdump is killed after it even if
	// Stop is never called (0: 60 s).
	Timeout time.Duration
}

// Tcpdump is a tcpdump capture running in a namespace into a pcap file.
type Tcpdump struct {
	file   string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	// drained is closed when tcpdump's stderr reaches EOF (it exited).
	drained chan struct{}
	once    sync.Once
}

// StartTcpdump runs `tcpdump -i ifname -n -U --immediate-mode -w FILE` in ns
// (nil: the host) into a file under tb.TempDir, and returns once tcpdump
// says it is listening (so no packet sent afterwards is missed). It fails
// the test if tcpdump does not start within 10 s, quoting its stderr. The
// capture is stopped in tb.Cleanup if Stop was not called.
func (ns *NetNS) StartTcpdump(tb testing.TB, ifname string, opts TcpdumpOptions) *Tcpdump {
	tb.Helper()
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	d := &Tcpdump{file: filepath.Join(tb.TempDir(), "capture.pcap"), drained: make(chan struct{})}
	args := []string{"-i", ifname, "-n", "-U", "--immediate-mode"}
	if opts.Snaplen > 0 {
		args = append(args, "-s", strconv.Itoa(opts.Snaplen))
	}
	if opts.BufferKiB > 0 {
		args = append(args, "-B", strconv.Itoa(opts.BufferKiB))
	}
	args = append(args, "-w", d.file)
	if opts.Filter != "" {
		args = append(args, opts.Filter)
	}
	var ctx context.Context
	ctx, d.cancel = context.WithTimeout(context.Background(), timeout)
	d.cmd = ns.Command(ctx, "tcpdump", args...)
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		d.cancel()
		tb.Fatalf("testlab: tcpdump: %v", err)
	}
	if err := d.cmd.Start(); err != nil {
		d.cancel()
		tb.Fatalf("testlab: tcpdump: %v", err)
	}
	tb.Cleanup(func() { d.Stop() })
	ready := make(chan struct{})
	var (
		mu    sync.Mutex
		lines []string
	)
	go func() {
		defer close(d.drained)
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			mu.Lock()
			if len(lines) < 50 {
				lines = append(lines, sc.Text())
			}
			mu.Unlock()
			if !signalled && strings.Contains(sc.Text(), "listening on") {
				close(ready)
				signalled = true
			}
		}
	}()
	select {
	case <-ready:
		return d
	case <-time.After(10 * time.Second):
		d.Stop()
		mu.Lock()
		defer mu.Unlock()
		tb.Fatalf("testlab: tcpdump -i %s did not start within 10s: %q", ifname, lines)
		return nil
	}
}

// Stop ends the capture and returns the pcap file's path. It first waits
// until the file has not grown for 100 ms (at most 2 s): tcpdump writes each
// packet as it reads it (-U), and on SIGINT it exits without reading what is
// still queued in its capture ring, so packets sent just before Stop would
// otherwise be lost. Then it sends SIGINT and waits for tcpdump. It is
// idempotent.
func (d *Tcpdump) Stop() string {
	d.once.Do(func() {
		d.settle(100*time.Millisecond, 2*time.Second)
		_ = d.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-d.drained:
		case <-time.After(5 * time.Second):
			d.cancel() // ignored SIGINT: kill it
			<-d.drained
		}
		_ = d.cmd.Wait()
		d.cancel()
	})
	return d.file
}

// File is the path of the pcap file (complete only after Stop).
func (d *Tcpdump) File() string { return d.file }

// settle waits until the capture file's size has stayed the same for quiet,
// or limit has passed, or tcpdump has exited.
func (d *Tcpdump) settle(quiet, limit time.Duration) {
	const poll = 20 * time.Millisecond
	deadline := time.Now().Add(limit)
	last, stable := int64(-1), time.Duration(0)
	for stable < quiet && time.Now().Before(deadline) {
		select {
		case <-d.drained:
			return
		case <-time.After(poll):
		}
		var size int64
		if fi, err := os.Stat(d.file); err == nil {
			size = fi.Size()
		}
		if size == last {
			stable += poll
		} else {
			last, stable = size, 0
		}
	}
}
