package web

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
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

	routesMu sync.Mutex
	routes   map[string]*swapHandler
	keep     map[string]bool // routes ResetRoutes leaves alone (HandleKeep)
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

// Handle registers a route (Go 1.22 pattern syntax, e.g. "GET /api/v1/flows").
// Registering the same pattern again replaces the handler, so collectors
// rebuilt by a config reload can register their APIs again.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.routesMu.Lock()
	defer s.routesMu.Unlock()
	if s.routes == nil {
		s.routes = map[string]*swapHandler{}
	}
	if sh, ok := s.routes[pattern]; ok {
		sh.h.Store(&h)
		return
	}
	sh := &swapHandler{}
	sh.h.Store(&h)
	s.routes[pattern] = sh
	s.mux.Handle(pattern, sh)
}

// HandleKeep registers a route like Handle that ResetRoutes leaves in place:
// for components (store API, dashboard) that a config reload does not rebuild.
func (s *Server) HandleKeep(pattern string, h http.Handler) {
	s.Handle(pattern, h)
	s.routesMu.Lock()
	defer s.routesMu.Unlock()
	if s.keep == nil {
		s.keep = map[string]bool{}
	}
	s.keep[pattern] = true
}

// ResetRoutes makes every route added with Handle answer 404 until it is
// registered again (called before collectors are rebuilt on reload). Routes
// added with HandleKeep stay.
func (s *Server) ResetRoutes() {
	s.routesMu.Lock()
	defer s.routesMu.Unlock()
	var nf http.Handler = http.NotFoundHandler()
	for p, sh := range s.routes {
		if s.keep[p] {
			continue
		}
		sh.h.Store(&nf)
	}
}

type swapHandler struct{ h atomic.Pointer[http.Handler] }

func (sh *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*sh.h.Load()).ServeHTTP(w, r)
}

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
