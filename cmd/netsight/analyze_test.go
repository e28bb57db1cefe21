package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// writeFixture writes a small capture: one connection with a handshake,
// data, one retransmission, two duplicate ACKs, a zero window and an RST
// from the server. It returns the file name and the offset of each record.
func writeFixture(t *testing.T) (string, []int) {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	cli, srv := net.IP{10, 9, 0, 1}, net.IP{10, 9, 0, 2}
	ts := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var offsets []int
	add := func(after time.Duration, fromServer bool, tcp layers.TCP, payload int) {
		ts = ts.Add(after)
		src, dst := cli, srv
		tcp.SrcPort, tcp.DstPort = 50000, 80
		if fromServer {
			src, dst = srv, cli
			tcp.SrcPort, tcp.DstPort = 80, 50000
		}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: dst, Flags: layers.IPv4DontFragment}
		_ = tcp.SetNetworkLayerForChecksum(ip)
		sb := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
			ip, &tcp, gopacket.Payload(make([]byte, payload))); err != nil {
			t.Fatal(err)
		}
		offsets = append(offsets, buf.Len())
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(sb.Bytes()), Length: len(sb.Bytes())}, sb.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	ws := []layers.TCPOption{{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}}}
	add(0, false, layers.TCP{Seq: 100, SYN: true, Window: 64240, Options: ws}, 0)
	add(time.Millisecond, true, layers.TCP{Seq: 900, Ack: 101, SYN: true, ACK: true, Window: 65160, Options: ws}, 0)
	add(time.Millisecond, false, layers.TCP{Seq: 101, Ack: 901, ACK: true, Window: 500}, 0)
	add(time.Millisecond, false, layers.TCP{Seq: 101, Ack: 901, ACK: true, PSH: true, Window: 500}, 1000)
	add(time.Millisecond, false, layers.TCP{Seq: 1101, Ack: 901, ACK: true, PSH: true, Window: 500}, 1000)
	add(time.Millisecond, true, layers.TCP{Seq: 901, Ack: 1101, ACK: true, Window: 300}, 0)
	add(time.Millisecond, true, layers.TCP{Seq: 901, Ack: 1101, ACK: true, Window: 300}, 0)
	add(time.Millisecond, true, layers.TCP{Seq: 901, Ack: 1101, ACK: true, Window: 300}, 0)
	add(300*time.Millisecond, false, layers.TCP{Seq: 1101, Ack: 901, ACK: true, Window: 500}, 1000)
	add(time.Millisecond, true, layers.TCP{Seq: 901, Ack: 2101, ACK: true, Window: 0}, 0)
	add(time.Millisecond, true, layers.TCP{Seq: 901, Ack: 2101, RST: true, ACK: true}, 0)
	name := filepath.Join(t.TempDir(), "fixture.pcap")
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return name, offsets
}

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := runMain(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestAnalyzeJSON(t *testing.T) {
	file, _ := writeFixture(t)
	code, out, stderr := runCmd("analyze", "--json", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr not empty without a terminal (no progress bar expected): %q", stderr)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"packets": 11, "flows": 1, "retransmissions": 1, "fast_retransmissions": 0,
		"out_of_order": 0, "duplicate_acks": 2, "zero_windows": 1, "resets": 1}
	for k, v := range want {
		got, ok := m[k].(float64)
		if !ok || got != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	flows, ok := m["top_flows"].([]any)
	if !ok || len(flows) != 1 {
		t.Fatalf("top_flows = %v", m["top_flows"])
	}
	f := flows[0].(map[string]any)
	if f["client"] != "10.9.0.1:50000" || f["server"] != "10.9.0.2:80" || f["reset_by"] != "server" || f["retransmissions"] != 1.0 {
		t.Errorf("flow = %v", f)
	}
	cs := f["client_to_server"].(map[string]any)
	if cs["window_scale"] != 7.0 {
		t.Errorf("client window scale = %v", cs["window_scale"])
	}
	if m["partial"] != false {
		t.Errorf("partial = %v", m["partial"])
	}
}

func TestAnalyzeTextAndCSV(t *testing.T) {
	file, _ := writeFixture(t)
	code, out, stderr := runCmd("analyze", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, s := range []string{"Read 11 packets", "retransmissions", "Worst flows", "10.9.0.1:50000 -> 10.9.0.2:80"} {
		if !strings.Contains(out, s) {
			t.Errorf("text output lacks %q:\n%s", s, out)
		}
	}
	code, out, stderr = runCmd("analyze", "--csv", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) != 2 || recs[0][0] != "client" || recs[1][0] != "10.9.0.1:50000" || recs[1][8] != "1" {
		t.Fatalf("csv = %v, %v", recs, err)
	}
}

func TestAnalyzeTruncated(t *testing.T) {
	file, offsets := writeFixture(t)
	data, _ := os.ReadFile(file)
	cut := filepath.Join(t.TempDir(), "cut.pcap")
	// cut inside record 5 (0-based): 5 records are complete
	if err := os.WriteFile(cut, data[:offsets[5]+20], 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd("analyze", "--json", cut)
	if code != 1 || !strings.Contains(stderr, "byte offset") || !strings.Contains(stderr, "truncated") {
		t.Fatalf("exit %d, stderr %q: want exit 1 naming the byte offset", code, stderr)
	}
	code, out, stderr := runCmd("analyze", "--json", "--partial-ok", cut)
	if code != 0 || !strings.Contains(stderr, "warning") {
		t.Fatalf("--partial-ok: exit %d, stderr %q", code, stderr)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	if m["packets"] != 5.0 || m["partial"] != true {
		t.Errorf("packets = %v partial = %v, want 5, true", m["packets"], m["partial"])
	}
	files := m["files"].([]any)
	if off := files[0].(map[string]any)["error_offset"]; off != float64(offsets[5]) {
		t.Errorf("error_offset = %v, want %d", off, offsets[5])
	}
	// not a capture at all
	bad := filepath.Join(t.TempDir(), "bad.pcap")
	_ = os.WriteFile(bad, []byte("hello, this is not a pcap file"), 0o644)
	if code, _, stderr := runCmd("analyze", bad); code != 1 || !strings.Contains(stderr, "byte offset 0") {
		t.Errorf("bad file: exit %d, %q", code, stderr)
	}
	if code, _, _ := runCmd("analyze"); code != 2 {
		t.Errorf("no file: exit %d, want 2", code)
	}
}

// TestAnalyzeNamesWhatItSkipped: a capture of an unsupported link type
// (802.11 radiotap) is named with its frame count, on stderr and in the
// JSON; a VXLAN capture's flow says its encapsulation.
func TestAnalyzeNamesWhatItSkipped(t *testing.T) {
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeIEEE80211Radio); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		data := make([]byte, 40)
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000+int64(i), 0), CaptureLength: len(data), Length: len(data)}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "wifi.pcap")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCmd("analyze", "--json", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "3 frames of link type IEEE802_11_RADIOTAP (127)") {
		t.Errorf("stderr does not name the link type: %q", stderr)
	}
	var m struct {
		Skipped []struct {
			What   string `json:"what"`
			Frames int    `json:"frames"`
		} `json:"skipped"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Skipped) != 1 || m.Skipped[0].What != "link type IEEE802_11_RADIOTAP (127)" || m.Skipped[0].Frames != 3 {
		t.Errorf("skipped = %+v", m.Skipped)
	}
	code, out, _ = runCmd("analyze", file)
	if code != 0 || !strings.Contains(out, "Not decoded: 3 frames of link type IEEE802_11_RADIOTAP (127)") {
		t.Errorf("text output does not name the link type:\n%s", out)
	}
}

func TestAnalyzeEncapsulatedFlow(t *testing.T) {
	plain, _ := writeFixture(t)
	f, err := os.Open(plain)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for {
		data, ci, err := rd.ReadPacketData()
		if err != nil {
			break
		}
		// Ethernet / IPv4 / UDP 4789 / VXLAN around the original frame.
		n := len(data)
		hdr := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00,
			0x45, 0, byte((20 + 8 + 8 + n) >> 8), byte(20 + 8 + 8 + n), 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
			0xc0, 0x00, 0x12, 0xb5, byte((8 + 8 + n) >> 8), byte(8 + 8 + n), 0, 0,
			0x08, 0, 0, 0, 0, 0, 42, 0}
		out := append(hdr, data...)
		ci.CaptureLength, ci.Length = len(out), len(out)
		if err := w.WritePacket(ci, out); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "vxlan.pcap")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCmd("analyze", "--json", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var m struct {
		Retransmissions int               `json:"retransmissions"`
		Encapsulations  map[string]uint64 `json:"encapsulations"`
		TopFlows        []struct {
			Client        string `json:"client"`
			Encapsulation string `json:"encapsulation"`
		} `json:"top_flows"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	if m.Retransmissions != 1 || m.Encapsulations["vxlan"] != 11 || len(m.TopFlows) != 1 ||
		m.TopFlows[0].Client != "10.9.0.1:50000" || m.TopFlows[0].Encapsulation != "vxlan" {
		t.Errorf("report = %+v", m)
	}
}

// TestAnalyzeUnits: --json has no nanosecond fields (every duration is a
// *_seconds float), and the text report and the CSV give one flow the same
// ACK RTT (the mean over both directions' samples).
func TestAnalyzeUnits(t *testing.T) {
	file, _ := writeFixture(t)
	code, out, stderr := runCmd("analyze", "--json", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var m any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if strings.HasSuffix(k, "_ns") || strings.HasSuffix(k, "_ms") {
					t.Errorf("%s.%s: want *_seconds floats, not %s", path, k, k[strings.LastIndex(k, "_"):])
				}
				walk(path+"."+k, x)
			}
		case []any:
			for i, x := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), x)
			}
		}
	}
	walk("", m)
	for _, want := range []string{`"bounds_seconds"`, `"sum_seconds"`, `"mean_seconds"`, `"read_bytes"`} {
		if !strings.Contains(out, want) {
			t.Errorf("JSON lacks %s", want)
		}
	}

	_, text, _ := runCmd("analyze", file)
	_, csvOut, _ := runCmd("analyze", "--csv", file)
	recs, err := csv.NewReader(strings.NewReader(csvOut)).ReadAll()
	if err != nil || len(recs) != 2 {
		t.Fatalf("csv: %v %v", recs, err)
	}
	col := map[string]string{}
	for i, h := range recs[0] {
		col[h] = recs[1][i]
	}
	secs, err := strconv.ParseFloat(col["ack_rtt_mean_seconds"], 64)
	if err != nil || col["ack_rtt_samples"] == "0" {
		t.Fatalf("csv ack_rtt_mean_seconds %q samples %q", col["ack_rtt_mean_seconds"], col["ack_rtt_samples"])
	}
	var line string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, "10.9.0.1:50000 -> 10.9.0.2:80") {
			line = l
		}
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		t.Fatalf("no flow line in:\n%s", text)
	}
	textRTT, err := time.ParseDuration(fields[len(fields)-1])
	if err != nil {
		t.Fatalf("ack rtt column of %q: %v", line, err)
	}
	if csvRTT := time.Duration(secs * 1e9).Round(time.Microsecond); csvRTT != textRTT {
		t.Errorf("text ack rtt %s, csv %s: want one definition", textRTT, csvRTT)
	}
}

// TestAnalyzeCleanCaptureNoWorstFlows: a capture whose only flow has no
// retransmission, zero window, reset or duplicate ACK lists no "worst
// flows" and says so.
func TestAnalyzeCleanCaptureNoWorstFlows(t *testing.T) {
	file, offsets := writeFixture(t)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// The handshake and two data segments: nothing wrong yet.
	clean := filepath.Join(t.TempDir(), "clean.pcap")
	if err := os.WriteFile(clean, data[:offsets[5]], 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCmd("analyze", clean)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(out, "Worst flows") || !strings.Contains(out, "No flow had retransmissions") {
		t.Errorf("clean capture:\n%s", out)
	}
}
