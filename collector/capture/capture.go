package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/internal/kernel"
	"github.com/netsight/netsight/tcpanalysis"
)

func init() { collector.Register(collector.NewFactory("capture", DefaultConfig, New, check)) }

// check reports whether AF_PACKET capture works here (in the agent's own
// network namespace).
func check(_ context.Context, _ *Config, _ collector.Deps) error {
	if err := kernel.RequireCaps(kernel.CapNetRaw); err != nil {
		return collector.NotSupported("CAP_NET_RAW for AF_PACKET capture", err)
	}
	if err := kernel.AFPacketAvailable(); err != nil {
		return collector.NotSupported("AF_PACKET socket", err)
	}
	return nil
}

// Collector captures TCP headers on matching interfaces and exports the
// analysis per device and direction.
type Collector struct {
	cfg    *Config
	logger *slog.Logger
	ns     netns.NsHandle // -1: the agent's own namespace

	mu    sync.Mutex
	rings map[int]*ring // by ifindex
	wg    sync.WaitGroup
	// ended receives the ifindex of a ring whose reader stopped by itself
	// (the link went down: ENETDOWN), so that Run re-checks the link.
	ended chan int

	// flows is the agent's per-connection table (nil: none).
	flows *flow.Table

	added, removed, skipped, failed atomic.Uint64
	closeOnce                       sync.Once
}

// New checks the requirements (CAP_NET_RAW, and the namespace if one is
// configured) and returns the collector; capture starts in Run.
func New(cfg *Config, deps collector.Deps) (*Collector, error) {
	deps = deps.WithDefaults()
	logger := deps.Logger
	if err := kernel.RequireCaps(kernel.CapNetRaw); err != nil {
		return nil, collector.NotSupported("CAP_NET_RAW for AF_PACKET capture", err)
	}
	c := &Collector{cfg: cfg, logger: logger, ns: -1, rings: map[int]*ring{}, ended: make(chan int, 64), flows: deps.Flows}
	if cfg.NetNS != "" {
		h, err := netns.GetFromPath(cfg.NetNS)
		if err != nil {
			return nil, fmt.Errorf("open netns %s: %w", cfg.NetNS, err)
		}
		c.ns = h
	}
	// Probe once that AF_PACKET sockets can be made here.
	if err := c.inNS(kernel.AFPacketAvailable); err != nil {
		c.closeNS()
		return nil, collector.NotSupported("AF_PACKET socket", err)
	}
	return c, nil
}

// inNS runs fn on an OS thread inside the configured namespace (or
// directly without one). Sockets created by fn stay in that namespace.
func (c *Collector) inNS(fn func() error) error {
	if c.ns < 0 {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(c.ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", c.cfg.NetNS, err)
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		} // else: the thread dies with this goroutine
		errc <- err
	}()
	return <-errc
}

func (c *Collector) closeNS() {
	if c.ns >= 0 {
		_ = c.ns.Close()
		c.ns = -1
	}
}

// Run follows the interfaces through rtnetlink link events (existing ones
// are listed first) and keeps one ring per selected interface.
func (c *Collector) Run(ctx context.Context) error {
	defer c.stopAll()
	ctx, cancel := context.WithCancel(ctx) // also ends pending re-checks
	defer cancel()
	updates := make(chan netlink.LinkUpdate, 256)
	done := make(chan struct{})
	defer close(done)
	subErr := make(chan error, 1)
	opts := netlink.LinkSubscribeOptions{
		ListExisting: true,
		ErrorCallback: func(err error) {
			select {
			case subErr <- err:
			default:
			}
		},
	}
	if c.ns >= 0 {
		h := c.ns
		opts.Namespace = &h
	}
	if err := netlink.LinkSubscribeWithOptions(updates, done, opts); err != nil {
		return fmt.Errorf("subscribe to link events: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-subErr:
			return fmt.Errorf("link events: %w", err)
		case u, ok := <-updates:
			if !ok {
				return errors.New("link events: subscription closed")
			}
			c.handle(ctx, u)
		case idx := <-c.ended:
			c.recheck(ctx, idx)
		}
	}
}

// restartBackoff is the least time between two starts of a ring whose
// reader keeps ending by itself.
const restartBackoff = 500 * time.Millisecond

// recheck runs when the reader of ring idx ended by itself, typically
// because the link went down (the socket reports ENETDOWN). The link events
// of that down and of a following up may all have been handled before the
// reader noticed (a busy machine, a 100 ms poll), so no later event would
// restart it: look at the link now and restart the ring if the link is up
// and still selected. A link that is down is restarted by its up event.
func (c *Collector) recheck(ctx context.Context, idx int) {
	c.mu.Lock()
	r := c.rings[idx]
	c.mu.Unlock()
	if r == nil || !r.finished() {
		return // already restarted or removed
	}
	if wait := restartBackoff - time.Since(r.started); wait > 0 {
		time.AfterFunc(wait, func() { c.notifyEnded(ctx, idx) })
		return
	}
	var h *netlink.Handle
	var err error
	if c.ns >= 0 {
		h, err = netlink.NewHandleAt(c.ns, unix.NETLINK_ROUTE)
	} else {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	}
	if err != nil {
		c.logger.Warn("cannot re-check interface", "ifindex", idx, "err", err)
		return
	}
	defer h.Close()
	l, err := h.LinkByIndex(idx)
	if err != nil {
		return // gone: its RTM_DELLINK releases the ring
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		return // down: its next RTM_NEWLINK (up) restarts the ring
	}
	c.handle(ctx, netlink.LinkUpdate{Header: unix.NlMsghdr{Type: unix.RTM_NEWLINK}, Link: l})
}

// notifyEnded queues a re-check of ring idx for Run.
func (c *Collector) notifyEnded(ctx context.Context, idx int) {
	select {
	case c.ended <- idx:
	case <-ctx.Done():
	}
}

func (c *Collector) handle(ctx context.Context, u netlink.LinkUpdate) {
	a := u.Attrs()
	if a == nil {
		return
	}
	idx := a.Index
	c.mu.Lock()
	cur := c.rings[idx]
	c.mu.Unlock()
	if u.Header.Type == unix.RTM_DELLINK {
		if cur != nil {
			c.stopRing(idx, "removed")
		}
		return
	}
	want := c.cfg.matches(a.Name)
	if cur != nil {
		if want && cur.link.name == a.Name && !cur.finished() {
			return
		}
		// Renamed (restart under the new name), deselected, or the reader
		// ended when the link went down: this event may be it coming up.
		c.stopRing(idx, "renamed, deselected or restarted")
	}
	if !want {
		return
	}
	lt, hdr, loop, ok := linkFor(a.EncapType)
	if !ok {
		c.skipped.Add(1)
		c.logger.Info("interface link type not supported for capture, skipped", "device", a.Name, "encap", a.EncapType)
		return
	}
	c.mu.Lock()
	n := len(c.rings)
	c.mu.Unlock()
	if n >= c.cfg.MaxInterfaces {
		c.skipped.Add(1)
		c.logger.Warn("max_interfaces reached, interface not captured", "device", a.Name, "max_interfaces", c.cfg.MaxInterfaces)
		return
	}
	li := linkInfo{index: idx, name: a.Name, mac: a.HardwareAddr, encap: a.EncapType, linkType: lt, linkHdr: hdr, loopback: loop}
	r, err := newRing(li, c.cfg, c.inNS)
	if err != nil {
		// The interface may already be gone again (pods churn): its link
		// events (the peer's down, a rename) arrive after the delete. That
		// is no failure and its RTM_DELLINK follows.
		if c.inNS(func() error { _, err := net.InterfaceByIndex(idx); return err }) != nil {
			c.logger.Debug("interface gone before capture started", "device", a.Name)
			return
		}
		c.failed.Add(1)
		c.logger.Warn("cannot capture on interface", "device", a.Name, "err", err)
		return
	}
	rctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	c.mu.Lock()
	c.rings[idx] = r
	c.mu.Unlock()
	c.added.Add(1)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		r.run(rctx)
		if r.err != nil {
			c.logger.Info("capture ended; restarts when the link is up", "device", li.name, "err", r.err)
			c.notifyEnded(rctx, idx)
		}
	}()
	c.logger.Info("capturing", "device", a.Name, "ifindex", idx, "encap", a.EncapType)
}

func (c *Collector) stopRing(idx int, why string) {
	c.mu.Lock()
	r := c.rings[idx]
	delete(c.rings, idx)
	c.mu.Unlock()
	if r == nil {
		return
	}
	r.stop()
	c.removed.Add(1)
	c.logger.Info("stopped capturing", "device", r.link.name, "reason", why)
}

func (c *Collector) stopAll() {
	c.mu.Lock()
	idx := make([]int, 0, len(c.rings))
	for i := range c.rings {
		idx = append(idx, i)
	}
	c.mu.Unlock()
	for _, i := range idx {
		c.stopRing(i, "shutdown")
	}
	c.wg.Wait()
}

// Close releases every ring and the namespace handle; safe without Run.
func (c *Collector) Close() error {
	c.closeOnce.Do(func() {
		c.stopAll()
		c.closeNS()
	})
	return nil
}

// Devices returns the names of the interfaces being captured, sorted.
func (c *Collector) Devices() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.rings))
	for _, r := range c.rings {
		out = append(out, r.link.name)
	}
	sort.Strings(out)
	return out
}

// ---- metrics ----

var (
	dl  = []string{"device"}
	ddl = []string{"device", "direction"}

	packetsDesc = prometheus.NewDesc("netsight_capture_tcp_packets_total",
		"TCP packets captured and analysed, by device and direction (rx, tx; unknown on devices without a link-layer address).", ddl, nil)
	bytesDesc = prometheus.NewDesc("netsight_capture_tcp_bytes_total",
		"Wire bytes of the TCP packets captured, by device and direction.", ddl, nil)
	dfDesc = prometheus.NewDesc("netsight_capture_ip_df_packets_total",
		"Captured TCP packets with the IPv4 don't-fragment bit set.", ddl, nil)
	eventsDesc = prometheus.NewDesc("netsight_capture_tcp_events_total",
		"TCP analysis events (Wireshark tcp.analysis.* semantics, see docs/analyze.md), by device, direction of the packet and event.",
		[]string{"device", "direction", "event"}, nil)
	wscaleDesc = prometheus.NewDesc("netsight_capture_tcp_syn_window_scale_total",
		"SYN and SYN-ACK segments by the window-scale shift they announce (\"none\" without the option).", []string{"device", "scale"}, nil)
	decodeErrDesc = prometheus.NewDesc("netsight_capture_decode_errors_total",
		"Captured frames that did not decode as TCP over IPv4/IPv6.", dl, nil)
	kPacketsDesc = prometheus.NewDesc("netsight_capture_kernel_packets_total",
		"Packets the kernel passed the capture filter for this ring, dropped ones included (PACKET_STATISTICS tp_packets).", dl, nil)
	kDropsDesc = prometheus.NewDesc("netsight_capture_kernel_drops_total",
		"Packets the kernel dropped because the capture ring was full (PACKET_STATISTICS tp_drops).", dl, nil)
	kFreezesDesc = prometheus.NewDesc("netsight_capture_kernel_queue_freezes_total",
		"Times the TPACKET_V3 ring froze its queue (PACKET_STATISTICS tp_freeze_q_cnt).", dl, nil)
	flowsDesc = prometheus.NewDesc("netsight_capture_flows",
		"TCP flows in the device's flow table.", dl, nil)
	evictDesc = prometheus.NewDesc("netsight_capture_flow_evictions_total",
		"Flows removed from the device's flow table, by reason (idle: timeout; capacity: table full).", []string{"device", "reason"}, nil)
	sizeDesc = prometheus.NewDesc("netsight_capture_packet_size_bytes",
		"IP length of the captured TCP packets.", dl, nil)
	rttDesc = prometheus.NewDesc("netsight_capture_tcp_rtt_seconds",
		"ACK-based RTT samples seen from the capture point (at most one per flow and direction per round trip).", dl, nil)
	hsDesc = prometheus.NewDesc("netsight_capture_tcp_handshake_seconds",
		"Handshake legs seen from the capture point: SYN to SYN-ACK and SYN-ACK to ACK.", dl, nil)
	peerDesc = prometheus.NewDesc("netsight_capture_tcp_peer_retransmissions_total",
		"Retransmissions by remote address for the top_peers peers with the most, the rest in peer=\"other\" (opt-in).", []string{"device", "peer"}, nil)
	ifacesDesc = prometheus.NewDesc("netsight_capture_interfaces",
		"Interfaces being captured.", nil, nil)
	ifEventsDesc = prometheus.NewDesc("netsight_capture_interface_changes_total",
		"Interfaces started, stopped, skipped (unsupported link type or max_interfaces) or failed to open.", []string{"change"}, nil)
)

// Update exports the counters of every ring.
func (c *Collector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	c.mu.Lock()
	rings := make([]*ring, 0, len(c.rings))
	for _, r := range c.rings {
		rings = append(rings, r)
	}
	c.mu.Unlock()
	c.feedFlows(rings, time.Now())
	ch <- prometheus.MustNewConstMetric(ifacesDesc, prometheus.GaugeValue, float64(len(rings)))
	for name, v := range map[string]uint64{"added": c.added.Load(), "removed": c.removed.Load(), "skipped": c.skipped.Load(), "failed": c.failed.Load()} {
		ch <- prometheus.MustNewConstMetric(ifEventsDesc, prometheus.CounterValue, float64(v), name)
	}
	var errs []error
	for _, r := range rings {
		dev := r.link.name
		s := r.snapshot(c.cfg.TopPeers)
		for d := 0; d < numDirs; d++ {
			dir := dirNames[d]
			if d == dirUnknown && s.st.packets[d] == 0 {
				continue
			}
			if d != dirUnknown && r.link.linkType != tcpanalysis.LinkEthernet && s.st.packets[d] == 0 {
				continue // raw-IP devices only have "unknown"
			}
			if d == dirTx && r.link.loopback && s.st.packets[d] == 0 {
				continue // loopback packets are counted once, as rx
			}
			ch <- prometheus.MustNewConstMetric(packetsDesc, prometheus.CounterValue, float64(s.st.packets[d]), dev, dir)
			ch <- prometheus.MustNewConstMetric(bytesDesc, prometheus.CounterValue, float64(s.st.bytes[d]), dev, dir)
			ch <- prometheus.MustNewConstMetric(dfDesc, prometheus.CounterValue, float64(s.st.df[d]), dev, dir)
			for i, e := range eventDefs {
				ch <- prometheus.MustNewConstMetric(eventsDesc, prometheus.CounterValue, float64(s.st.events[d][i]), dev, dir, e.name)
			}
		}
		for i, n := range s.st.wscale {
			if n == 0 {
				continue
			}
			label := strconv.Itoa(i)
			if i == 15 {
				label = "none"
			}
			ch <- prometheus.MustNewConstMetric(wscaleDesc, prometheus.CounterValue, float64(n), dev, label)
		}
		ch <- prometheus.MustNewConstMetric(decodeErrDesc, prometheus.CounterValue, float64(s.st.decodeErrors), dev)
		ch <- prometheus.MustNewConstMetric(flowsDesc, prometheus.GaugeValue, float64(s.flows), dev)
		ch <- prometheus.MustNewConstMetric(evictDesc, prometheus.CounterValue, float64(s.evictIdle), dev, "idle")
		ch <- prometheus.MustNewConstMetric(evictDesc, prometheus.CounterValue, float64(s.evictCap), dev, "capacity")
		ch <- prometheus.MustNewConstHistogram(sizeDesc, s.size.Count, float64(s.size.Sum), s.size.Cumulative(), dev)
		ch <- prometheus.MustNewConstHistogram(rttDesc, s.rtt.Count, s.rtt.Sum.Seconds(), s.rtt.Cumulative(), dev)
		ch <- prometheus.MustNewConstHistogram(hsDesc, s.handshake.Count, s.handshake.Sum.Seconds(), s.handshake.Cumulative(), dev)
		for _, pc := range s.topPeers {
			ch <- prometheus.MustNewConstMetric(peerDesc, prometheus.CounterValue, float64(pc.count), dev, pc.addr)
		}
		kp, kd, kf, err := r.kernelStats()
		if errors.Is(err, errRingClosed) {
			continue // the device went away during this update
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("PACKET_STATISTICS on %s: %w", dev, err))
			continue
		}
		ch <- prometheus.MustNewConstMetric(kPacketsDesc, prometheus.CounterValue, float64(kp), dev)
		ch <- prometheus.MustNewConstMetric(kDropsDesc, prometheus.CounterValue, float64(kd), dev)
		ch <- prometheus.MustNewConstMetric(kFreezesDesc, prometheus.CounterValue, float64(kf), dev)
	}
	return errors.Join(errs...)
}

var (
	_ collector.Collector = (*Collector)(nil)
	_ collector.Runner    = (*Collector)(nil)
	_ collector.Closer    = (*Collector)(nil)
)
