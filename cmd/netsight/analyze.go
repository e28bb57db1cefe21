package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netsight/netsight/tcpanalysis"
	"github.com/netsight/netsight/tcpanalysis/pcapfile"
)

func init() {
	c := &command{name: "analyze", summary: "TCP analysis of pcap/pcapng files: retransmissions, zero windows, RSTs, RTT", order: 20,
		usage: `Usage: netsight analyze [flags] FILE...

Reads pcap and pcapng capture files (gzip-compressed too, as written by
tcpdump -w, tshark, dumpcap) and analyses every TCP connection in them, per
direction, the way Wireshark's tcp.analysis.* does: retransmissions (fast and
spurious ones too), out-of-order segments, duplicate ACKs, zero windows,
window full, keep-alives, resets and who sent them, handshake and ACK RTTs.
docs/analyze.md lists where the counts differ from Wireshark on purpose.
Tunnels (VLAN tags, MPLS, PPPoE, GRE, VXLAN, Geneve, IP in IP) are decoded
to the inner TCP flow; what is not decoded is named with its frame count.
A silent connection is never forgotten unless --idle-timeout is given.

Several files are analysed as one capture, in the order given. The output is
a summary plus the worst flows (most retransmissions, zero windows, resets);
--json and --csv give the same data for scripts.

A malformed or truncated file is an error naming the byte offset (exit 1);
with --partial-ok the packets read before the damage are still reported
(exit 0, with a warning on stderr). A progress bar is drawn when stderr is a
terminal.`,
		examples: `  netsight analyze trace.pcap
  netsight analyze --top 20 a.pcapng b.pcap.gz
  netsight analyze --json trace.pcap | jq '.retransmissions, .top_flows[0]'
  netsight analyze --csv trace.pcap > flows.csv
  netsight analyze --partial-ok cut-short.pcap`}
	c.run = func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := newFlagSet(c, stderr)
		asJSON := fs.Bool("json", false, "print the report as JSON")
		asCSV := fs.Bool("csv", false, "print the worst flows as CSV (one row per flow, with a header)")
		top := fs.Int("top", 10, "number of worst flows to report (0 for none)")
		partialOK := fs.Bool("partial-ok", false, "report what was read before a malformed or truncated record instead of failing")
		maxFlows := fs.Int("max-flows", tcpanalysis.DefaultMaxFlows, "flow table capacity; the least recently seen flow is evicted when full")
		idle := fs.Duration("idle-timeout", 0, "evict open flows idle for this long (capture time); 0: never (closed flows leave after 2m of silence)")
		progress := fs.String("progress", "auto", "progress bar: `auto` (when stderr is a terminal), always, never")
		if err := parseFlags(fs, args, stdout); err != nil {
			return err
		}
		files := fs.Args()
		switch {
		case len(files) == 0:
			return fmt.Errorf("%w: no capture file given", errUsage)
		case *asJSON && *asCSV:
			return fmt.Errorf("%w: --json and --csv are exclusive", errUsage)
		case *top < 0:
			return fmt.Errorf("%w: --top must not be negative", errUsage)
		case *maxFlows <= 0:
			return fmt.Errorf("%w: --max-flows must be positive", errUsage)
		case *idle < 0:
			return fmt.Errorf("%w: --idle-timeout must not be negative", errUsage)
		}
		var showProgress bool
		switch *progress {
		case "auto":
			showProgress = isTerminal(stderr)
		case "always":
			showProgress = true
		case "never":
		default:
			return fmt.Errorf("%w: --progress must be auto, always or never", errUsage)
		}
		rep, err := analyzeFiles(ctx, files, analyzeOptions{
			top: *top, maxFlows: *maxFlows, idle: *idle, progress: showProgress, stderr: stderr,
		})
		if err != nil && (rep == nil || !*partialOK || !rep.Partial) {
			return err
		}
		if err != nil {
			fmt.Fprintf(stderr, "netsight analyze: warning: %v (reporting the %d packets read before it)\n", err, rep.Packets)
		}
		if msg := rep.notDecoded(); msg != "" && rep.mostNotDecoded() {
			fmt.Fprintf(stderr, "netsight analyze: warning: %s\n", msg)
		}
		switch {
		case *asJSON:
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(rep)
		case *asCSV:
			return writeFlowsCSV(stdout, rep.TopFlows)
		}
		writeAnalyzeText(stdout, rep)
		return nil
	}
	register(c)
}

type analyzeOptions struct {
	top      int
	maxFlows int
	idle     time.Duration
	progress bool
	stderr   io.Writer
}

// analyzeReport is the --json output. Its top-level field names are a
// stable interface (see docs/analyze.md).
type analyzeReport struct {
	tcpanalysis.Totals
	Files          []analyzeFile                 `json:"files"`
	Partial        bool                          `json:"partial"`
	Errors         []string                      `json:"errors,omitempty"`
	ElapsedSeconds float64                       `json:"elapsed_seconds"`
	FlowTable      flowTableReport               `json:"flow_table"`
	Encapsulations map[string]uint64             `json:"encapsulations,omitempty"`
	Skipped        []skippedReport               `json:"skipped"`
	PacketSizes    tcpanalysis.Histogram         `json:"packet_size_bytes"`
	PayloadSizes   tcpanalysis.Histogram         `json:"payload_size_bytes"`
	RTT            tcpanalysis.DurationHistogram `json:"rtt"`
	HandshakeRTT   tcpanalysis.DurationHistogram `json:"handshake_rtt"`
	TopFlows       []tcpanalysis.FlowReport      `json:"top_flows"`
}

type analyzeFile struct {
	Name       string `json:"name"`
	Format     string `json:"format,omitempty"`
	Compressed bool   `json:"compressed"`
	Packets    uint64 `json:"packets"`
	Bytes      int64  `json:"read_bytes"`
	Error      string `json:"error,omitempty"`
	// ErrorOffset is the byte offset of the damage, -1 without error.
	ErrorOffset int64 `json:"error_offset"`
}

type flowTableReport struct {
	Capacity        int    `json:"capacity"`
	EvictedIdle     uint64 `json:"evicted_idle"`
	EvictedCapacity uint64 `json:"evicted_capacity"`
	EvictedClosed   uint64 `json:"evicted_closed"`
	ReusedPorts     uint64 `json:"reused_ports"`
}

// skippedReport is one kind of content the decoder skipped.
type skippedReport struct {
	What   string `json:"what"`
	Frames uint64 `json:"frames"`
}

// mostNotDecoded reports whether at least half of the frames gave no IP
// packet (or, with some, no TCP flow was found at all).
func (r *analyzeReport) mostNotDecoded() bool {
	bad := r.NonIP + r.Undecoded
	return bad > 0 && (2*bad >= r.Packets || r.Flows == 0)
}

// notDecoded says which link types, EtherTypes or tunnel payloads were
// skipped and how many frames each, "" when nothing was.
func (r *analyzeReport) notDecoded() string {
	if len(r.Skipped) == 0 && r.Undecoded == 0 {
		return ""
	}
	var parts []string
	for _, s := range r.Skipped {
		parts = append(parts, fmt.Sprintf("%d frames of %s", s.Frames, s.What))
	}
	if r.Undecoded > 0 {
		parts = append(parts, fmt.Sprintf("%d frames with damaged or truncated headers", r.Undecoded))
	}
	return fmt.Sprintf("not decoded: %s (%d of %d frames gave no IP packet)", strings.Join(parts, ", "), r.NonIP+r.Undecoded, r.Packets)
}

// analyzeFiles analyses files as one capture. On a damaged file it returns
// the report of everything read so far (Partial set) and the error.
func analyzeFiles(ctx context.Context, files []string, o analyzeOptions) (*analyzeReport, error) {
	start := time.Now()
	worst := tcpanalysis.NewWorst(o.top)
	idle := o.idle
	if idle == 0 {
		idle = tcpanalysis.NoIdleTimeout
	}
	a := tcpanalysis.NewAnalyzer(tcpanalysis.Config{
		MaxFlows: o.maxFlows, IdleTimeout: idle,
		OnEvict: func(f *tcpanalysis.Flow, _ tcpanalysis.EvictReason) { worst.Offer(f) },
	})
	rep := &analyzeReport{}
	var total int64
	sizes := make([]int64, len(files))
	for i, name := range files {
		st, err := os.Stat(name)
		if err != nil {
			return nil, fmt.Errorf("open capture: %w", err)
		}
		sizes[i] = st.Size()
		total += st.Size()
	}
	var bar *progressBar
	if o.progress {
		bar = newProgressBar(o.stderr, total)
		defer bar.finish()
	}
	var done int64
	var runErr error
	for i, name := range files {
		fr := analyzeFile{Name: name, ErrorOffset: -1}
		err := func() error {
			f, err := os.Open(name)
			if err != nil {
				return fmt.Errorf("open capture: %w", err)
			}
			defer f.Close()
			cr := &countingReader{r: f}
			rd, err := pcapfile.NewReader(cr)
			if err != nil {
				return err
			}
			fr.Format, fr.Compressed = rd.Format().String(), rd.Compressed()
			var tick func()
			if bar != nil {
				tick = func() { bar.set(done + cr.n.Load()) }
			}
			n, err := pcapfile.Analyze(ctx, rd, a, tick)
			fr.Packets = n
			fr.Bytes = rd.Offset()
			return err
		}()
		done += sizes[i]
		if err != nil {
			var fe *pcapfile.FormatError
			if errors.As(err, &fe) {
				fr.ErrorOffset = fe.Offset
				err = fmt.Errorf("%s: %w", name, err)
				rep.Partial = true
			} else if !errors.Is(err, context.Canceled) {
				err = fmt.Errorf("%s: %w", name, err)
			}
			fr.Error = err.Error()
			rep.Errors = append(rep.Errors, err.Error())
			rep.Files = append(rep.Files, fr)
			runErr = err
			break
		}
		rep.Files = append(rep.Files, fr)
	}
	a.Table.Flush()
	rep.Totals = a.Totals
	rep.ElapsedSeconds = time.Since(start).Seconds()
	rep.FlowTable = flowTableReport{
		Capacity:        a.Table.Cap(),
		EvictedIdle:     a.Table.Evictions[tcpanalysis.EvictIdle],
		EvictedCapacity: a.Table.Evictions[tcpanalysis.EvictCapacity],
		EvictedClosed:   a.Table.Evictions[tcpanalysis.EvictClosed],
		ReusedPorts:     a.Table.Evictions[tcpanalysis.EvictReused],
	}
	for i, n := range tcpanalysis.EncapNames() {
		if c := a.Totals.EncapPackets[i]; c > 0 {
			if rep.Encapsulations == nil {
				rep.Encapsulations = map[string]uint64{}
			}
			rep.Encapsulations[n] = c
		}
	}
	kinds, other := a.Skipped()
	rep.Skipped = []skippedReport{}
	for _, k := range kinds {
		rep.Skipped = append(rep.Skipped, skippedReport{What: k.Skip.String(), Frames: k.Frames})
	}
	if other > 0 {
		rep.Skipped = append(rep.Skipped, skippedReport{What: "other kinds", Frames: other})
	}
	rep.PacketSizes, rep.PayloadSizes = a.PacketSize, a.Payload
	rep.RTT, rep.HandshakeRTT = a.RTT, a.Handshake
	rep.TopFlows = worst.Flows()
	if rep.TopFlows == nil {
		rep.TopFlows = []tcpanalysis.FlowReport{}
	}
	if runErr != nil && !rep.Partial {
		return nil, runErr
	}
	return rep, runErr
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progressBar draws "[=====>    ]  42%  123 MB/290 MB" on one line,
// redrawn at most 10 times a second.
type progressBar struct {
	w     io.Writer
	total int64
	last  time.Time
	drawn bool
}

func newProgressBar(w io.Writer, total int64) *progressBar { return &progressBar{w: w, total: total} }

func (b *progressBar) set(n int64) {
	if b.total <= 0 || time.Since(b.last) < 100*time.Millisecond {
		return
	}
	b.last = time.Now()
	frac := float64(n) / float64(b.total)
	if frac > 1 {
		frac = 1
	}
	const width = 30
	fill := int(frac * width)
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
	fmt.Fprintf(b.w, "\r[%s] %3.0f%%  %s/%s", bar, frac*100, humanBytes(n), humanBytes(b.total))
	b.drawn = true
}

func (b *progressBar) finish() {
	if b.drawn {
		fmt.Fprintf(b.w, "\r%s\r", strings.Repeat(" ", 60))
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func writeAnalyzeText(w io.Writer, r *analyzeReport) {
	var fileBytes int64
	for _, f := range r.Files {
		fileBytes += f.Bytes
	}
	fmt.Fprintf(w, "Read %d packets (%s of capture) from %d file(s) in %.2fs; %d TCP flows.\n",
		r.Packets, humanBytes(fileBytes), len(r.Files), r.ElapsedSeconds, r.Flows)
	if r.Partial {
		fmt.Fprintf(w, "PARTIAL: %s\n", strings.Join(r.Errors, "; "))
	}
	fmt.Fprintf(w, "Packets: %d IPv4, %d IPv6, %d TCP, %d UDP, %d other IP, %d non-IP, %d undecodable, %d fragments.\n",
		r.IPv4, r.IPv6, r.TCP, r.UDP, r.OtherIP, r.NonIP, r.Undecoded, r.Fragments)
	if len(r.Encapsulations) > 0 {
		var parts []string
		for _, n := range tcpanalysis.EncapNames() {
			if c := r.Encapsulations[n]; c > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", c, n))
			}
		}
		fmt.Fprintf(w, "Encapsulated: %s.\n", strings.Join(parts, ", "))
	}
	if msg := r.notDecoded(); msg != "" {
		fmt.Fprintf(w, "Not%s.\n", strings.TrimPrefix(msg, "not"))
	}
	fmt.Fprintln(w)
	rows := []struct {
		name string
		v    uint64
		help string
	}{
		{"retransmissions", r.Retransmissions, "all kinds, like tcp.analysis.retransmission"},
		{"  fast", r.FastRetransmissions, "after 2+ duplicate ACKs"},
		{"  spurious", r.SpuriousRetransmissions, "data already acknowledged"},
		{"out of order", r.OutOfOrder, "bytes not seen before, arriving late"},
		{"duplicate ACKs", r.DuplicateAcks, ""},
		{"zero windows", r.ZeroWindows, "receiver's buffer full"},
		{"zero-window probes", r.ZeroWindowProbes, ""},
		{"window full", r.WindowFull, "sender filled the receiver's window"},
		{"keep-alives", r.KeepAlives, ""},
		{"lost segments", r.LostSegments, "data not captured (capture loss or upstream)"},
		{"resets (RST)", r.Resets, ""},
		{"SYN / FIN", 0, fmt.Sprintf("%d / %d", r.Syns, r.Fins)},
	}
	fmt.Fprintln(w, "TCP analysis:")
	for _, row := range rows {
		if row.name == "SYN / FIN" {
			fmt.Fprintf(w, "  %-20s %12s\n", row.name, row.help)
			continue
		}
		if row.help != "" {
			fmt.Fprintf(w, "  %-20s %12d   %s\n", row.name, row.v, row.help)
		} else {
			fmt.Fprintf(w, "  %-20s %12d\n", row.name, row.v)
		}
	}
	if r.RTT.Count > 0 {
		fmt.Fprintf(w, "  %-20s %12s   %d samples\n", "mean ACK RTT", (r.RTT.Sum / time.Duration(r.RTT.Count)).Round(time.Microsecond), r.RTT.Count)
	}
	if r.FlowTable.EvictedCapacity > 0 {
		fmt.Fprintf(w, "  flow table full: %d flows evicted early (raise --max-flows above %d)\n", r.FlowTable.EvictedCapacity, r.FlowTable.Capacity)
	}
	var troubled []tcpanalysis.FlowReport
	for _, f := range r.TopFlows {
		if flowTroubled(f) {
			troubled = append(troubled, f)
		}
	}
	if len(troubled) == 0 {
		if r.Flows > 0 && len(r.TopFlows) > 0 {
			fmt.Fprintln(w, "\nNo flow had retransmissions, zero windows, resets, duplicate ACKs or out-of-order segments.")
		}
		return
	}
	fmt.Fprintf(w, "\nWorst flows (client -> server; ack rtt: mean of both directions' ACK RTT samples):\n")
	fmt.Fprintf(w, "  %-44s %9s %8s %6s %6s %7s %7s %4s %10s %10s\n",
		"flow", "packets", "retrans", "fast", "ooo", "dupack", "zerowin", "rst", "handshake", "ack rtt")
	for _, f := range troubled {
		cs, sc := f.ClientToServer, f.ServerToClient
		hs := "-"
		if f.HandshakeSYNToSYNACK > 0 || f.HandshakeSYNACKToACK > 0 {
			hs = time.Duration((f.HandshakeSYNToSYNACK + f.HandshakeSYNACKToACK) * 1e9).Round(time.Microsecond).String()
		}
		rtt := "-"
		if mean, n := ackRTT(f); n > 0 {
			rtt = mean.Round(time.Microsecond).String()
		}
		rst := strconv.FormatUint(cs.Resets+sc.Resets, 10)
		if f.ResetBy != "" {
			rst += f.ResetBy[:1]
		}
		fmt.Fprintf(w, "  %-44s %9d %8d %6d %6d %7d %7d %4s %10s %10s\n",
			f.Client+" -> "+f.Server, f.Packets, f.Retransmissions,
			cs.FastRetransmissions+sc.FastRetransmissions, cs.OutOfOrder+sc.OutOfOrder,
			cs.DuplicateAcks+sc.DuplicateAcks, cs.ZeroWindows+sc.ZeroWindows, rst, hs, rtt)
	}
}

var flowCSVHeader = []string{
	"client", "server", "ip_version", "first_seen", "last_seen", "duration_seconds", "packets", "bytes",
	"retransmissions", "fast_retransmissions", "spurious_retransmissions", "out_of_order", "duplicate_acks",
	"zero_windows", "window_full", "keep_alives", "lost_segments", "resets", "reset_by",
	"client_window_scale", "server_window_scale", "handshake_syn_to_synack_seconds", "handshake_synack_to_ack_seconds",
	"ack_rtt_mean_seconds", "ack_rtt_samples", "client_to_server_packets", "server_to_client_packets",
}

func writeFlowsCSV(w io.Writer, flows []tcpanalysis.FlowReport) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(flowCSVHeader); err != nil {
		return err
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	fl := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	for _, f := range flows {
		cs, sc := f.ClientToServer, f.ServerToClient
		rttMean, rttN := ackRTT(f)
		rec := []string{
			f.Client, f.Server, strconv.Itoa(int(f.IPVersion)), f.FirstSeen.Format(time.RFC3339Nano), f.LastSeen.Format(time.RFC3339Nano),
			fl(f.Duration), u(f.Packets), u(f.Bytes),
			u(f.Retransmissions), u(cs.FastRetransmissions + sc.FastRetransmissions), u(cs.SpuriousRetransmissions + sc.SpuriousRetransmissions),
			u(cs.OutOfOrder + sc.OutOfOrder), u(cs.DuplicateAcks + sc.DuplicateAcks), u(cs.ZeroWindows + sc.ZeroWindows),
			u(cs.WindowFull + sc.WindowFull), u(cs.KeepAlives + sc.KeepAlives), u(cs.LostSegments + sc.LostSegments),
			u(cs.Resets + sc.Resets), f.ResetBy, strconv.Itoa(int(cs.WScale)), strconv.Itoa(int(sc.WScale)),
			fl(f.HandshakeSYNToSYNACK), fl(f.HandshakeSYNACKToACK),
			fl(rttMean.Seconds()), u(rttN), u(cs.Packets), u(sc.Packets),
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// ackRTT is the RTT the text report and the CSV both give for a flow: the
// mean of its ACK RTT samples in both directions, and their number.
func ackRTT(f tcpanalysis.FlowReport) (time.Duration, uint64) {
	n := f.ClientToServer.RTT.Count + f.ServerToClient.RTT.Count
	if n == 0 {
		return 0, 0
	}
	return (f.ClientToServer.RTT.Sum + f.ServerToClient.RTT.Sum) / time.Duration(n), n
}

// flowTroubled reports whether a flow shows any of the problems the worst
// flows are ranked by (a clean flow is not "worst" of anything).
func flowTroubled(f tcpanalysis.FlowReport) bool {
	cs, sc := f.ClientToServer, f.ServerToClient
	return f.Retransmissions+cs.ZeroWindows+sc.ZeroWindows+cs.Resets+sc.Resets+
		cs.DuplicateAcks+sc.DuplicateAcks+cs.OutOfOrder+sc.OutOfOrder > 0
}
