package testlab

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ServerIdleTimeout is how long a Server connection may stay silent before
// the server closes it, so a forgotten client never holds a test forever.
const ServerIdleTimeout = 30 * time.Second

// Server is a small TCP server for tests: an echo server (writes back what it
// reads) or a sink (reads and discards). It counts connections and bytes.
type Server struct {
	ln   net.Listener
	echo bool

	accepted, bytesIn, bytesOut atomic.Int64

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// StartEchoServer listens on addr (e.g. "10.1.2.1:0", "[::]:7") inside ns
// (nil: the host, e.g. "127.0.0.1:0") and echoes every byte back. It stops in
// tb.Cleanup.
func (ns *NetNS) StartEchoServer(tb testing.TB, addr string) *Server {
	tb.Helper()
	return ns.startServer(tb, addr, true)
}

// StartSinkServer is StartEchoServer for a server that discards what it reads.
func (ns *NetNS) StartSinkServer(tb testing.TB, addr string) *Server {
	tb.Helper()
	return ns.startServer(tb, addr, false)
}

func (ns *NetNS) startServer(tb testing.TB, addr string, echo bool) *Server {
	tb.Helper()
	ln, err := ns.Listen("tcp", addr)
	if err != nil {
		tb.Fatalf("testlab: %v", err)
	}
	s := NewServer(ln, echo)
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// NewServer serves ln (which may come from NetNS.Listen) as an echo server
// (echo true) or a sink until Close.
func NewServer(ln net.Listener, echo bool) *Server {
	s := &Server{ln: ln, echo: echo, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

// Addr is the address the server listens on.
func (s *Server) Addr() netip.AddrPort {
	if a, ok := s.ln.Addr().(*net.TCPAddr); ok {
		return a.AddrPort()
	}
	return netip.AddrPort{}
}

// Accepted is the number of connections accepted so far.
func (s *Server) Accepted() int64 { return s.accepted.Load() }

// Open is the number of connections open now.
func (s *Server) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// BytesReceived is the number of bytes read from all connections.
func (s *Server) BytesReceived() int64 { return s.bytesIn.Load() }

// BytesSent is the number of bytes echoed back.
func (s *Server) BytesSent() int64 { return s.bytesOut.Load() }

// Close stops accepting, closes open connections and waits for the server's
// goroutines. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.ln.Close()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.accepted.Add(1)
		go s.serve(c)
	}
}

func (s *Server) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.Close()
	}()
	buf := make([]byte, 64<<10)
	for {
		_ = c.SetDeadline(time.Now().Add(ServerIdleTimeout))
		n, err := c.Read(buf)
		if n > 0 {
			s.bytesIn.Add(int64(n))
			if s.echo {
				w, werr := c.Write(buf[:n])
				s.bytesOut.Add(int64(w))
				if werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}
