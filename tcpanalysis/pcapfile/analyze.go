package pcapfile

import (
	"context"
	"errors"
	"io"

	"github.com/netsight/netsight/tcpanalysis"
)

const (
	batchSize = 512
	batches   = 8
)

type batch struct {
	pkts []tcpanalysis.Packet
	errs []error // decode error per packet (nil: decoded)
	n    int
	err  error // read error after the packets of this batch (io.EOF at the end)
}

// Analyze feeds every packet of rd into a and returns the number of records
// read. Frames that do not decode (non-IP, truncated headers) are counted in
// a.Totals and skipped; only a damaged file stops it, with the reader's
// *FormatError. tick, if not nil, is called every 16384 packets (for
// progress reporting); ctx is checked at the same rate.
//
// Reading and decoding run on one goroutine and the analysis on the
// caller's, handing over batches of decoded packets, so a file is analysed
// on two cores; memory stays bounded by a few fixed batches.
func Analyze(parent context.Context, rd *Reader, a *tcpanalysis.Analyzer, tick func()) (uint64, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	full := make(chan *batch, batches)
	free := make(chan *batch, batches)
	for i := 0; i < batches; i++ {
		free <- &batch{pkts: make([]tcpanalysis.Packet, batchSize), errs: make([]error, batchSize)}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(full)
		for {
			var b *batch
			select {
			case b = <-free:
			case <-ctx.Done():
				return
			}
			b.n, b.err = 0, nil
			for b.n < batchSize {
				data, ci, err := rd.Next()
				if err != nil {
					b.err = err
					break
				}
				p := &b.pkts[b.n]
				p.TimestampNanos, p.WireLen = ci.TimestampNanos, ci.WireLen
				b.errs[b.n] = tcpanalysis.Decode(ci.LinkType, data, p)
				b.n++
			}
			full <- b
			if b.err != nil {
				return
			}
		}
	}()
	var n uint64
	var err error
	for b := range full {
		for i := 0; i < b.n; i++ {
			if b.errs[i] != nil {
				a.Undecodable(&b.pkts[i], b.errs[i])
			} else {
				a.Process(&b.pkts[i])
			}
			n++
			if n&16383 == 0 {
				if tick != nil {
					tick()
				}
				if cerr := parent.Err(); cerr != nil && err == nil {
					err = cerr
				}
			}
		}
		if b.err != nil && !errors.Is(b.err, io.EOF) {
			err = b.err
		}
		if err != nil {
			break
		}
		free <- b
	}
	cancel() // the reader goroutine may wait for a free batch
	<-done
	return n, err
}
