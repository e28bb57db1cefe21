package pcapfile

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/netsight/netsight/tcpanalysis"
)

type rec struct {
	ts   time.Time
	data []byte
	wire int
}

func testRecords(n int) []rec {
	base := time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)
	out := make([]rec, n)
	for i := range out {
		d := make([]byte, 60+i%70)
		for j := range d {
			d[j] = byte(i + j)
		}
		out[i] = rec{ts: base.Add(time.Duration(i) * 1001 * time.Microsecond), data: d, wire: len(d) + i%3*100}
	}
	return out
}

func writePcap(t testing.TB, recs []rec, nano bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w *pcapgo.Writer
	if nano {
		w = pcapgo.NewWriterNanos(&buf)
	} else {
		w = pcapgo.NewWriter(&buf)
	}
	if err := w.WriteFileHeader(262144, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: r.ts, CaptureLength: len(r.data), Length: r.wire}, r.data); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func writePcapNG(t testing.TB, recs []rec) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriter(&buf, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: r.ts, CaptureLength: len(r.data), Length: r.wire}, r.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

func readAll(t testing.TB, b []byte) ([]rec, *Reader, error) {
	t.Helper()
	rd, err := NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, nil, err
	}
	var out []rec
	for {
		data, ci, err := rd.Next()
		if err == io.EOF {
			return out, rd, nil
		}
		if err != nil {
			return out, rd, err
		}
		if len(data) != ci.CaptureLen || ci.LinkType != tcpanalysis.LinkEthernet {
			t.Fatalf("record: len %d caplen %d linktype %d", len(data), ci.CaptureLen, ci.LinkType)
		}
		out = append(out, rec{ts: time.Unix(0, ci.TimestampNanos).UTC(), data: append([]byte(nil), data...), wire: ci.WireLen})
	}
}

func TestReadFormats(t *testing.T) {
	recs := testRecords(500)
	for _, tc := range []struct {
		name   string
		data   []byte
		format Format
	}{
		{"pcap usec", writePcap(t, recs, false), FormatPcap},
		{"pcap nsec", writePcap(t, recs, true), FormatPcap},
		{"pcapng", writePcapNG(t, recs), FormatPcapNG},
		{"pcap gzip", gz(writePcap(t, recs, false)), FormatPcap},
		{"pcapng gzip", gz(writePcapNG(t, recs)), FormatPcapNG},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, rd, err := readAll(t, tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if rd.Format() != tc.format {
				t.Errorf("format = %v", rd.Format())
			}
			if len(got) != len(recs) {
				t.Fatalf("read %d records, want %d", len(got), len(recs))
			}
			for i := range recs {
				if !got[i].ts.Equal(recs[i].ts) || !bytes.Equal(got[i].data, recs[i].data) || got[i].wire != recs[i].wire {
					t.Fatalf("record %d: got ts=%v wire=%d, want ts=%v wire=%d", i, got[i].ts, got[i].wire, recs[i].ts, recs[i].wire)
				}
			}
		})
	}
}

// TestAgreesWithPcapgo reads the same bytes with gopacket's reader.
func TestAgreesWithPcapgo(t *testing.T) {
	recs := testRecords(200)
	for name, data := range map[string][]byte{"pcap": writePcap(t, recs, true), "pcapng": writePcapNG(t, recs)} {
		t.Run(name, func(t *testing.T) {
			ours, _, err := readAll(t, data)
			if err != nil {
				t.Fatal(err)
			}
			var src interface {
				ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
			}
			if name == "pcap" {
				src, err = pcapgo.NewReader(bytes.NewReader(data))
			} else {
				src, err = pcapgo.NewNgReader(bytes.NewReader(data), pcapgo.DefaultNgReaderOptions)
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; ; i++ {
				d, ci, err := src.ReadPacketData()
				if err == io.EOF {
					if i != len(ours) {
						t.Fatalf("pcapgo read %d, we read %d", i, len(ours))
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(d, ours[i].data) || !ci.Timestamp.Equal(ours[i].ts) || ci.Length != ours[i].wire {
					t.Fatalf("record %d differs from pcapgo", i)
				}
			}
		})
	}
}

func TestTruncatedAndMalformed(t *testing.T) {
	recs := testRecords(10)
	pc := writePcap(t, recs, false)
	ng := writePcapNG(t, recs)
	// offset of record 3 in the pcap file
	off3 := 24
	for _, r := range recs[:3] {
		off3 += 16 + len(r.data)
	}
	for _, tc := range []struct {
		name      string
		data      []byte
		wantRecs  int
		wantOff   int64
		wantMsg   string
		truncated bool
	}{
		{"pcap cut inside record data", pc[:off3+16+5], 3, int64(off3), "truncated pcap packet data", true},
		{"pcap cut inside record header", pc[:off3+7], 3, int64(off3), "truncated pcap record header", true},
		{"pcap cut inside file header", pc[:10], 0, 0, "truncated pcap file header", true},
		{"pcap huge caplen", corrupt(pc, off3+8, []byte{0xff, 0xff, 0xff, 0x7f}), 3, int64(off3), "exceeds the", false},
		{"bad magic", []byte("GIF89a not a capture file at all"), 0, 0, "unknown magic", false},
		{"empty", nil, 0, 0, "empty file", true},
		{"pcapng cut", ng[:len(ng)-9], 9, -1, "truncated pcapng block", true},
		{"pcapng bad block length", corrupt(ng, len(ng)-4, []byte{1, 0, 0, 0}), 9, -1, "trailing length", false},
		{"gzip cut", gz(pc)[:60], -1, -1, "gzip", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := readAll(t, tc.data)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a *FormatError", err)
			}
			if tc.wantRecs >= 0 && len(got) != tc.wantRecs {
				t.Errorf("read %d records before the error, want %d", len(got), tc.wantRecs)
			}
			if tc.wantOff >= 0 && fe.Offset != tc.wantOff {
				t.Errorf("offset = %d, want %d (%v)", fe.Offset, tc.wantOff, err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) || !strings.Contains(err.Error(), "byte offset") {
				t.Errorf("error %q does not mention %q and the byte offset", err, tc.wantMsg)
			}
			if fe.Truncated != tc.truncated {
				t.Errorf("truncated = %v, want %v", fe.Truncated, tc.truncated)
			}
		})
	}
}

func corrupt(b []byte, at int, with []byte) []byte {
	c := append([]byte(nil), b...)
	copy(c[at:], with)
	return c
}

func FuzzReader(f *testing.F) {
	recs := testRecords(3)
	f.Add(writePcap(f, recs, false))
	f.Add(writePcap(f, recs, true))
	f.Add(writePcapNG(f, recs))
	f.Add(gz(writePcap(f, recs, false)))
	f.Add([]byte{0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a})
	f.Fuzz(func(t *testing.T, data []byte) {
		rd, err := NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		last := rd.Offset()
		for i := 0; i < 10000; i++ {
			d, ci, err := rd.Next()
			if err != nil {
				var fe *FormatError
				if err != io.EOF && !errors.As(err, &fe) {
					t.Fatalf("error is neither EOF nor *FormatError: %T %v", err, err)
				}
				return
			}
			if len(d) != ci.CaptureLen || ci.WireLen < ci.CaptureLen || ci.Offset < last-1 {
				t.Fatalf("inconsistent record: len %d %+v (last offset %d)", len(d), ci, last)
			}
			last = rd.Offset()
			var p tcpanalysis.Packet
			p.WireLen = ci.WireLen
			_ = tcpanalysis.Decode(ci.LinkType, d, &p)
		}
	})
}
