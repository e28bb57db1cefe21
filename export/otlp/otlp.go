package otlp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/export/delivery"
)

// Sender exports batches over OTLP/HTTP (protobuf) or OTLP/gRPC.
type Sender struct {
	res     *resourcepb.Resource
	url     string
	client  *http.Client
	conn    *grpc.ClientConn
	grpc    colmetricspb.MetricsServiceClient
	headers map[string]string
	gzip    bool
	zip     delivery.Compressor
}

// NewSender builds the sender; protocol http posts to url as given (e.g.
// http://collector:4318/v1/metrics), grpc dials url's host:port (scheme
// grpc:// or http:// plain text, https:// TLS).
func NewSender(o config.Output) (*Sender, error) {
	s := &Sender{res: Resource(), url: o.URL, headers: o.Headers, gzip: o.Compression != config.CompressionNone}
	if o.Protocol != "grpc" {
		cl, err := delivery.HTTPClient(o)
		if err != nil {
			return nil, err
		}
		s.client = cl
		return s, nil
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	creds := insecure.NewCredentials()
	if u.Scheme == "https" {
		creds = credentials.NewTLS(&tls.Config{ServerName: o.TLS.ServerName, InsecureSkipVerify: o.TLS.InsecureSkipVerify}) //nolint:gosec // user's choice
	}
	conn, err := grpc.NewClient(u.Host, grpc.WithTransportCredentials(creds), grpc.WithUserAgent(delivery.UserAgent))
	if err != nil {
		return nil, fmt.Errorf("grpc client %s: %w", u.Host, err)
	}
	s.conn, s.grpc = conn, colmetricspb.NewMetricsServiceClient(conn)
	return s, nil
}

// Send exports b; a partial success counts the rejected points as dropped.
func (s *Sender) Send(ctx context.Context, b *delivery.Batch) error {
	req := Encode(b, s.res)
	if s.grpc != nil {
		return s.sendGRPC(ctx, req, b.Len())
	}
	body, err := proto.Marshal(req)
	if err != nil {
		return delivery.Permanent(fmt.Errorf("encode: %w", err))
	}
	h := http.Header{}
	if body, err = s.zip.Body(body, s.gzip, h); err != nil {
		return delivery.Permanent(err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return delivery.Permanent(err)
	}
	hr.Header = h
	hr.Header.Set("Content-Type", "application/x-protobuf")
	hr.Header.Set("User-Agent", delivery.UserAgent)
	resp, err := s.client.Do(hr)
	if err != nil {
		return fmt.Errorf("post %s: %w", s.url, err)
	}
	if resp.StatusCode/100 != 2 {
		return delivery.Classify(resp, time.Now())
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var out colmetricspb.ExportMetricsServiceResponse
	if proto.Unmarshal(data, &out) == nil {
		return partial(out.GetPartialSuccess(), b.Len())
	}
	return nil
}

func (s *Sender) sendGRPC(ctx context.Context, req *colmetricspb.ExportMetricsServiceRequest, n int) error {
	if len(s.headers) > 0 {
		kv := make([]string, 0, 2*len(s.headers))
		for k, v := range s.headers {
			kv = append(kv, strings.ToLower(k), v)
		}
		ctx = metadata.AppendToOutgoingContext(ctx, kv...)
	}
	var opts []grpc.CallOption
	if s.gzip {
		opts = append(opts, grpc.UseCompressor(gzip.Name))
	}
	resp, err := s.grpc.Export(ctx, req, opts...)
	if err != nil {
		return classifyGRPC(err)
	}
	return partial(resp.GetPartialSuccess(), n)
}

// partial turns OTLP's partial success into a Drop of the rejected points.
func partial(ps *colmetricspb.ExportMetricsPartialSuccess, n int) error {
	if ps == nil || ps.GetRejectedDataPoints() <= 0 {
		return nil
	}
	k := int(min(ps.GetRejectedDataPoints(), int64(n)))
	return &delivery.Error{Kind: delivery.Drop, Dropped: k, Err: fmt.Errorf("partial success: %d rejected: %s", k, ps.GetErrorMessage())}
}

// classifyGRPC maps gRPC codes like the OTLP spec's retryable list.
func classifyGRPC(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	e := &delivery.Error{Err: errors.New(st.Message())}
	switch st.Code() {
	case codes.Unavailable, codes.ResourceExhausted:
		e.Kind = delivery.Throttle
	case codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange, codes.DataLoss, codes.Internal, codes.Unknown:
		e.Kind = delivery.Retry
	default:
		e.Kind = delivery.Drop
	}
	return e
}

// Close closes the gRPC connection.
func (s *Sender) Close() error {
	if s.conn != nil {
		return s.conn.Close()
	}
	return nil
}

var _ delivery.Sender = (*Sender)(nil)
