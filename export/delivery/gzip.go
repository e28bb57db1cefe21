package delivery

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
)

// Compressor gzips request bodies (outputs with `compression: gzip`, the
// default of influxdb and otlp), reusing its buffer and writer. Not safe for
// concurrent use: one per sender, which sends one batch at a time.
type Compressor struct {
	buf bytes.Buffer
	zw  *gzip.Writer
}

// Gzip returns p compressed; the slice is valid until the next call.
func (c *Compressor) Gzip(p []byte) ([]byte, error) {
	c.buf.Reset()
	if c.zw == nil {
		c.zw = gzip.NewWriter(&c.buf)
	} else {
		c.zw.Reset(&c.buf)
	}
	if _, err := c.zw.Write(p); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if err := c.zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return c.buf.Bytes(), nil
}

// Body returns the body to send for p and sets Content-Encoding on h when
// it is compressed (gzip false: p as is).
func (c *Compressor) Body(p []byte, gzip bool, h http.Header) ([]byte, error) {
	if !gzip {
		return p, nil
	}
	z, err := c.Gzip(p)
	if err != nil {
		return nil, err
	}
	h.Set("Content-Encoding", "gzip")
	return z, nil
}
