package web

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"
)

// Options configure a Server.
type Options struct {
	Listen        string
	WebConfigFile string
	ReadTimeout   time.Duration
	// WriteTimeout bounds handling a request and writing its answer: a
	// client that stops reading loses its connection then (0: none).
	WriteTimeout time.Duration
	Gatherer     prometheus.Gatherer
	// Registerer receives promhttp's own scrape metrics; may be nil.
	Registerer prometheus.Registerer
	// Ready reports readiness for /readyz; nil means always ready.
	Ready  func() error
	Logger *slog.Logger
}

// Server is the agent's HTTP server.
type Server struct {
	opts Options
	mux  *http.ServeMux
	srv  *http.Server

	ln       net.Listener
	info     WebConfigInfo // set by Listen
	done     chan struct{}
	serveErr error
}

// New builds the server and its mux; Handle may add routes before Start.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, mux: http.NewServeMux()}
	h := promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
		EnableOpenMetrics:   true,
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 8,
		Timeout:             30 * time.Second,
		ErrorLog:            slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	})
	if opts.Registerer != nil {
		h = promhttp.InstrumentMetricHandler(opts.Registerer, h)
	}
	s.mux.Handle("GET /metrics", h)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if opts.Ready != nil {
			if err := opts.Ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return s
}

// Handle mounts a route (Go 1.22 pattern syntax, e.g. "GET /api/v1/flows").
// Routes are mounted once, by the agent, before Start: a config reload
// rebuilds sources, never routes.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Mux exposes the router (tests).
func (s *Server) Mux() *http.ServeMux { return s.mux }

// Start serves in the background on the socket Listen bound (calling
// Listen first if needed). It returns once the socket is bound, so the
// caller can print the address.
func (s *Server) Start() error {
	if err := s.Listen(); err != nil {
		return err
	}
	ln := s.ln
	s.srv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
	}
	webCfg := s.opts.WebConfigFile
	flags := &web.FlagConfig{WebListenAddresses: &[]string{s.opts.Listen}, WebConfigFile: &webCfg}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		err := web.Serve(ln, s.srv, flags, s.opts.Logger)
		if !errors.Is(err, http.ErrServerClosed) {
			s.serveErr = err
		}
	}()
	return nil
}

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Shutdown stops serving, waiting for in-flight requests until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.srv == nil {
		if s.ln != nil { // Listen without Start
			return s.ln.Close()
		}
		return nil
	}
	err := s.srv.Shutdown(ctx)
	<-s.done
	return errors.Join(err, s.serveErr)
}

// Done is closed when serving stops; Err then tells why.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err is the serve error after Done is closed (nil after a clean Shutdown).
func (s *Server) Err() error { return s.serveErr }
