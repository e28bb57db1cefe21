package top

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// Report is `netsight top --once --json`: one snapshot, its rates taken
// against an earlier one. Units follow the API: seconds as *_seconds
// floats, bytes as *_bytes, rates per second.
type Report struct {
	Time            time.Time    `json:"time"`
	Source          string       `json:"source"`
	Backend         string       `json:"backend"`
	IntervalSeconds float64      `json:"interval_seconds"`
	Sort            string       `json:"sort"`
	Filter          string       `json:"filter,omitempty"`
	Truncated       bool         `json:"truncated"`
	Connections     []Connection `json:"connections"`
	Remotes         []RemoteJSON `json:"remotes"`
	Host            Host         `json:"host"`
}

// Connection is one connection: every field of GET /api/v1/flows, plus
// the namespace's name and the rates.
type Connection struct {
	Row Row
}

// MarshalJSON writes the flow API's fields and top's own after them.
func (c Connection) MarshalJSON() ([]byte, error) {
	rec, err := json.Marshal(c.Row.Rec)
	if err != nil {
		return nil, err
	}
	extra, err := json.Marshal(struct {
		NetNSName       string  `json:"netns_name,omitempty"`
		Workload        string  `json:"workload,omitempty"`
		Place           string  `json:"place"`
		StateName       string  `json:"state_name"`
		SendRate        float64 `json:"send_rate_bytes_per_second"`
		RecvRate        float64 `json:"receive_rate_bytes_per_second"`
		RetransRate     float64 `json:"retransmissions_per_second"`
		ThroughputBytes float64 `json:"throughput_bytes_per_second"`
	}{c.Row.NetNSName, c.Row.Workload, c.Row.Place(), stateName(&c.Row.Rec), c.Row.SendRate, c.Row.RecvRate, c.Row.RetransRate, c.Row.BytesRate()})
	if err != nil {
		return nil, err
	}
	if len(rec) < 2 || rec[len(rec)-1] != '}' || extra[0] != '{' {
		return nil, fmt.Errorf("connection %d: unexpected record JSON", c.Row.Rec.ID)
	}
	var b bytes.Buffer
	b.Write(rec[:len(rec)-1])
	b.WriteByte(',')
	b.Write(extra[1:])
	return b.Bytes(), nil
}

// RemoteJSON is one remote address's connections summed.
type RemoteJSON struct {
	RemoteAddr      string   `json:"remote_addr"`
	ServerPorts     []uint16 `json:"server_ports"`
	Connections     int      `json:"connections"`
	FailedConnects  int      `json:"failed_connects"`
	SendRate        float64  `json:"send_rate_bytes_per_second"`
	RecvRate        float64  `json:"receive_rate_bytes_per_second"`
	RetransRate     float64  `json:"retransmissions_per_second"`
	Retransmissions uint64   `json:"retransmissions"`
	MaxSRTTSeconds  float64  `json:"max_srtt_seconds"`
	Processes       []string `json:"processes"`
}

// ReportOptions shape a Report.
type ReportOptions struct {
	Source string
	Sort   SortKey
	Filter Filter
	// Limit keeps the first connections and remotes (0: all).
	Limit int
	Names Names
}

// BuildReport ranks cur's connections with rates since prev (nil: over
// each connection's life).
func BuildReport(prev, cur *Snapshot, o ReportOptions) Report {
	var pc map[uint64]counters
	var pt time.Time
	rep := Report{Time: cur.Time, Source: o.Source, Backend: cur.Backend, Sort: o.Sort.String(),
		Filter: o.Filter.String(), Truncated: cur.Truncated, Host: cur.Host,
		Connections: []Connection{}, Remotes: []RemoteJSON{}}
	if prev != nil {
		pc, pt = countersOf(prev), prev.Time
		rep.IntervalSeconds = cur.Time.Sub(prev.Time).Seconds()
	}
	all := rates(cur, pc, pt, o.Names)
	var rows []Row
	for i := range all {
		if o.Filter.Match(&all[i]) {
			rows = append(rows, all[i])
		}
	}
	SortRows(rows, o.Sort)
	for _, r := range Aggregate(rows, o.Sort) {
		rep.Remotes = append(rep.Remotes, RemoteJSON{RemoteAddr: addrString(r.Addr), ServerPorts: nonNil(r.Ports),
			Connections: r.Connections, FailedConnects: r.Failed, SendRate: r.SendRate, RecvRate: r.RecvRate,
			RetransRate: r.RetransRate, Retransmissions: r.Retransmits, MaxSRTTSeconds: r.MaxSRTT.Seconds(),
			Processes: nonNil(r.Processes)})
	}
	for _, r := range rows {
		rep.Connections = append(rep.Connections, Connection{Row: r})
	}
	if o.Limit > 0 {
		rep.Connections = rep.Connections[:min(len(rep.Connections), o.Limit)]
		rep.Remotes = rep.Remotes[:min(len(rep.Remotes), o.Limit)]
	}
	if rep.Host.Collectors == nil {
		rep.Host.Collectors = []CollectorState{}
	}
	if rep.Host.NICs == nil {
		rep.Host.NICs = []NIC{}
	}
	if rep.Host.Probes == nil {
		rep.Host.Probes = []Probe{}
	}
	return rep
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// RenderReport prints a report as plain text tables (--once without
// --json): the connections, then the remotes, at width cells.
func RenderReport(rep Report, width int) string {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	st := NewStyles(r, false)
	m := &Model{snap: &Snapshot{Time: rep.Time}}
	var b strings.Builder
	rows := make([]Row, len(rep.Connections))
	for i, c := range rep.Connections {
		rows[i] = c.Row
	}
	sk, _ := ParseSortKey(rep.Sort)
	fmt.Fprintf(&b, "netsight top · %s (%s) · %s · %d connections · sort %s\n", rep.Source, rep.Backend,
		rep.Time.Format(time.RFC3339), len(rows), rep.Sort)
	for _, l := range renderTable(m.connColumns(), rows, width, len(rows)+1, 0, sk, st, nil) {
		b.WriteString(strings.TrimRight(l, " ") + "\n")
	}
	return b.String()
}
