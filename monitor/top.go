package monitor

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/netsight/netsight/monitor/topology"
)

// Top contributor queries: ranking metrics and groupings.
var (
	TopMetrics  = []string{"retransmits", "rtos", "bytes", "rtt", "connect_failures"}
	TopGroupBys = []string{"remote", "remote_port", "local", "process"}
)

// MaxTopWindow is the longest window a top query covers (the 1 min slots).
const MaxTopWindow = CoarseSlot * CoarseSlots

// TopQuery asks for the top contributors of one monitor (Monitor), or of
// all traffic by category (Monitor "", Category optional: insights).
type TopQuery struct {
	Monitor  string
	Category string
	Metric   string
	GroupBy  string
	Window   time.Duration
	Limit    int
}

// Row is one contributor over the query's window.
type Row struct {
	Key map[string]any `json:"key"`
	// Category and Zone of the remote side ("" when the row mixes several).
	Category        string    `json:"category"`
	Zone            string    `json:"zone"`
	Retransmits     uint64    `json:"retransmits"`
	RTOs            uint64    `json:"rtos"`
	BytesSent       uint64    `json:"bytes_sent"`
	BytesReceived   uint64    `json:"bytes_received"`
	Connections     uint64    `json:"connections"`
	ConnectFailures uint64    `json:"connect_failures"`
	RTTP50          float64   `json:"rtt_p50_seconds"`
	FirstSeen       time.Time `json:"first_seen"`
	LastSeen        time.Time `json:"last_seen"`
	rtt             hist
	sortKey         string
}

// CategoryTotals are one category over the window (insights).
type CategoryTotals struct {
	Category        string  `json:"category"`
	BytesSent       uint64  `json:"bytes_sent"`
	BytesReceived   uint64  `json:"bytes_received"`
	Retransmits     uint64  `json:"retransmits"`
	RTOs            uint64  `json:"rtos"`
	Connections     uint64  `json:"connections"`
	ConnectFailures uint64  `json:"connect_failures"`
	RTTP50          float64 `json:"rtt_p50_seconds"`
}

// Normalize fills defaults and checks the query (errors name the
// parameter).
func (q *TopQuery) Normalize() error {
	if q.Metric == "" {
		q.Metric = "retransmits"
	}
	if q.GroupBy == "" {
		q.GroupBy = "remote"
	}
	if q.Window == 0 {
		q.Window = 5 * time.Minute
	}
	if q.Limit == 0 {
		q.Limit = 10
	}
	switch {
	case !slices.Contains(TopMetrics, q.Metric):
		return fmt.Errorf("metric %q: want one of %v", q.Metric, TopMetrics)
	case !slices.Contains(TopGroupBys, q.GroupBy):
		return fmt.Errorf("group_by %q: want one of %v", q.GroupBy, TopGroupBys)
	case q.Window < FineSlot || q.Window > MaxTopWindow:
		return fmt.Errorf("window %s: want 10s to 1h", q.Window)
	case q.Limit < 1 || q.Limit > 1000:
		return fmt.Errorf("limit %d: want 1 to 1000", q.Limit)
	case q.Category != "" && topology.CategoryIndex(q.Category) < 0:
		return fmt.Errorf("category %q: want one of %v", q.Category, topology.Categories)
	}
	return nil
}

// ErrNoMonitor is returned by Top for a monitor that does not exist.
var ErrNoMonitor = fmt.Errorf("no such monitor")

// Top ranks the groups of q over its window ending at now.
func (e *Engine) Top(q TopQuery, now time.Time) ([]Row, error) {
	if err := q.Normalize(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	bit, all := -1, q.Monitor == "" || q.Monitor == AllMonitor
	if !all {
		for i, s := range e.scopes[1:] {
			if s.name == q.Monitor {
				bit = i
			}
		}
		if bit < 0 {
			return nil, fmt.Errorf("%w %q", ErrNoMonitor, q.Monitor)
		}
	}
	cat := topology.CategoryIndex(q.Category)
	fine := q.Window <= FineSlot*FineSlots
	var from, to int64
	if fine {
		from, to = span(now, q.Window, fineWidth)
	} else {
		from, to = span(now, q.Window, coarseWidth)
	}
	rows := map[string]*Row{}
	for g := e.head; g != nil; g = g.next {
		if all && !g.inAll || !all && g.mask&(1<<bit) == 0 || cat >= 0 && g.cat != cat {
			continue
		}
		var l lite
		n := 0
		if fine {
			g.fine.each(from, to, func(a *acc) {
				n++
				l.bytesSent += a.bytesSent
				l.bytesRecv += a.bytesRecv
				l.retrans += a.retrans
				l.rtos += a.rtos
				l.newConns += a.newConns
				l.closed += a.closed
				l.failures += a.refused + a.timeout + a.reset
				l.rtt.merge(&a.rtt)
			})
		} else {
			g.coarse.each(from, to, func(a *lite) {
				n++
				l.bytesSent += a.bytesSent
				l.bytesRecv += a.bytesRecv
				l.retrans += a.retrans
				l.rtos += a.rtos
				l.newConns += a.newConns
				l.closed += a.closed
				l.failures += a.failures
				l.rtt.merge(&a.rtt)
			})
		}
		if n == 0 && g.open == 0 {
			continue
		}
		key, sk := rowKey(q.GroupBy, &g.key)
		r := rows[sk]
		if r == nil {
			r = &Row{Key: key, sortKey: sk, Category: g.rp.Category, Zone: g.rp.Zone, FirstSeen: g.first, LastSeen: g.last}
			rows[sk] = r
		}
		if r.Category != g.rp.Category {
			r.Category = ""
		}
		if r.Zone != g.rp.Zone {
			r.Zone = ""
		}
		if g.first.Before(r.FirstSeen) {
			r.FirstSeen = g.first
		}
		if g.last.After(r.LastSeen) {
			r.LastSeen = g.last
		}
		r.BytesSent += l.bytesSent
		r.BytesReceived += l.bytesRecv
		r.Retransmits += l.retrans
		r.RTOs += l.rtos
		r.ConnectFailures += l.failures
		r.Connections += uint64(max(g.open-int64(l.newConns)+int64(l.closed), 0)) + l.newConns
		r.rtt.merge(&l.rtt)
	}
	out := make([]Row, 0, len(rows))
	for _, r := range rows {
		r.RTTP50 = r.rtt.quantile(0.5)
		out = append(out, *r)
	}
	metric := func(r *Row) float64 {
		switch q.Metric {
		case "rtos":
			return float64(r.RTOs)
		case "bytes":
			return float64(r.BytesSent + r.BytesReceived)
		case "rtt":
			return r.RTTP50
		case "connect_failures":
			return float64(r.ConnectFailures)
		}
		return float64(r.Retransmits)
	}
	slices.SortFunc(out, func(a, b Row) int {
		if c := cmp.Compare(metric(&b), metric(&a)); c != 0 {
			return c
		}
		if c := cmp.Compare(b.BytesSent+b.BytesReceived, a.BytesSent+a.BytesReceived); c != 0 {
			return c
		}
		return cmp.Compare(a.sortKey, b.sortKey)
	})
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

func rowKey(by string, k *groupKey) (map[string]any, string) {
	switch by {
	case "remote_port":
		return map[string]any{"remote_port": k.port}, strconv.Itoa(int(k.port))
	case "local":
		return map[string]any{"local": addrStr(k.local)}, addrStr(k.local)
	case "process":
		return map[string]any{"process": k.comm}, k.comm
	}
	return map[string]any{"remote": addrStr(k.remote)}, addrStr(k.remote)
}

func addrStr(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// Categories returns the per-category totals over window ending at now
// (each connection once, as "all").
func (e *Engine) Categories(window time.Duration, now time.Time) []CategoryTotals {
	e.mu.Lock()
	defer e.mu.Unlock()
	fine := window <= FineSlot*FineSlots
	out := make([]CategoryTotals, 0, len(e.cats))
	for _, s := range e.cats {
		var a acc
		if fine {
			from, to := span(now, window, fineWidth)
			s.fine.each(from, to, func(x *acc) { a.merge(x) })
		} else {
			from, to := span(now, window, coarseWidth)
			s.coarse.each(from, to, func(x *acc) { a.merge(x) })
		}
		out = append(out, CategoryTotals{Category: s.name, BytesSent: a.bytesSent, BytesReceived: a.bytesRecv,
			Retransmits: a.retrans, RTOs: a.rtos, Connections: connections(s.open, &a),
			ConnectFailures: a.refused + a.timeout + a.reset, RTTP50: a.rtt.quantile(0.5)})
	}
	return out
}
