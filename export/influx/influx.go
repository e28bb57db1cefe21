package influx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/export/delivery"
)

// Field is the name of the one field every point carries.
const Field = "value"

// Sender encodes batches as line protocol and posts them.
type Sender struct {
	url       string
	tokenFile string
	client    *http.Client
	enc       lineprotocol.Encoder
	gzip      bool
	zip       delivery.Compressor
}

// NewSender builds the sender of an influxdb output: v1 when database is
// set, v2 when org and bucket are.
func NewSender(o config.Output) (*Sender, error) {
	cl, err := delivery.HTTPClient(o)
	if err != nil {
		return nil, err
	}
	base, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	q := url.Values{}
	if o.Bucket != "" {
		base = base.JoinPath("api/v2/write")
		q.Set("org", o.Org)
		q.Set("bucket", o.Bucket)
	} else {
		base = base.JoinPath("write")
		q.Set("db", o.Database)
		if o.RetentionPolicy != "" {
			q.Set("rp", o.RetentionPolicy)
		}
	}
	q.Set("precision", "ms")
	base.RawQuery = q.Encode()
	s := &Sender{url: base.String(), tokenFile: o.TokenFile, client: cl, gzip: o.Compression != config.CompressionNone}
	s.enc.SetPrecision(lineprotocol.Millisecond)
	return s, nil
}

// URL is the write endpoint with its query.
func (s *Sender) URL() string { return s.url }

// Filter removes what line protocol cannot carry: NaN and ±Inf values, and
// series whose name or labels hold control characters or a trailing
// backslash.
func (s *Sender) Filter(b *delivery.Batch) int {
	dropped := 0
	out := b.Series[:0]
	for _, ser := range b.Series {
		if !encodable(ser.Labels) {
			dropped += len(ser.Samples)
			continue
		}
		keep := ser.Samples[:0]
		for _, p := range ser.Samples {
			if math.IsNaN(p.V) || math.IsInf(p.V, 0) {
				dropped++
				continue
			}
			keep = append(keep, p)
		}
		ser.Samples = keep
		if len(keep) > 0 {
			out = append(out, ser)
		}
	}
	b.Series = out
	return dropped
}

func encodable(ls labels.Labels) bool {
	ok := true
	ls.Range(func(l labels.Label) {
		if l.Value == "" || strings.HasSuffix(l.Value, `\`) || strings.IndexFunc(l.Value, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
			ok = false
		}
	})
	return ok
}

// Encode appends b as line protocol to the encoder's buffer and returns it.
func (s *Sender) Encode(b *delivery.Batch) ([]byte, error) {
	s.enc.Reset()
	s.enc.ClearErr()
	for _, ser := range b.Series {
		name := ser.Labels.Get(model.MetricNameLabel)
		for _, p := range ser.Samples {
			s.enc.StartLine(name)
			ser.Labels.Range(func(l labels.Label) {
				if l.Name != model.MetricNameLabel {
					s.enc.AddTag(l.Name, l.Value)
				}
			})
			s.enc.AddField(Field, lineprotocol.MustNewValue(p.V))
			s.enc.EndLine(time.UnixMilli(p.T))
		}
	}
	return s.enc.Bytes(), s.enc.Err()
}

// Send posts b; the answer is classified by delivery.Classify, and a
// partial write (a field type conflict) drops only the points InfluxDB
// refused.
func (s *Sender) Send(ctx context.Context, b *delivery.Batch) error {
	body, err := s.Encode(b)
	if err != nil {
		return delivery.Permanent(fmt.Errorf("encode: %w", err))
	}
	h := http.Header{}
	if body, err = s.zip.Body(body, s.gzip, h); err != nil {
		return delivery.Permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return delivery.Permanent(err)
	}
	req.Header = h
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	req.Header.Set("User-Agent", delivery.UserAgent)
	if s.tokenFile != "" {
		tok, err := os.ReadFile(s.tokenFile)
		if err != nil {
			return fmt.Errorf("read token_file: %w", err)
		}
		req.Header.Set("Authorization", "Token "+strings.TrimSpace(string(tok)))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("post %s: %w", s.url, err)
	}
	err = delivery.Classify(resp, time.Now())
	var de *delivery.Error
	if errors.As(err, &de) && de.Kind == delivery.Drop {
		de.Dropped = partialDropped(de.Err.Error())
	}
	return err
}

var droppedRE = regexp.MustCompile(`partial write:.*dropped=(\d+)`)

// partialDropped reads N from InfluxDB's "partial write: ... dropped=N".
func partialDropped(msg string) int {
	m := droppedRE.FindStringSubmatch(msg)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

var (
	_ delivery.Sender = (*Sender)(nil)
	_ delivery.Filter = (*Sender)(nil)
)
