package remotewrite

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/export/delivery"
)

// Content types and version headers of the two protocol versions.
const (
	contentTypeV1 = "application/x-protobuf"
	contentTypeV2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
	versionV1     = "0.1.0"
	versionV2     = "2.0.0"
)

// Sender encodes batches as remote write requests and posts them.
type Sender struct {
	url     string
	version int
	client  *http.Client
	buf     []byte
	symbols writev2.SymbolsTable
}

// NewSender builds the sender of a remote_write output (defaults applied).
func NewSender(o config.Output) (*Sender, error) {
	cl, err := delivery.HTTPClient(o)
	if err != nil {
		return nil, err
	}
	if o.Version == 0 {
		o.Version = 1
	}
	return &Sender{url: o.URL, version: o.Version, client: cl, symbols: writev2.NewSymbolTable()}, nil
}

// Encode returns the uncompressed protobuf of b.
func (s *Sender) Encode(b *delivery.Batch) ([]byte, error) {
	if s.version == 2 {
		return s.encodeV2(b)
	}
	return encodeV1(b)
}

func encodeV1(b *delivery.Batch) ([]byte, error) {
	req := prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, 0, len(b.Series))}
	for _, ser := range b.Series {
		ts := prompb.TimeSeries{Labels: make([]prompb.Label, 0, ser.Labels.Len()), Samples: make([]prompb.Sample, len(ser.Samples))}
		ser.Labels.Range(func(l labels.Label) {
			ts.Labels = append(ts.Labels, prompb.Label{Name: l.Name, Value: l.Value})
		})
		for i, p := range ser.Samples {
			ts.Samples[i] = prompb.Sample{Timestamp: p.T, Value: p.V}
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	return req.Marshal()
}

func (s *Sender) encodeV2(b *delivery.Batch) ([]byte, error) {
	s.symbols.Reset()
	req := writev2.Request{Timeseries: make([]writev2.TimeSeries, 0, len(b.Series))}
	for _, ser := range b.Series {
		ts := writev2.TimeSeries{LabelsRefs: s.symbols.SymbolizeLabels(ser.Labels, nil), Samples: make([]writev2.Sample, len(ser.Samples))}
		for i, p := range ser.Samples {
			ts.Samples[i] = writev2.Sample{Timestamp: p.T, Value: p.V}
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	req.Symbols = s.symbols.Symbols()
	return req.Marshal()
}

// Send posts b; the answer is classified by delivery.Classify. A batch that
// cannot be encoded is dropped (delivery.Permanent).
func (s *Sender) Send(ctx context.Context, b *delivery.Batch) error {
	raw, err := s.Encode(b)
	if err != nil {
		return delivery.Permanent(fmt.Errorf("encode: %w", err))
	}
	s.buf = snappy.Encode(s.buf[:cap(s.buf)], raw)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(s.buf))
	if err != nil {
		return delivery.Permanent(err)
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("User-Agent", delivery.UserAgent)
	if s.version == 2 {
		req.Header.Set("Content-Type", contentTypeV2)
		req.Header.Set("X-Prometheus-Remote-Write-Version", versionV2)
	} else {
		req.Header.Set("Content-Type", contentTypeV1)
		req.Header.Set("X-Prometheus-Remote-Write-Version", versionV1)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("post %s: %w", s.url, err)
	}
	return delivery.Classify(resp, time.Now())
}

var _ delivery.Sender = (*Sender)(nil)
