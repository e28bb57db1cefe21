package testlab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Direction is where an nft loss rule applies on an interface.
type Direction int

// Directions of an nft loss rule.
const (
	// Ingress drops frames as they arrive on the interface (netdev ingress
	// hook): before conntrack, routing and sockets see them.
	Ingress Direction = iota
	// Egress drops frames as they leave the interface (netdev egress hook,
	// kernel >= 5.16), after the local stack, conntrack and qdiscs. Careful:
	// a sender in the same namespace is told (the transmit fails with
	// ENOBUFS/EPERM; ping retries, TCP defers the segment without counting a
	// retransmission), exactly like a qdisc drop. For loss the sender must
	// not notice, as on a wire, use Endpoint.AddLoss(tb, Egress, ...), which
	// drops at the ingress of the veth's other end. Egress here is right for
	// forwarded traffic (a router namespace) or for SYN-ACKs of a listener.
	Egress
)

func (d Direction) String() string {
	switch d {
	case Ingress:
		return "ingress"
	case Egress:
		return "egress"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// NftTable is the nft table (family netdev) that loss rules live in, one per
// namespace.
const NftTable = "testlab"

// Match narrows which frames a loss rule applies to. Several matches are
// ANDed.
type Match struct {
	device string // hook device instead of all interfaces
	expr   string // nft expression
}

// OnDevice hooks the rule on this interface only. Without it, the rule hooks
// every non-loopback interface present in the namespace when AddLoss runs.
// OnDevice("lo") is allowed. Several OnDevice matches add several devices.
func OnDevice(name string) Match { return Match{device: name} }

// Expr matches with a raw nft expression, e.g. `ip saddr 10.1.2.1` or
// `udp dport 53`.
func Expr(nft string) Match { return Match{expr: nft} }

// Proto matches an L4 protocol: "tcp", "udp", "icmp", "ipv6-icmp", ...
func Proto(name string) Match { return Match{expr: "meta l4proto " + name} }

// TCPFlags matches TCP segments whose flags, masked with mask, equal want,
// in nft flag syntax: TCPFlags("syn|ack", "syn|ack") is a SYN-ACK,
// TCPFlags("syn|ack", "syn") a SYN, TCPFlags("fin|rst", "rst") any RST.
func TCPFlags(mask, want string) Match {
	return Match{expr: fmt.Sprintf("tcp flags & (%s) == %s", mask, want)}
}

// SYNACK matches TCP SYN-ACK segments.
func SYNACK() Match { return TCPFlags("syn|ack", "syn|ack") }

// SrcPort matches TCP or UDP source port p.
func SrcPort(p uint16) Match {
	return Match{expr: fmt.Sprintf("meta l4proto { tcp, udp } th sport %d", p)}
}

// DstPort matches TCP or UDP destination port p.
func DstPort(p uint16) Match {
	return Match{expr: fmt.Sprintf("meta l4proto { tcp, udp } th dport %d", p)}
}

// TCPSrcPort matches TCP source port p; unlike SrcPort it combines with
// TCPFlags (nft refuses `th` after a protocol set next to `tcp flags`).
func TCPSrcPort(p uint16) Match { return Match{expr: fmt.Sprintf("tcp sport %d", p)} }

// TCPDstPort matches TCP destination port p; it combines with TCPFlags.
func TCPDstPort(p uint16) Match { return Match{expr: fmt.Sprintf("tcp dport %d", p)} }

// IPv4Only matches IPv4 packets; IPv6Only IPv6 ones.
func IPv4Only() Match { return Match{expr: "meta protocol ip"} }

// IPv6Only matches IPv6 packets.
func IPv6Only() Match { return Match{expr: "meta protocol ip6"} }

// LossRule is an nft chain dropping a share of the matching frames. It counts
// both the frames it saw (after the matches) and the frames it dropped.
type LossRule struct {
	NS      *NetNS
	Chain   string
	Dir     Direction
	Percent int
	Devices []string
	// Script is the nft script that created the rule (for failure messages).
	Script string
}

// AddLoss installs `<matches> counter numgen random mod 100 < percent counter
// drop` in a new base chain of the namespace's netdev table NftTable, hooked
// on dir of the selected devices at priority -500 (before anything else
// there). percent is 0..100; 0 only counts. The rule is removed in
// tb.Cleanup (or with the namespace). Needs the nft CLI (RequireBinary) and,
// for Egress, kernel >= 5.16.
//
// Loss applies per skb: with GSO/TSO on, one dropped skb is many wire
// segments, which is why ConnectVeth turns those offloads off by default.
func (ns *NetNS) AddLoss(tb testing.TB, dir Direction, percent int, matches ...Match) *LossRule {
	tb.Helper()
	RequireBinary(tb, "nft")
	if dir == Egress {
		RequireKernel(tb, 5, 16, "nft netdev egress hook")
	}
	r, err := ns.addLoss(dir, percent, matches...)
	if err != nil {
		tb.Fatalf("testlab: %v", err)
	}
	tb.Cleanup(func() { _ = r.Remove() })
	return r
}

// AddLoss drops percent % of the frames that cross this veth endpoint's wire
// in direction dir, without the sender noticing: Ingress drops frames arriving
// at this endpoint (rule on its ingress, in its namespace), Egress drops
// frames leaving it (rule on the ingress of the peer end, in the peer's
// namespace). OnDevice matches are ignored; other matches apply as in
// NetNS.AddLoss.
func (e Endpoint) AddLoss(tb testing.TB, dir Direction, percent int, matches ...Match) *LossRule {
	tb.Helper()
	ns, dev := e.NS, e.Name
	if dir == Egress {
		if e.PeerNS == nil || e.PeerName == "" {
			tb.Fatalf("testlab: endpoint %s has no known peer for wire egress loss", e.Name)
		}
		ns, dev = e.PeerNS, e.PeerName
	}
	ms := []Match{OnDevice(dev)}
	for _, m := range matches {
		if m.device == "" {
			ms = append(ms, m)
		}
	}
	return ns.AddLoss(tb, Ingress, percent, ms...)
}

func (ns *NetNS) addLoss(dir Direction, percent int, matches ...Match) (*LossRule, error) {
	if ns == nil {
		return nil, errors.New("add loss: refusing to touch the host namespace")
	}
	if percent < 0 || percent > 100 {
		return nil, fmt.Errorf("add loss: percent %d: must be within 0..100", percent)
	}
	var devices, exprs []string
	for _, m := range matches {
		if m.device != "" {
			devices = append(devices, m.device)
		}
		if m.expr != "" {
			exprs = append(exprs, m.expr)
		}
	}
	if len(devices) == 0 {
		links, err := ns.nl.LinkList()
		if err != nil {
			return nil, fmt.Errorf("add loss: list links in netns %s: %w", ns, err)
		}
		for _, l := range links {
			if l.Attrs().Name != "lo" {
				devices = append(devices, l.Attrs().Name)
			}
		}
		if len(devices) == 0 {
			return nil, fmt.Errorf("add loss: netns %s has no interface besides lo", ns)
		}
	}
	ns.mu.Lock()
	ns.nftSeq++
	chain := fmt.Sprintf("loss%d", ns.nftSeq)
	ns.mu.Unlock()

	quoted := make([]string, len(devices))
	for i, d := range devices {
		quoted[i] = strconv.Quote(d)
	}
	rule := strings.Join(append(exprs, "counter"), " ")
	switch {
	case percent >= 100:
		rule += " counter drop" // numgen's "mod 100 < 100" is out of range for nft
	case percent > 0:
		rule += fmt.Sprintf(" numgen random mod 100 < %d counter drop", percent)
	}
	script := fmt.Sprintf("table netdev %s {\n\tchain %s {\n\t\ttype filter hook %s devices = { %s } priority -500; policy accept;\n\t\t%s\n\t}\n}\n",
		NftTable, chain, dir, strings.Join(quoted, ", "), rule)
	r := &LossRule{NS: ns, Chain: chain, Dir: dir, Percent: percent, Devices: devices, Script: script}
	if err := ns.nft(script); err != nil {
		return nil, fmt.Errorf("add loss: %w", err)
	}
	return r, nil
}

func (ns *NetNS) nft(script string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := ns.Command(ctx, "nft", append(args, "-f", "-")...)
	cmd.Stdin = strings.NewReader(script)
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft in netns %s: %w: %s\nscript:\n%s", ns, err, strings.TrimSpace(out.String()), script)
	}
	return nil
}

// Counters returns how many frames reached the rule's numgen (matched the
// filters) and how many it dropped.
func (r *LossRule) Counters() (matched, dropped uint64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := r.NS.Run(ctx, "nft", "-j", "list", "chain", "netdev", NftTable, r.Chain)
	if err != nil {
		return 0, 0, fmt.Errorf("loss rule counters: %w", err)
	}
	c, err := parseNftCounters([]byte(out))
	if err != nil {
		return 0, 0, fmt.Errorf("loss rule %s counters: %w", r.Chain, err)
	}
	switch len(c) {
	case 1:
		return c[0], 0, nil
	case 2:
		return c[0], c[1], nil
	}
	return 0, 0, fmt.Errorf("loss rule %s: want 1 or 2 counters, found %d", r.Chain, len(c))
}

// parseNftCounters returns the packet counts of the counter statements of
// the rules in `nft -j list ...` output, in order.
func parseNftCounters(data []byte) ([]uint64, error) {
	var doc struct {
		Nftables []struct {
			Rule *struct {
				Expr []map[string]json.RawMessage `json:"expr"`
			} `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse nft json: %w", err)
	}
	var out []uint64
	for _, obj := range doc.Nftables {
		if obj.Rule == nil {
			continue
		}
		for _, e := range obj.Rule.Expr {
			raw, ok := e["counter"]
			if !ok {
				continue
			}
			var c struct {
				Packets *uint64 `json:"packets"`
			}
			if err := json.Unmarshal(raw, &c); err != nil || c.Packets == nil {
				return nil, fmt.Errorf("parse nft counter %s: want packets", raw)
			}
			out = append(out, *c.Packets)
		}
	}
	return out, nil
}

// Remove deletes the rule's chain. Idempotent enough for Cleanup: removing
// from a namespace that is gone is not an error.
func (r *LossRule) Remove() error {
	r.NS.mu.Lock()
	closed := r.NS.closed
	r.NS.mu.Unlock()
	if closed {
		return nil
	}
	script := fmt.Sprintf("flush chain netdev %s %s\ndelete chain netdev %s %s\n", NftTable, r.Chain, NftTable, r.Chain)
	if err := r.NS.nft(script); err != nil && !strings.Contains(err.Error(), "No such file or directory") {
		return fmt.Errorf("remove loss rule: %w", err)
	}
	return nil
}
