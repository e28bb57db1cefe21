package monitor

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/netsight/netsight/monitor/topology"
)

// MaxRemotes bounds Window.Remotes (RemotesDropped counts the rest).
const MaxRemotes = 512

// span is the slot range [from, to] of a window ending at now.
func span(now time.Time, window time.Duration, width int64) (from, to int64) {
	to = now.Unix() / width
	n := max(int64((window+time.Duration(width)*time.Second-1)/(time.Duration(width)*time.Second)), 1)
	return to - n + 1, to
}

// sumFine adds the fine slots of r in [from, to] into out.
func sumFine(r *ring[acc], from, to int64, out *acc) {
	r.each(from, to, func(a *acc) { out.merge(a) })
}

// connections is the distinct connections in a window: those open at its
// start (the gauge now, less the net change within the window) plus those
// first seen in it.
func connections(open int64, a *acc) uint64 {
	atStart := max(open-int64(a.newConns)+int64(a.closed), 0)
	return uint64(atStart) + a.newConns
}

func (a *acc) stats(open int64) Stats {
	return Stats{
		Connections: connections(open, a), Opened: a.opened,
		BytesSent: a.bytesSent, BytesReceived: a.bytesRecv, SegsOut: a.segsOut, SegsIn: a.segsIn,
		Retransmits: a.retrans, SynRetransmits: a.synRetrans, RTOs: a.rtos, DSACKDups: a.dsack,
		ConnectOK: a.ok, ConnectRefused: a.refused, ConnectTimeout: a.timeout, ConnectReset: a.reset,
		EstablishedResets: a.estR,
		BusyTime:          a.busy, RwndLimited: a.rwnd, SndbufLimited: a.sndbuf,
		ZeroWindowSent: a.zwSent, ZeroWindowReceived: a.zwRecv,
		RecvQueueMax: a.recvQMax,
		RTT:          a.rtt.histogram(), Handshake: a.hs.histogram(), MinRTT: a.minRTT,
	}
}

func (s *Stats) lossEvents() uint64 {
	return s.Retransmits + s.RTOs + s.ConnectRefused + s.ConnectTimeout + s.ConnectReset
}

// coveringSpan is the slot range [from, to] that holds all of
// (now-window, now]: the slot of now-window through the slot of now, so a
// window never shrinks to the part of a slot elapsed since its boundary
// (the health verdict judges every evaluate_every, also just after one).
func coveringSpan(now time.Time, window time.Duration, width int64) (from, to int64) {
	return now.Add(-window).Unix() / width, now.Unix() / width
}

// Windows returns every monitor ("all" first, then the configured ones in
// order) over the slots covering the configured window ending at now
// (Start is the first slot's start: between window and window plus one
// slot before now).
func (e *Engine) Windows(now time.Time) []Window {
	e.mu.Lock()
	defer e.mu.Unlock()
	from, to := coveringSpan(now, e.cfg.Window, fineWidth)
	start := time.Unix(from*fineWidth, 0)
	out := make([]Window, len(e.scopes))
	type remoteAcc struct {
		a     acc
		open  int64
		port  uint16
		multi bool
		place topology.Place
	}
	per := make([]map[netip.Addr]*remoteAcc, len(e.scopes))
	for i := range per {
		per[i] = map[netip.Addr]*remoteAcc{}
	}
	for g := e.head; g != nil; g = g.next {
		var a acc
		n := 0
		g.fine.each(from, to, func(x *acc) { a.merge(x); n++ })
		if n == 0 && g.open == 0 {
			continue
		}
		add := func(i int) {
			ra := per[i][g.key.remote]
			if ra == nil {
				ra = &remoteAcc{port: g.key.port, place: g.rp}
				per[i][g.key.remote] = ra
			} else if ra.port != g.key.port {
				ra.multi = true
			}
			ra.a.merge(&a)
			ra.open += g.open
		}
		if g.inAll {
			add(0)
		}
		for m := g.mask; m != 0; m &= m - 1 {
			add(trailingZeros(m) + 1)
		}
	}
	for i, s := range e.scopes {
		var a acc
		sumFine(&s.fine, from, to, &a)
		w := Window{Name: s.name, Start: start, End: now, Totals: a.stats(s.open)}
		for addr, ra := range per[i] {
			r := Remote{Addr: addr, Place: ra.place, Stats: ra.a.stats(ra.open)}
			if !ra.multi {
				r.Port = ra.port
			}
			w.Remotes = append(w.Remotes, r)
		}
		slices.SortFunc(w.Remotes, func(a, b Remote) int {
			if c := cmp.Compare(b.Stats.lossEvents(), a.Stats.lossEvents()); c != 0 {
				return c
			}
			if c := cmp.Compare(b.Stats.BytesSent+b.Stats.BytesReceived, a.Stats.BytesSent+a.Stats.BytesReceived); c != 0 {
				return c
			}
			return a.Addr.Compare(b.Addr)
		})
		if len(w.Remotes) > MaxRemotes {
			w.RemotesDropped = uint64(len(w.Remotes) - MaxRemotes)
			w.Remotes = w.Remotes[:MaxRemotes]
		}
		out[i] = w
	}
	return out
}

// Window returns the window of the monitor named name, ok false when no
// such monitor exists.
func (e *Engine) Window(name string, now time.Time) (Window, bool) {
	for _, w := range e.Windows(now) {
		if w.Name == name {
			return w, true
		}
	}
	return Window{}, false
}

// WindowLength is the configured window.
func (e *Engine) WindowLength() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cfg.Window
}
