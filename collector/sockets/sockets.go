package sockets

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/internal/kernel"
)

// Name is the collector type and config section.
const Name = "sockets"

// Config is the collectors.sockets section.
type Config struct {
	config.CollectorCommon `yaml:",inline"`
	// Backend is auto (BPF socket iterators when they load, else
	// NETLINK_SOCK_DIAG), bpf_iter or sockdiag (spelled like the flows
	// collector's back end; the old "sock_diag" is refused with a hint).
	Backend string `yaml:"backend"`
}

// Validate checks the section.
func (c *Config) Validate() error {
	errs := []error{c.ValidateCommon()}
	switch c.Backend {
	case BackendAuto, BackendBPFIter, BackendSockDiag:
	case "sock_diag":
		errs = append(errs, config.Errorf("backend", "sock_diag is now spelled sockdiag (as in collectors.flows.backend)"))
	default:
		errs = append(errs, config.Errorf("backend", "must be auto, bpf_iter or sockdiag, got %q", c.Backend))
	}
	return errors.Join(errs...)
}

// DefaultConfig returns the defaults of collectors.sockets.
func DefaultConfig() *Config {
	return &Config{CollectorCommon: config.CollectorCommon{Interval: 15 * time.Second}, Backend: BackendAuto}
}

// Backends (the kernel.SocketCounter back ends).
const (
	BackendAuto     = kernel.SocketBackendAuto
	BackendBPFIter  = kernel.SocketBackendBPFIter
	BackendSockDiag = kernel.SocketBackendSockDiag
)

func init() { collector.Register(collector.NewFactory(Name, DefaultConfig, New, nil)) }

var (
	socketsDesc = prometheus.NewDesc("netsight_sockets",
		"Inet sockets by family, protocol and state (sock_diag), like `ss -tan`/`ss -uan` counts.",
		[]string{"family", "protocol", "state"}, nil)
	backendDesc = prometheus.NewDesc("netsight_sockets_backend_info",
		"The kernel interface used to count sockets: bpf_iter (BPF socket iterators) or sockdiag (NETLINK_SOCK_DIAG).",
		[]string{"backend"}, nil)
	trackedDesc = prometheus.NewDesc("netsight_sockets_tracked_connections",
		"TCP and UDP sockets in any state with a specific peer, excluding wildcard peers and 127.0.0.1/::ffff:127.0.0.1: the EC2 connection-tracking guide's `ss | awk` count of tracked connections.",
		nil, nil)
)

// exported lists, per protocol, the states that get a series (always, zero
// included, so the series set is stable): every TCP state; UDP only has
// connected (established) and unconnected (close).
var exported = [2][]uint8{
	{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
	{1, 7},
}

// Collector exports socket counts.
type Collector struct {
	logger *slog.Logger
	mu     sync.Mutex
	ctr    kernel.SocketCounter
	logged bool
	// tracked is the last count's tracked connections (ok once counted).
	tracked   uint64
	trackedOK bool
}

// TrackedConnections is the tracked-connection count of the last update,
// ok false before the first: the monitor's NIC capacity reads it
// (monitor.TrackedReader).
func (c *Collector) TrackedConnections() (tracked uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tracked, c.trackedOK
}

// New builds the collector.
func New(cfg *Config, deps collector.Deps) (*Collector, error) {
	deps = deps.WithDefaults()
	return &Collector{logger: deps.Logger, ctr: kernel.SocketCounter{Backend: cfg.Backend}}, nil
}

// Close releases the BPF iterators.
func (c *Collector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ctr.Close()
}

// Update counts the sockets of the namespace the calling thread is in.
func (c *Collector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	c.mu.Lock()
	counts, err := c.ctr.Count(ctx)
	backend := c.ctr.ActiveBackend()
	if !c.logged {
		c.logged = true
		if ierr := c.ctr.IterError(); ierr != nil && backend == BackendSockDiag {
			c.logger.Info("counting sockets with sock_diag", "reason", ierr.Error())
		} else {
			c.logger.Info("counting sockets", "backend", backend)
		}
	}
	if err == nil {
		c.tracked, c.trackedOK = counts.Tracked, true
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	ch <- prometheus.MustNewConstMetric(backendDesc, prometheus.GaugeValue, 1, backend)
	for fi, fam := range kernel.SocketFamilyNames {
		for pi, proto := range kernel.SocketProtocolNames {
			for _, st := range exported[pi] {
				ch <- prometheus.MustNewConstMetric(socketsDesc, prometheus.GaugeValue,
					float64(counts.ByState[fi][pi][st]), fam, proto, kernel.SocketStateNames[st])
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(trackedDesc, prometheus.GaugeValue, float64(counts.Tracked))
	return nil
}

var (
	_ collector.Collector = (*Collector)(nil)
	_ collector.Closer    = (*Collector)(nil)
)
