package top

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netsight/netsight/flow"
)

// SortKey orders the connections.
type SortKey int

// Sort keys, in the order the s key cycles through them.
const (
	SortRetrans SortKey = iota
	SortRTT
	SortThroughput
	SortFailures
	numSortKeys
)

var sortNames = [...]string{"retrans", "rtt", "throughput", "failures"}

func (k SortKey) String() string {
	if k >= 0 && k < numSortKeys {
		return sortNames[k]
	}
	return "sort_" + strconv.Itoa(int(k))
}

// ParseSortKey parses retrans, rtt, throughput (or bytes) and failures.
func ParseSortKey(s string) (SortKey, error) {
	switch strings.ToLower(s) {
	case "retrans", "retransmissions", "retransmits":
		return SortRetrans, nil
	case "rtt":
		return SortRTT, nil
	case "throughput", "bytes":
		return SortThroughput, nil
	case "failures", "fail", "connect-failures":
		return SortFailures, nil
	}
	return 0, fmt.Errorf("sort %q: want retrans, rtt, throughput or failures", s)
}

// Names name what a record only numbers (a *kernel.Names).
type Names interface {
	// NetNS is the `ip netns` name of a namespace inode, "" if none.
	NetNS(inode uint32) string
	// Workload is the container, pod or unit of a process (its cgroup ID
	// tells a reused pid apart), "" if none.
	Workload(pid uint32, cgroupID uint64) string
}

// Label is what a source already knows of a connection's place (an
// agent's flow API: netns_name, workload, host_netns).
type Label struct {
	NetNSName, Workload string
	HostNetNS           bool
}

// Row is one connection with its rates over the last refresh.
type Row struct {
	Rec flow.Record
	// NetNSName is the namespace's `ip netns` name, Workload the
	// container, pod or unit of its cgroup; "" when none.
	NetNSName, Workload string
	// HostNetNS is set when the connection is in the host's namespace.
	HostNetNS bool
	// Rates per second over the interval since the previous snapshot (or
	// the connection's life when it is new or there is no previous one).
	SendRate, RecvRate, RetransRate float64
}

// BytesRate is the throughput both ways.
func (r *Row) BytesRate() float64 { return r.SendRate + r.RecvRate }

// Place is where the connection lives: "host" for the host's namespace,
// else the namespace's `ip netns` name, else the workload (container or
// pod), else the namespace inode; "" when unknown.
func (r *Row) Place() string {
	switch {
	case r.HostNetNS:
		return "host"
	case r.NetNSName != "":
		return r.NetNSName
	case r.Workload != "":
		return r.Workload
	case r.Rec.NetNS != 0:
		return strconv.FormatUint(uint64(r.Rec.NetNS), 10)
	}
	return ""
}

// counters are the totals a rate is taken from.
type counters struct {
	sent, recv, retrans uint64
}

// rates derives rows from snap given the previous snapshot's counters
// (nil when there is none).
func rates(snap *Snapshot, prev map[uint64]counters, prevTime time.Time, names Names) []Row {
	rows := make([]Row, len(snap.Flows))
	for i := range snap.Flows {
		r := &rows[i]
		r.Rec = snap.Flows[i]
		if l, ok := snap.Labels[r.Rec.ID]; ok {
			r.NetNSName, r.Workload, r.HostNetNS = l.NetNSName, l.Workload, l.HostNetNS
		} else {
			r.HostNetNS = r.Rec.IsHostNetNS()
			if names != nil {
				if !r.HostNetNS {
					r.NetNSName = names.NetNS(r.Rec.NetNS)
				}
				r.Workload = names.Workload(r.Rec.PID, r.Rec.CgroupID)
			}
		}
		p, seen := prev[r.Rec.ID]
		start := r.Rec.Start
		var since time.Time
		switch {
		case seen && !prevTime.IsZero():
			since = prevTime
		case !start.IsZero() && (prevTime.IsZero() || start.After(prevTime)):
			// New since the last snapshot, or no last snapshot: the
			// connection's whole life.
			since, p = start, counters{}
		default:
			continue // older but unseen (beyond the source's limit then): no rate yet
		}
		end := snap.Time
		dt := end.Sub(since).Seconds()
		if dt <= 0 {
			continue
		}
		dt = max(dt, 0.1) // a connection a few µs old: no absurd rate
		delta := func(now, before uint64) float64 {
			if now < before {
				return 0
			}
			return float64(now-before) / dt
		}
		r.SendRate = delta(r.Rec.BytesSent, p.sent)
		r.RecvRate = delta(r.Rec.BytesReceived, p.recv)
		r.RetransRate = delta(r.Rec.Retransmits, p.retrans)
	}
	return rows
}

func countersOf(snap *Snapshot) map[uint64]counters {
	m := make(map[uint64]counters, len(snap.Flows))
	for i := range snap.Flows {
		r := &snap.Flows[i]
		m[r.ID] = counters{r.BytesSent, r.BytesReceived, r.Retransmits}
	}
	return m
}

// SortRows orders rows by key, largest first; ties open before closed,
// then newest first, then by connection ID.
func SortRows(rows []Row, key SortKey) {
	sorted := sortedRows(rows, key, nil)
	copy(rows, sorted)
}

// sortedRows returns the rows that pass keep (nil: all) in key's order,
// in a new slice. It sorts indices, not the large rows, and copies each
// kept row once; the order is total (the ID breaks ties).
func sortedRows(rows []Row, key SortKey, keep func(*Row) bool) []Row {
	idx := make([]int32, 0, len(rows))
	for i := range rows {
		if keep == nil || keep(&rows[i]) {
			idx = append(idx, int32(i))
		}
	}
	slices.SortFunc(idx, func(i, j int32) int { return compareRows(&rows[i], &rows[j], key) })
	out := make([]Row, len(idx))
	for i, j := range idx {
		out[i] = rows[j]
	}
	return out
}

func compareRows(a, b *Row, key SortKey) int {
	var c int
	switch key {
	case SortRetrans:
		c = cmp.Or(cmp.Compare(b.RetransRate, a.RetransRate), cmp.Compare(b.Rec.Retransmits, a.Rec.Retransmits),
			cmp.Compare(b.BytesRate(), a.BytesRate()))
	case SortRTT:
		c = cmp.Or(cmp.Compare(b.Rec.SRTT, a.Rec.SRTT), cmp.Compare(b.RetransRate, a.RetransRate))
	case SortThroughput:
		c = cmp.Or(cmp.Compare(b.BytesRate(), a.BytesRate()), cmp.Compare(b.Rec.BytesSent+b.Rec.BytesReceived, a.Rec.BytesSent+a.Rec.BytesReceived))
	case SortFailures:
		c = cmp.Or(cmp.Compare(b2i(b.Rec.ConnectFailed), b2i(a.Rec.ConnectFailed)),
			cmp.Compare(b.Rec.SynRetransmits, a.Rec.SynRetransmits),
			cmp.Compare(b.Rec.RSTReceived, a.Rec.RSTReceived),
			cmp.Compare(b.RetransRate, a.RetransRate))
	}
	if c != 0 {
		return c
	}
	return cmp.Or(cmp.Compare(b2i(a.Rec.Closed), b2i(b.Rec.Closed)), b.Rec.Start.Compare(a.Rec.Start),
		cmp.Compare(a.Rec.ID, b.Rec.ID))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Filter selects rows: every term must match. Terms are remote:ADDR|CIDR,
// port:N (local or remote), proc:NAME (a substring of the command name, or
// a pid), netns:NAME, or a bare word matched against the remote address,
// both ports, the process and the namespace name.
type Filter struct {
	text  string
	terms []term
}

type term struct {
	kind   string // remote, port, proc, netns, any
	prefix netip.Prefix
	port   uint16
	word   string
}

// ParseFilter parses a filter; "" matches everything.
func ParseFilter(s string) (Filter, error) {
	f := Filter{text: strings.TrimSpace(s)}
	for _, w := range strings.Fields(s) {
		k, v, ok := strings.Cut(w, ":")
		if !ok || strings.Count(w, ":") > 1 && k != "remote" {
			// A bare word (an IPv6 address has several colons).
			f.terms = append(f.terms, term{kind: "any", word: strings.ToLower(w)})
			continue
		}
		t := term{kind: strings.ToLower(k)}
		switch t.kind {
		case "remote":
			p, err := flow.ParsePrefix(v)
			if err != nil {
				return Filter{}, fmt.Errorf("filter %q: %w", w, err)
			}
			t.prefix = p
		case "port":
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil || n == 0 {
				return Filter{}, fmt.Errorf("filter %q: port must be 1-65535", w)
			}
			t.port = uint16(n)
		case "proc", "process", "netns":
			if t.kind == "process" {
				t.kind = "proc"
			}
			if v == "" {
				return Filter{}, fmt.Errorf("filter %q: empty %s", w, t.kind)
			}
			t.word = strings.ToLower(v)
		default:
			return Filter{}, fmt.Errorf("filter %q: want remote:, port:, proc:, netns: or a bare word", w)
		}
		f.terms = append(f.terms, t)
	}
	return f, nil
}

// Pushdown is the part of the filter a source applies itself (the flow
// API's remote and port parameters), so that its connection limit counts
// matching connections only.
func (f Filter) Pushdown() flow.Filter {
	var out flow.Filter
	for _, t := range f.terms {
		switch {
		case t.kind == "remote" && !out.Remote.IsValid():
			out.Remote = t.prefix
		case t.kind == "port" && out.Port == 0:
			out.Port = t.port
		}
	}
	return out
}

// String is the filter as typed.
func (f Filter) String() string { return f.text }

// Empty reports whether the filter matches everything.
func (f Filter) Empty() bool { return len(f.terms) == 0 }

// Match reports whether r passes every term.
func (f Filter) Match(r *Row) bool {
	for _, t := range f.terms {
		if !t.match(r) {
			return false
		}
	}
	return true
}

func (t term) match(r *Row) bool {
	rec := &r.Rec
	switch t.kind {
	case "remote":
		return rec.Remote.IsValid() && t.prefix.Contains(rec.Remote.Addr().Unmap())
	case "port":
		return rec.Local.Port() == t.port || rec.Remote.Port() == t.port
	case "proc":
		return strings.Contains(strings.ToLower(rec.Comm), t.word) || strconv.FormatUint(uint64(rec.PID), 10) == t.word
	case "netns":
		return strings.Contains(strings.ToLower(r.Place()), t.word) || strings.Contains(strings.ToLower(r.Workload), t.word) ||
			strconv.FormatUint(uint64(rec.NetNS), 10) == t.word
	}
	w := t.word
	return strings.Contains(addrString(rec.Remote.Addr()), w) ||
		strconv.Itoa(int(rec.Remote.Port())) == w || strconv.Itoa(int(rec.Local.Port())) == w ||
		strings.Contains(strings.ToLower(rec.Comm), w) || strings.Contains(strings.ToLower(r.Place()), w) ||
		strings.Contains(strings.ToLower(r.Workload), w)
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.Unmap().String()
}

// Remote sums the connections to one remote address.
type Remote struct {
	Addr        netip.Addr
	Connections int
	Failed      int
	SendRate    float64
	RecvRate    float64
	RetransRate float64
	Retransmits uint64
	// MaxSRTT is the largest smoothed RTT among the connections.
	MaxSRTT time.Duration
	// Processes are the distinct command names, sorted (at most 4).
	Processes []string
	// Ports are the distinct server ports, sorted (at most 4).
	Ports []uint16
}

// BytesRate is the throughput both ways.
func (r *Remote) BytesRate() float64 { return r.SendRate + r.RecvRate }

// Aggregate sums rows per remote address and sorts the result by key.
func Aggregate(rows []Row, key SortKey) []Remote {
	idx := map[netip.Addr]int{}
	var out []Remote
	for i := range rows {
		r := &rows[i]
		a := r.Rec.Remote.Addr().Unmap()
		j, ok := idx[a]
		if !ok {
			j = len(out)
			idx[a] = j
			out = append(out, Remote{Addr: a})
		}
		g := &out[j]
		g.Connections++
		if r.Rec.ConnectFailed {
			g.Failed++
		}
		g.SendRate += r.SendRate
		g.RecvRate += r.RecvRate
		g.RetransRate += r.RetransRate
		g.Retransmits += r.Rec.Retransmits
		g.MaxSRTT = max(g.MaxSRTT, r.Rec.SRTT)
		if c := r.Rec.Comm; c != "" && !slices.Contains(g.Processes, c) && len(g.Processes) < 4 {
			g.Processes = append(g.Processes, c)
		}
		if p := r.Rec.ServerPort(); p != 0 && !slices.Contains(g.Ports, p) && len(g.Ports) < 4 {
			g.Ports = append(g.Ports, p)
		}
	}
	for i := range out {
		slices.Sort(out[i].Processes)
		slices.Sort(out[i].Ports)
	}
	slices.SortStableFunc(out, func(a, b Remote) int {
		var c int
		switch key {
		case SortRetrans:
			c = cmp.Or(cmp.Compare(b.RetransRate, a.RetransRate), cmp.Compare(b.Retransmits, a.Retransmits), cmp.Compare(b.BytesRate(), a.BytesRate()))
		case SortRTT:
			c = cmp.Compare(b.MaxSRTT, a.MaxSRTT)
		case SortThroughput:
			c = cmp.Compare(b.BytesRate(), a.BytesRate())
		case SortFailures:
			c = cmp.Or(cmp.Compare(b.Failed, a.Failed), cmp.Compare(b.RetransRate, a.RetransRate))
		}
		return cmp.Or(c, a.Addr.Compare(b.Addr))
	})
	return out
}
