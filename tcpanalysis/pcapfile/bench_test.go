package pcapfile

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/netsight/netsight/tcpanalysis"
)

// BenchmarkAnalyzeFile reads and analyses the capture named by
// NETSIGHT_BENCH_PCAP (e.g. the one bench/analyze/run.sh makes), from
// memory, so it measures parsing and analysis, not the disk.
func BenchmarkAnalyzeFile(b *testing.B) {
	name := os.Getenv("NETSIGHT_BENCH_PCAP")
	if name == "" {
		b.Skip("set NETSIGHT_BENCH_PCAP to a capture file")
	}
	data, err := os.ReadFile(name)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		rd, err := NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		a := tcpanalysis.NewAnalyzer(tcpanalysis.Config{})
		n, err := Analyze(context.Background(), rd, a, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n)/float64(i+1), "ns/packet")
	}
}
