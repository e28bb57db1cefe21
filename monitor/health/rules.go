package health

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/netsight/netsight/monitor"
)

// AllMonitor is the implicit monitor of every connection; host-wide
// signals without a per-connection symptom (a full listener) land there.
const AllMonitor = "all"

// remoteEval is one remote judged.
type remoteEval struct {
	r                      *monitor.Remote
	key                    string
	s                      sig
	activeLoss, activeConn bool
	// path symptoms
	lossy, rtoHeavy, connFailing, slow bool
	baseline                           float64
	// remote application symptoms
	refused, resets, peerWindow bool
	// local application symptom
	zwSent bool
}

func (re *remoteEval) affected() bool { return re.lossy || re.rtoHeavy || re.connFailing || re.slow }
func (re *remoteEval) active() bool   { return re.activeLoss || re.activeConn }

// judgement is one evaluation of one monitor before hysteresis.
type judgement struct {
	active   bool
	fired    []Finding // rules that fired, in priority order
	notes    []Finding
	evidence Evidence // the healthy / insufficient summary's numbers
	summary  string
}

// judge runs every rule over one window. held is the monitor's current
// verdict: the rule that gives it is judged by its exit thresholds.
func (e *Engine) judge(w *monitor.Window, hd hostDelta, held Verdict, now time.Time) judgement {
	th := &e.cfg.Thresholds
	tot := signals(w.Totals)
	var j judgement
	pathHeld := held == PathDegraded || held == RemoteDegraded

	rs := make([]*remoteEval, 0, len(w.Remotes))
	for i := range w.Remotes {
		r := &w.Remotes[i]
		re := &remoteEval{r: r, key: remoteKey(r), s: signals(r.Stats)}
		s := &re.s
		re.activeLoss = s.segs >= th.MinSegments
		re.activeConn = s.attempts+s.syn >= th.MinConnects
		if re.activeLoss {
			re.lossy = s.loss >= th.LossMin && s.lossRatio >= th.LossRatio.at(pathHeld)
			re.rtoHeavy = float64(s.rtos) >= th.RTOs.at(pathHeld)
		}
		if re.activeConn {
			re.connFailing = s.connFailRatio >= th.ConnectFail.at(pathHeld)
		}
		if s.latency > 0 {
			if b, ok := e.base.value(r.Addr, now, th.BaselineSpan, th.BaselineAfter); ok {
				re.baseline = b
				ratio := th.LatencyRatio.at(pathHeld)
				abs := th.LatencyAbs.Seconds()
				if pathHeld {
					abs /= 2
				}
				re.slow = s.latency >= b*ratio && s.latency-b >= abs
			}
		}
		raHeld := held == RemoteApplication
		re.refused = float64(s.refused) >= th.Refused.at(raHeld)
		re.resets = float64(s.resets) >= th.Resets.at(raHeld)
		if !re.lossy && !re.rtoHeavy {
			rwndShare := 0.0
			if s.busy > 0 {
				rwndShare = float64(s.rwnd) / float64(s.busy)
			}
			re.peerWindow = (s.busy >= th.MinBusy && rwndShare >= th.RwndLimited.at(raHeld)) ||
				float64(s.zwRecv) >= th.PeerZeroWindow.at(raHeld)
		}
		re.zwSent = float64(s.zwSent) >= th.ZeroWindowSent.at(held == LocalApplication)
		rs = append(rs, re)
	}
	var active, affected []*remoteEval
	for _, re := range rs {
		if re.active() {
			active = append(active, re)
			if re.affected() {
				affected = append(affected, re)
			}
		}
	}
	// Many small remotes add up: the monitor is active with five times a
	// remote's gate in total.
	j.active = len(active) > 0 || tot.segs >= 5*th.MinSegments || tot.attempts >= 5*th.MinConnects

	// Symptoms the host-side rules need in this monitor's traffic.
	lossSym := len(affected) > 0 ||
		(tot.segs >= th.MinSegments && tot.loss >= th.LossMin && tot.lossRatio >= th.LossRatio.Exit)
	synSym := (tot.attempts+tot.syn >= th.MinConnects && tot.connFailRatio >= th.ConnectFail.Exit)
	for _, re := range affected {
		synSym = synSym || re.connFailing
	}

	// 1. cloud_nic_limit
	var nicTotal uint64
	var nicCulprit string
	var nicMax uint64
	nicEv := Evidence{}
	for _, name := range sortedKeys(hd.nic) {
		for _, c := range sortedKeys(hd.nic[name]) {
			v := hd.nic[name][c]
			nicTotal += v
			nicEv[name+"."+c] = v
			if v > nicMax {
				nicMax, nicCulprit = v, name+" ("+c+")"
			}
		}
	}
	if nicTotal > 0 {
		if float64(nicTotal) >= th.NICExceeded.at(held == CloudNICLimit) && (lossSym || synSym) {
			nicEv["loss_ratio"] = tot.lossRatio
			nicEv["retransmits"] = tot.retrans
			j.fired = append(j.fired, Finding{Verdict: CloudNICLimit, Culprit: nicCulprit, Evidence: nicEv,
				Summary: fmt.Sprintf("the NIC dropped packets over its allowance (%s grew by %d) while %s of segments were retransmitted: this instance exceeds its network allowance; a larger instance type or less traffic",
					nicCulprit, nicMax, pct(tot.lossRatio)),
				strength: float64(nicTotal) / max(th.NICExceeded.Enter, 1)})
		} else {
			j.notes = append(j.notes, Finding{Verdict: CloudNICLimit, Culprit: nicCulprit, Evidence: nicEv,
				Summary: fmt.Sprintf("%s grew by %d without a symptom in this monitor's traffic", nicCulprit, nicMax)})
		}
	}

	// 2. host_conntrack
	if ct := hd.conntrack; ct != nil && (hd.ctDrops > 0 || hd.fill >= th.ConntrackFill.Exit) {
		hh := held == HostConntrack
		ev := Evidence{"conntrack_drops": hd.ctDrops, "conntrack_entries": ct.Entries, "conntrack_limit": ct.Limit,
			"conntrack_fill_ratio": hd.fill, "syn_retransmits": tot.syn, "connect_timeouts": tot.timeouts,
			"connects": tot.attempts}
		culprit := fmt.Sprintf("conntrack table (%d of %d entries)", ct.Entries, ct.Limit)
		if (float64(hd.ctDrops) >= th.ConntrackDrops.at(hh) || hd.fill >= th.ConntrackFill.at(hh)) && synSym {
			j.fired = append(j.fired, Finding{Verdict: HostConntrack, Culprit: culprit, Evidence: ev,
				Summary: fmt.Sprintf("this host's conntrack table dropped %d packets (%d of %d entries) while %d SYNs were retransmitted: raise nf_conntrack_max or track fewer connections",
					hd.ctDrops, ct.Entries, ct.Limit, tot.syn),
				strength: max(float64(hd.ctDrops)/th.ConntrackDrops.Enter, hd.fill/th.ConntrackFill.Enter)})
		} else {
			j.notes = append(j.notes, Finding{Verdict: HostConntrack, Culprit: culprit, Evidence: ev,
				Summary: fmt.Sprintf("conntrack dropped %d packets (%d of %d entries) without a connect symptom in this monitor", hd.ctDrops, ct.Entries, ct.Limit)})
		}
	}

	// 3. host_stack
	stackDrops := hd.hostDrops + hd.netstat["TCPBacklogDrop"]
	if stackDrops > 0 {
		hh := held == HostStack
		reason, n := "", uint64(0)
		for _, k := range sortedKeys(hd.dropsByReason) {
			if hd.dropsByReason[k] > n {
				reason, n = k, hd.dropsByReason[k]
			}
		}
		if b := hd.netstat["TCPBacklogDrop"]; b > n {
			reason, n = "TCPBacklogDrop", b
		}
		ev := Evidence{"host_drops": stackDrops, "loss_ratio": tot.lossRatio, "data_segments": tot.segs}
		for k, v := range hd.dropsByReason {
			ev["drops."+k] = v
		}
		share := 0.0
		if seen := w.Totals.SegsOut + w.Totals.SegsIn; seen > 0 {
			share = float64(stackDrops) / float64(seen)
		}
		ev["drops_per_segment"] = share
		if float64(stackDrops) >= th.HostDrops.at(hh) && j.active &&
			(lossSym || synSym || share >= th.LossRatio.at(hh)) {
			j.fired = append(j.fired, Finding{Verdict: HostStack, Culprit: reason, Evidence: ev,
				Summary: fmt.Sprintf("this host dropped %d packets itself (mostly %s, %d): look at its firewall rules, qdiscs and socket backlogs",
					stackDrops, reason, n),
				strength: float64(stackDrops) / th.HostDrops.Enter})
		} else {
			j.notes = append(j.notes, Finding{Verdict: HostStack, Culprit: reason, Evidence: ev,
				Summary: fmt.Sprintf("this host dropped %d packets (mostly %s) without a symptom in this monitor", stackDrops, reason)})
		}
	}

	// 4. local_application
	lh := held == LocalApplication
	if lo := hd.listenOverflows; lo > 0 && (w.Name == AllMonitor || synSym) {
		culprit := "a local listener"
		ev := Evidence{"listen_overflows": lo}
		if len(hd.listeners) > 0 {
			l := hd.listeners[0]
			culprit = "listener " + l.Addr.String()
			ev["accept_queue"], ev["backlog"] = l.Queue, l.Backlog
		}
		if float64(lo) >= th.ListenOverflows.at(lh) {
			j.fired = append(j.fired, Finding{Verdict: LocalApplication, Culprit: culprit, Evidence: ev,
				Summary: fmt.Sprintf("%s has a full accept queue: %d connections dropped (ListenOverflows): the local application does not accept() fast enough or its backlog is too small",
					culprit, lo),
				strength: float64(lo) / th.ListenOverflows.Enter})
		}
	}
	var zw []*remoteEval
	for _, re := range rs {
		if re.zwSent {
			zw = append(zw, re)
		}
	}
	if len(zw) > 0 {
		sort.SliceStable(zw, func(a, b int) bool { return zw[a].s.zwSent > zw[b].s.zwSent })
		c := zw[0]
		j.fired = append(j.fired, Finding{Verdict: LocalApplication, Culprit: "local reader of " + c.key,
			Evidence: Evidence{"zero_window_sent": c.s.zwSent, "recv_queue_max_bytes": c.s.recvQueueMax,
				"remote": c.key, "remotes_affected": len(zw), "netstat_zero_window_adverts": hd.zeroWindowAdvs},
			Summary: fmt.Sprintf("this host advertised a zero window %d times to %s with %d bytes unread: the local application reads too slowly",
				c.s.zwSent, c.key, c.s.recvQueueMax),
			strength: float64(c.s.zwSent) / th.ZeroWindowSent.Enter, remotes: len(active)})
	} else if w.Name == AllMonitor && hd.netstat["TCPRcvQDrop"] > 0 {
		n := hd.netstat["TCPRcvQDrop"]
		j.fired = append(j.fired, Finding{Verdict: LocalApplication, Culprit: "a local socket's receive buffer",
			Evidence: Evidence{"rcvq_drops": n},
			Summary:  fmt.Sprintf("%d segments dropped because a local receive buffer was full (TCPRcvQDrop): the local application reads too slowly", n),
			strength: float64(n)})
	}

	// 5. remote_application
	var ra []*remoteEval
	for _, re := range rs {
		if re.refused || re.resets || re.peerWindow {
			ra = append(ra, re)
		}
	}
	if len(ra) > 0 {
		c := ra[0]
		for _, re := range ra[1:] {
			if re.s.refused+re.s.resets > c.s.refused+c.s.resets {
				c = re
			}
		}
		ev := Evidence{"remote": c.key, "connects": c.s.attempts, "refused": c.s.refused,
			"established_resets": c.s.resets, "zero_window_received": c.s.zwRecv,
			"busy_seconds": c.s.busy.Seconds(), "rwnd_limited_seconds": c.s.rwnd.Seconds(),
			"loss_ratio": c.s.lossRatio, "remotes_affected": len(ra), "remotes_active": len(active)}
		var why string
		var strength float64
		switch {
		case c.refused:
			why = fmt.Sprintf("%d of %d connects to %s were refused: nothing listens there (remote application down or wrong port)", c.s.refused, c.s.attempts, c.key)
			strength = float64(c.s.refused) / th.Refused.Enter
		case c.resets:
			why = fmt.Sprintf("%s reset %d established connections: the remote application aborts them", c.key, c.s.resets)
			strength = float64(c.s.resets) / th.Resets.Enter
		default:
			share := 0.0
			if c.s.busy > 0 {
				share = float64(c.s.rwnd) / float64(c.s.busy)
			}
			ev["rwnd_limited_ratio"] = share
			why = fmt.Sprintf("sending to %s was limited by its receive window %s of the busy time (%d zero windows) while nothing was lost: the remote application does not read",
				c.key, pct(share), c.s.zwRecv)
			strength = max(share/th.RwndLimited.Enter, float64(c.s.zwRecv)/th.PeerZeroWindow.Enter)
		}
		j.fired = append(j.fired, Finding{Verdict: RemoteApplication, Culprit: c.key, Evidence: ev, Summary: why,
			strength: strength, remotes: len(active)})
	}

	// 6./7. path_degraded, remote_degraded
	if len(affected) > 0 {
		j.fired = append(j.fired, e.pathOrRemote(affected, active, tot))
	}

	// Notes: what was discounted.
	if tot.dsack > 0 {
		j.notes = append(j.notes, Finding{Verdict: Healthy, Evidence: Evidence{"retransmits": tot.retrans, "dsack_dups": tot.dsack},
			Summary: fmt.Sprintf("%d of %d retransmissions were spurious (DSACK): reordering or delay, not loss; not counted as loss", min(tot.dsack, tot.retrans), tot.retrans)})
	}
	if tot.srtt > 0 && tot.latency > 0 && tot.srtt >= 2*tot.latency && tot.srtt-tot.latency >= th.LatencyAbs.Seconds() {
		j.notes = append(j.notes, Finding{Verdict: Healthy, Evidence: Evidence{"srtt_p50_seconds": tot.srtt, "latency_seconds": tot.latency},
			Summary: fmt.Sprintf("smoothed RTT p50 %s against %s handshake / min RTT: not blamed on the path (delayed ACKs and queues inflate smoothed RTT)", ms(tot.srtt), ms(tot.latency))})
	}
	if tot.busy >= th.MinBusy && float64(tot.sndbuf) >= th.SndbufLimited*float64(tot.busy) {
		j.notes = append(j.notes, Finding{Verdict: LocalApplication, Evidence: Evidence{"sndbuf_limited_seconds": tot.sndbuf.Seconds(), "busy_seconds": tot.busy.Seconds()},
			Summary: fmt.Sprintf("sending was limited by this host's send buffer %s of the busy time (a finding: a bulk sender with a small buffer shows it too)", pct(float64(tot.sndbuf)/float64(tot.busy)))})
	}

	j.evidence = Evidence{"data_segments": tot.segs, "retransmits": tot.retrans, "dsack_dups": tot.dsack,
		"loss_ratio": tot.lossRatio, "rtos": tot.rtos, "connects": tot.attempts, "syn_retransmits": tot.syn,
		"remotes_active": len(active), "remotes": len(w.Remotes)}
	if tot.latency > 0 {
		j.evidence["latency_seconds"] = tot.latency
	}
	if j.active {
		j.summary = fmt.Sprintf("%d active remotes: %s of %d data segments lost, %d connects, %d failed",
			len(active), pct(tot.lossRatio), tot.segs, tot.attempts, tot.timeouts+tot.refused)
		if hd.ok && hd.dropsByReason != nil && stackDrops == 0 {
			j.summary += "; this host dropped nothing"
		}
	} else {
		j.summary = fmt.Sprintf("too little traffic in the last %s to judge: %d data segments and %d connects (a remote needs %d segments or %d connects)",
			w.End.Sub(w.Start).Round(time.Second), tot.segs, tot.attempts, th.MinSegments, th.MinConnects)
	}
	return j
}

// pathOrRemote decides between path_degraded (most active remotes of the
// narrowest shared scope affected) and remote_degraded.
func (e *Engine) pathOrRemote(affected, active []*remoteEval, tot sig) Finding {
	th := &e.cfg.Thresholds
	reasons := func(re *remoteEval) string {
		var rs []string
		if re.lossy {
			rs = append(rs, pct(re.s.lossRatio)+" retransmitted")
		}
		if re.rtoHeavy && !re.lossy {
			rs = append(rs, fmt.Sprintf("%d RTOs", re.s.rtos))
		}
		if re.connFailing {
			rs = append(rs, fmt.Sprintf("%d SYN retransmissions, %d connect timeouts", re.s.syn, re.s.timeouts))
		}
		if re.slow {
			rs = append(rs, fmt.Sprintf("latency %s against a %s baseline", ms(re.s.latency), ms(re.baseline)))
		}
		return strings.Join(rs, ", ")
	}
	ev := Evidence{"remotes_affected": len(affected), "remotes_active": len(active),
		"loss_ratio": tot.lossRatio, "retransmits": tot.retrans, "dsack_dups": tot.dsack, "data_segments": tot.segs}
	var keys []string
	var strength float64
	per := map[string]any{}
	for _, re := range affected {
		keys = append(keys, re.key)
		p := map[string]any{"loss_ratio": re.s.lossRatio, "retransmits": re.s.retrans, "data_segments": re.s.segs,
			"rtos": re.s.rtos, "syn_retransmits": re.s.syn, "connect_timeouts": re.s.timeouts, "connects": re.s.attempts,
			"zone": re.r.Place.Zone, "category": re.r.Place.Category}
		if re.s.latency > 0 {
			p["latency_seconds"] = re.s.latency
		}
		if re.baseline > 0 {
			p["baseline_seconds"] = re.baseline
		}
		per[re.key] = p
		s := 0.0
		if re.lossy {
			s = max(s, re.s.lossRatio/th.LossRatio.Enter)
		}
		if re.connFailing {
			s = max(s, re.s.connFailRatio/th.ConnectFail.Enter)
		}
		if re.slow && re.baseline > 0 {
			s = max(s, re.s.latency/re.baseline/th.LatencyRatio.Enter)
		}
		if re.rtoHeavy {
			s = max(s, float64(re.s.rtos)/th.RTOs.Enter)
		}
		strength = max(strength, s)
	}
	ev["affected"] = per

	if len(affected) >= 2 {
		if scope, inScope, ok := narrowestScope(affected, active, th.PathShare); ok {
			ev["remotes_in_scope"] = inScope
			return Finding{Verdict: PathDegraded, Scope: scope, Evidence: ev, strength: strength, remotes: len(affected),
				Summary: fmt.Sprintf("%d of %d active remotes in %s are affected (%s: %s): the trouble is on the path outside this host",
					len(affected), inScope, scopeText(scope), affected[0].key, reasons(affected[0]))}
		}
	}
	c := affected[0]
	others := len(active) - len(affected)
	var tail string
	switch {
	case others > 0:
		tail = fmt.Sprintf("; the %d other remotes are clean: remote host or its path", others)
	default:
		tail = ": the only active remote, so the path and the host cannot be told apart"
	}
	culprit := strings.Join(keys, ", ")
	return Finding{Verdict: RemoteDegraded, Culprit: culprit, Evidence: ev, strength: strength, remotes: len(active),
		Summary: fmt.Sprintf("%s: %s%s", c.key, reasons(c), tail)}
}

// narrowestScope returns the narrowest scope (zone, category, all) that
// holds every affected remote and in which at least share of the active
// remotes are affected.
func narrowestScope(affected, active []*remoteEval, share float64) (scope string, inScope int, ok bool) {
	same := func(f func(p monitor.Place) string) string {
		v := f(affected[0].r.Place)
		for _, re := range affected[1:] {
			if f(re.r.Place) != v {
				return ""
			}
		}
		return v
	}
	count := func(f func(p monitor.Place) string, v string) int {
		n := 0
		for _, re := range active {
			if f(re.r.Place) == v {
				n++
			}
		}
		return n
	}
	zone := func(p monitor.Place) string { return p.Zone }
	cat := func(p monitor.Place) string { return p.Category }
	for _, s := range []struct {
		kind string
		f    func(monitor.Place) string
	}{{"zone", zone}, {"category", cat}} {
		if v := same(s.f); v != "" {
			n := count(s.f, v)
			if float64(len(affected)) >= share*float64(n) {
				return s.kind + ":" + v, n, true
			}
		}
	}
	if float64(len(affected)) >= share*float64(len(active)) {
		return "all", len(active), true
	}
	return "", 0, false
}

func scopeText(scope string) string {
	if k, v, ok := strings.Cut(scope, ":"); ok {
		return k + " " + v
	}
	return "every zone and category"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
