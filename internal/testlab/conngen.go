package testlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// ConnResult is the outcome of one generated connection.
type ConnResult struct {
	Index       int
	Local       netip.AddrPort // zero if the connection never came up
	ConnectTime time.Duration  // dial duration
	Duration    time.Duration  // dial to close
	Sent        int64
	Received    int64
	Err         error
}

// ShortConnsConfig configures ShortConns. Every run is bounded in count and
// time.
type ShortConnsConfig struct {
	Target      netip.AddrPort
	Count       int           // connections to make (required, > 0)
	Bytes       int           // bytes written per connection (and read back unless NoEcho)
	NoEcho      bool          // do not wait for the bytes to come back (target is a sink)
	Concurrency int           // connections in flight at once (default 16)
	Timeout     time.Duration // the whole run (default 30s)
	ConnTimeout time.Duration // one connection, dial to close (default 10s)
}

// ShortConns makes cfg.Count short-lived TCP connections from inside ns to
// cfg.Target: connect, write Bytes, read Bytes back (from an echo server),
// close. It returns one result per connection, in index order; connections
// not attempted before the time limit carry the context error. The error
// return is only for a bad configuration.
func (ns *NetNS) ShortConns(ctx context.Context, cfg ShortConnsConfig) ([]ConnResult, error) {
	if cfg.Count <= 0 {
		return nil, fmt.Errorf("short conns: count %d: must be positive", cfg.Count)
	}
	if !cfg.Target.IsValid() {
		return nil, errors.New("short conns: target: must be set")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	cfg.Concurrency = min(cfg.Concurrency, cfg.Count)
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.ConnTimeout <= 0 {
		cfg.ConnTimeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	results := make([]ConnResult, cfg.Count)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One locked thread in the namespace per worker, reused for all
			// its connections.
			err := ns.Do(func() error {
				for i := range jobs {
					results[i] = shortConn(ctx, i, cfg)
				}
				return nil
			})
			if err != nil {
				for i := range jobs {
					results[i] = ConnResult{Index: i, Err: err}
				}
			}
		}()
	}
feed:
	for i := range cfg.Count {
		select {
		case jobs <- i:
		case <-ctx.Done():
			for j := i; j < cfg.Count; j++ {
				results[j] = ConnResult{Index: j, Err: fmt.Errorf("not attempted: %w", ctx.Err())}
			}
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	return results, nil
}

func shortConn(ctx context.Context, i int, cfg ShortConnsConfig) ConnResult {
	r := ConnResult{Index: i}
	ctx, cancel := context.WithTimeout(ctx, cfg.ConnTimeout)
	defer cancel()
	start := time.Now()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", cfg.Target.String())
	r.ConnectTime = time.Since(start)
	if err != nil {
		r.Err = fmt.Errorf("dial %s: %w", cfg.Target, err)
		r.Duration = r.ConnectTime
		return r
	}
	r.Local = c.LocalAddr().(*net.TCPAddr).AddrPort()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	r.Sent, r.Received, r.Err = exchange(c, cfg.Bytes, !cfg.NoEcho)
	if err := c.Close(); err != nil && r.Err == nil {
		r.Err = fmt.Errorf("close: %w", err)
	}
	r.Duration = time.Since(start)
	return r
}

// exchange writes n pattern bytes and, with echo, concurrently reads n bytes
// back (reading while writing avoids a deadlock once n exceeds the socket
// buffers).
func exchange(c net.Conn, n int, echo bool) (sent, received int64, err error) {
	if n <= 0 {
		return 0, 0, nil
	}
	payload := make([]byte, min(n, 64<<10))
	for i := range payload {
		payload[i] = byte(i)
	}
	var (
		wg     sync.WaitGroup
		rerr   error
		rbytes int64
	)
	if echo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rbytes, rerr = io.CopyN(io.Discard, c, int64(n))
			if rerr != nil {
				rerr = fmt.Errorf("read echo: %w", rerr)
			}
		}()
	}
	var werr error
	for sent < int64(n) && werr == nil {
		chunk := payload[:min(int64(len(payload)), int64(n)-sent)]
		var w int
		w, werr = c.Write(chunk)
		sent += int64(w)
	}
	if werr != nil {
		werr = fmt.Errorf("write: %w", werr)
		_ = c.SetReadDeadline(time.Now()) // unblock the reader
	}
	wg.Wait()
	return sent, rbytes, errors.Join(werr, rerr)
}

// HeldConns is a set of long-lived connections kept open until Release.
type HeldConns struct {
	// Results has one entry per connection: local address, connect time.
	Results []ConnResult

	conns   []net.Conn
	once    sync.Once
	release chan struct{}
	done    chan struct{}
}

// HoldConns opens n TCP connections from inside ns to target (at most 16
// dials in flight) and holds them open, idle, until Release is called or ctx
// ends, whichever comes first: pass a ctx with a deadline to bound the hold.
// If any connection fails, the others are closed and the error returned.
func (ns *NetNS) HoldConns(ctx context.Context, target netip.AddrPort, n int) (*HeldConns, error) {
	if n <= 0 {
		return nil, fmt.Errorf("hold conns: n %d: must be positive", n)
	}
	h := &HeldConns{
		Results: make([]ConnResult, n),
		conns:   make([]net.Conn, n),
		release: make(chan struct{}),
		done:    make(chan struct{}),
	}
	dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			start := time.Now()
			c, err := ns.Dial(dialCtx, "tcp", target.String())
			h.Results[i] = ConnResult{Index: i, ConnectTime: time.Since(start), Err: err}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("conn %d: %w", i, err))
				mu.Unlock()
				return
			}
			h.conns[i] = c
			h.Results[i].Local = c.LocalAddr().(*net.TCPAddr).AddrPort()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		h.closeAll()
		close(h.done)
		return nil, fmt.Errorf("hold conns to %s: %w", target, err)
	}
	go func() {
		defer close(h.done)
		select {
		case <-h.release:
		case <-ctx.Done():
		}
		h.closeAll()
	}()
	return h, nil
}

// Locals returns the local (client) addresses of the held connections.
func (h *HeldConns) Locals() []netip.AddrPort {
	out := make([]netip.AddrPort, len(h.Results))
	for i, r := range h.Results {
		out[i] = r.Local
	}
	return out
}

// Conns returns the held connections (to send data on them, say). They are
// closed by Release.
func (h *HeldConns) Conns() []net.Conn { return h.conns }

// Release closes all connections and waits until they are closed. It is
// idempotent and safe to call after ctx ended.
func (h *HeldConns) Release() {
	h.once.Do(func() { close(h.release) })
	<-h.done
}

func (h *HeldConns) closeAll() {
	for _, c := range h.conns {
		if c != nil {
			_ = c.Close()
		}
	}
}
