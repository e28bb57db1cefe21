package health

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/monitor"
)

// sig is what the rules read from one Stats.
type sig struct {
	segs, retrans, dsack, loss, rtos uint64
	lossRatio                        float64
	syn                              uint64
	attempts, refused, timeouts      uint64
	resets                           uint64
	connFail                         uint64 // SYN retransmissions + timeouts
	connFailRatio                    float64
	busy, rwnd, sndbuf               time.Duration
	zwSent, zwRecv                   uint64
	recvQueueMax                     uint32
	// latency is the handshake p50 (at least two handshakes) or the
	// window's min RTT, seconds; 0 when neither is known.
	latency float64
	srtt    float64 // smoothed RTT p50, seconds (never judged alone)
}

func signals(s monitor.Stats) sig {
	g := sig{
		segs: s.SegsOut, rtos: s.RTOs, syn: s.SynRetransmits, dsack: s.DSACKDups,
		refused: s.ConnectRefused, timeouts: s.ConnectTimeout, resets: s.EstablishedResets,
		busy: s.BusyTime, rwnd: s.RwndLimited, sndbuf: s.SndbufLimited,
		zwSent: s.ZeroWindowSent, zwRecv: s.ZeroWindowReceived, recvQueueMax: s.RecvQueueMax,
	}
	g.retrans = sub(s.Retransmits, s.SynRetransmits)
	g.loss = sub(g.retrans, g.dsack)
	if g.retrans < g.dsack {
		g.loss = 0
	}
	if g.segs > 0 {
		g.lossRatio = float64(g.loss) / float64(g.segs)
	}
	g.attempts = s.ConnectOK + s.ConnectRefused + s.ConnectTimeout + s.ConnectReset
	g.connFail = s.SynRetransmits + s.ConnectTimeout
	if d := max(g.attempts, 1) + s.SynRetransmits; g.connFail > 0 {
		g.connFailRatio = float64(g.connFail) / float64(d)
	}
	if s.Handshake.Count >= 2 {
		g.latency = quantile(&s.Handshake, 0.5)
	} else if s.MinRTT > 0 {
		g.latency = s.MinRTT.Seconds()
	}
	if s.RTT.Count > 0 {
		g.srtt = quantile(&s.RTT, 0.5)
	}
	return g
}

// quantile estimates the q-quantile of h by linear interpolation within
// its bucket (as Prometheus's histogram_quantile); the +Inf bucket gives
// the highest bound.
func quantile(h *flow.Histogram, q float64) float64 {
	if h.Count == 0 || len(h.Bounds) == 0 {
		return 0
	}
	rank := q * float64(h.Count)
	var cum float64
	for i, c := range h.Counts {
		prev := cum
		cum += float64(c)
		if cum < rank || c == 0 {
			continue
		}
		if i >= len(h.Bounds) {
			return h.Bounds[len(h.Bounds)-1]
		}
		lo := 0.0
		if i > 0 {
			lo = h.Bounds[i-1]
		}
		return lo + (h.Bounds[i]-lo)*(rank-prev)/float64(c)
	}
	return h.Bounds[len(h.Bounds)-1]
}

func remoteKey(r *monitor.Remote) string {
	if r.Port != 0 {
		return netip.AddrPortFrom(r.Addr, r.Port).String()
	}
	return r.Addr.String()
}

func pct(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + "%" }

func ms(sec float64) string {
	if sec < 0.01 {
		return strconv.FormatFloat(sec*1000, 'f', 2, 64) + " ms"
	}
	return strconv.FormatFloat(sec*1000, 'f', 0, 64) + " ms"
}

// baselines are the per-remote latency baselines: the lowest latency
// seen, in one-minute slots over the span.
type baselines struct {
	m   map[netip.Addr]*baseline
	max int
}

type baseline struct {
	first, last time.Time
	slots       []slot
}

type slot struct {
	minute int64
	min    float64
}

func (b *baselines) get(a netip.Addr) *baseline {
	if b.m == nil {
		b.m = map[netip.Addr]*baseline{}
	}
	return b.m[a]
}

// value is the baseline of a at now, ok false before it has been seen for
// after.
func (b *baselines) value(a netip.Addr, now time.Time, span, after time.Duration) (float64, bool) {
	bl := b.get(a)
	if bl == nil || now.Sub(bl.first) < after {
		return 0, false
	}
	from := now.Add(-span).Unix() / 60
	v, ok := 0.0, false
	for _, s := range bl.slots {
		if s.minute >= from && (!ok || s.min < v) {
			v, ok = s.min, true
		}
	}
	return v, ok
}

// observe folds one latency reading in.
func (b *baselines) observe(a netip.Addr, now time.Time, v float64, span time.Duration) {
	if v <= 0 {
		return
	}
	bl := b.get(a)
	if bl == nil {
		if len(b.m) >= b.max && b.max > 0 {
			b.evict()
		}
		bl = &baseline{first: now}
		b.m[a] = bl
	}
	bl.last = now
	m := now.Unix() / 60
	if n := len(bl.slots); n > 0 && bl.slots[n-1].minute == m {
		bl.slots[n-1].min = min(bl.slots[n-1].min, v)
	} else {
		bl.slots = append(bl.slots, slot{minute: m, min: v})
	}
	from := now.Add(-span).Unix() / 60
	i := 0
	for i < len(bl.slots) && bl.slots[i].minute < from {
		i++
	}
	bl.slots = bl.slots[i:]
}

func (b *baselines) evict() {
	var oldest netip.Addr
	var at time.Time
	for a, bl := range b.m {
		if at.IsZero() || bl.last.Before(at) {
			oldest, at = a, bl.last
		}
	}
	delete(b.m, oldest)
}
