package export_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/export/collectd"
	"github.com/netsight/netsight/export/delivery"
	"github.com/netsight/netsight/export/influx"
	"github.com/netsight/netsight/export/remotewrite"
)

// batch1000 is 1000 samples shaped like a netsight scrape: 100 series of
// 4 labels with 10 samples each, counter-like values.
func batch1000() *delivery.Batch {
	var b delivery.Batch
	t0 := time.Now().Truncate(time.Second).UnixMilli()
	for i := 0; i < 100; i++ {
		s := delivery.Series{Labels: labels.FromStrings("__name__", fmt.Sprintf("netsight_flows_bytes_%d_total", i%10),
			"direction", "tx", "scope", "zone-"+strconv.Itoa(i%7), "peer", "10.0.0."+strconv.Itoa(i))}
		for j := 0; j < 10; j++ {
			s.Samples = append(s.Samples, delivery.Sample{T: t0 + int64(j)*5000, V: float64(1_000_000*i + 1234*j)})
		}
		b.Series = append(b.Series, s)
	}
	return &b
}

// BenchmarkEncode1000 reports CPU (ns/op) and wire bytes per 1000 samples
// for each output's encoding.
func BenchmarkEncode1000(b *testing.B) {
	batch := batch1000()
	for _, v := range []int{1, 2} {
		b.Run("remote_write_v"+strconv.Itoa(v), func(b *testing.B) {
			s, err := remotewrite.NewSender(config.Output{Name: "b", Type: "remote_write", URL: "http://127.0.0.1:1/", Version: v})
			if err != nil {
				b.Fatal(err)
			}
			var n int
			var buf []byte
			for b.Loop() {
				raw, err := s.Encode(batch)
				if err != nil {
					b.Fatal(err)
				}
				buf = snappy.Encode(buf[:cap(buf)], raw)
				n = len(buf)
			}
			b.ReportMetric(float64(n), "wire_bytes/1000samples")
		})
	}
	b.Run("influxdb", func(b *testing.B) {
		s, err := influx.NewSender(config.Output{Name: "b", Type: "influxdb", URL: "http://127.0.0.1:1/", Database: "d"})
		if err != nil {
			b.Fatal(err)
		}
		var n int
		for b.Loop() {
			out, err := s.Encode(batch)
			if err != nil {
				b.Fatal(err)
			}
			n = len(out)
		}
		b.ReportMetric(float64(n), "wire_bytes/1000samples")
	})
	b.Run("collectd", func(b *testing.B) {
		l, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		_ = l.SetReadBuffer(8 << 20)
		total := make(chan int)
		go func() {
			buf := make([]byte, 2048)
			n := 0
			for {
				k, err := l.Read(buf)
				if err != nil {
					total <- n
					return
				}
				n += k
			}
		}()
		s, err := collectd.NewSender(config.Output{Name: "b", Type: "collectd", Address: l.LocalAddr().String(), Interval: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := s.Send(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
		}
		time.Sleep(100 * time.Millisecond)
		l.Close()
		b.ReportMetric(float64(<-total)/float64(b.N), "wire_bytes/1000samples")
	})
}
