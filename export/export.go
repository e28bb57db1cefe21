package export

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/export/collectd"
	"github.com/netsight/netsight/export/delivery"
	"github.com/netsight/netsight/export/influx"
	"github.com/netsight/netsight/export/otlp"
	"github.com/netsight/netsight/export/remotewrite"
)

// SubDir holds the outputs' cursor files inside the agent's data_dir.
const SubDir = "export"

// Source is what outputs read: the embedded store's storage.Queryable
// (store.Store.Queryable()).
type Source = delivery.Source

// Deps are what the agent hands every output.
type Deps struct {
	// DataDir is the agent's data_dir; cursors go to DataDir/export.
	DataDir string
	// ScrapeInterval is the store's; the default output interval.
	ScrapeInterval time.Duration
	Registerer     prometheus.Registerer
	Logger         *slog.Logger
}

// ErrNotSupported: the output type is configured but not built in this version.
var ErrNotSupported = errors.New("output type not supported by this build")

// Output is one running push output.
type Output struct {
	cfg config.Output
	d   *delivery.Delivery
}

// New builds the output cfg describes (defaults applied here). It starts
// nothing.
func New(cfg config.Output, src Source, deps Deps) (*Output, error) {
	cfg = cfg.WithDefaults(deps.ScrapeInterval)
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	logger := deps.Logger.With("output", cfg.Name, "type", cfg.Type)
	var (
		sender    delivery.Sender
		keepStale bool
		err       error
	)
	switch cfg.Type {
	case config.OutputRemoteWrite:
		sender, err = remotewrite.NewSender(cfg)
		keepStale = true
	case config.OutputInfluxDB:
		sender, err = influx.NewSender(cfg)
	case config.OutputCollectd:
		sender, err = collectd.NewSender(cfg)
	case config.OutputOTLP:
		sender, err = otlp.NewSender(cfg)
		keepStale = true
	default:
		err = fmt.Errorf("%w: %s", ErrNotSupported, cfg.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", cfg.Name, err)
	}
	d, err := delivery.New(delivery.Options{
		Name:              cfg.Name,
		Dir:               filepath.Join(deps.DataDir, SubDir),
		Source:            src,
		Sender:            sender,
		Interval:          cfg.Interval,
		Lag:               deps.ScrapeInterval,
		MaxAge:            cfg.MaxAge,
		Match:             cfg.Match,
		MaxSamplesPerSend: cfg.MaxSamplesPerSend,
		KeepStale:         keepStale,
		Registerer:        deps.Registerer,
		Logger:            logger,
	})
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", cfg.Name, err)
	}
	return &Output{cfg: cfg, d: d}, nil
}

// Name is the output's configured name.
func (o *Output) Name() string { return o.cfg.Name }

// Delivery is the output's delivery core (cursor, rounds).
func (o *Output) Delivery() *delivery.Delivery { return o.d }

// Start begins delivery rounds; it returns at once.
func (o *Output) Start(ctx context.Context) error { return o.d.Start(ctx) }

// Shutdown stops the rounds; idempotent and safe without Start.
func (o *Output) Shutdown(ctx context.Context) error { return o.d.Shutdown(ctx) }

// ReportFailed exports netsight_export_up{output="name"} 0 for an output
// that could not be built or started (the agent logs why).
func ReportFailed(reg prometheus.Registerer, name string) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "netsight_export_up",
		Help:        "1 when the output's last attempt reached its receiver, 0 while it fails (the log says why).",
		ConstLabels: prometheus.Labels{"output": name}})
	if reg != nil {
		_ = reg.Register(g)
	}
}
