package collectd

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"collectd.org/api"
	"collectd.org/network"

	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/export/delivery"
)

// MaxPacket is the largest UDP payload sent: collectd's default
// (1452 = 1500 - IPv6 and UDP headers).
const MaxPacket = 1452

// Sender writes batches as collectd network packets.
type Sender struct {
	client   *network.Client
	host     string
	interval time.Duration
}

// NewSender dials (UDP: no traffic yet) the output's address.
func NewSender(o config.Output) (*Sender, error) {
	host, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("hostname: %w", err)
	}
	opts := network.ClientOptions{BufferSize: MaxPacket}
	switch o.SecurityLevel {
	case "sign", "encrypt":
		pw, err := os.ReadFile(o.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("password_file: %w", err)
		}
		opts.Username, opts.Password = o.Username, strings.TrimRight(string(pw), "\r\n")
		opts.SecurityLevel = network.Sign
		if o.SecurityLevel == "encrypt" {
			opts.SecurityLevel = network.Encrypt
		}
	}
	c, err := network.Dial(o.Address, opts)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", o.Address, err)
	}
	return &Sender{client: c, host: host, interval: o.Interval}, nil
}

// SetHost overrides the host part of the identifiers (default: hostname).
func (s *Sender) SetHost(h string) { s.host = h }

// Filter drops what a derive cannot carry (NaN, ±Inf).
func (s *Sender) Filter(b *delivery.Batch) int {
	dropped := 0
	out := b.Series[:0]
	for _, ser := range b.Series {
		if Identify(ser.Labels).Kind == Derive {
			keep := ser.Samples[:0]
			for _, p := range ser.Samples {
				if math.IsNaN(p.V) || math.IsInf(p.V, 0) {
					dropped++
					continue
				}
				keep = append(keep, p)
			}
			ser.Samples = keep
		}
		if len(ser.Samples) > 0 {
			out = append(out, ser)
		}
	}
	b.Series = out
	return dropped
}

// Send writes every sample and flushes the last packet.
func (s *Sender) Send(ctx context.Context, b *delivery.Batch) error {
	for _, ser := range b.Series {
		id := Identify(ser.Labels)
		vl := api.ValueList{Identifier: id.Identifier(s.host), Interval: s.interval}
		for _, p := range ser.Samples {
			vl.Time = time.UnixMilli(p.T)
			vl.Values = []api.Value{id.Value(p.V)}
			if err := s.client.Write(ctx, &vl); err != nil {
				return fmt.Errorf("send: %w", err)
			}
		}
	}
	if err := s.client.Flush(); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// Close flushes and closes the socket.
func (s *Sender) Close() error { return s.client.Close() }

var (
	_ delivery.Sender = (*Sender)(nil)
	_ delivery.Filter = (*Sender)(nil)
)
