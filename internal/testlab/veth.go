package testlab

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Subnet is an IPv4 and an IPv6 prefix shared by the two ends of a link.
type Subnet struct {
	V4 netip.Prefix // e.g. 10.23.181.4/30
	V6 netip.Prefix // e.g. fd3c:9a41:7d02:51e0::/64
}

// RandomSubnet returns a random 10.x.y.z/30 and a random ULA fdXX::/64
// (RFC 4193 style). Addresses only matter inside the test's own namespaces,
// but random ones keep concurrently running test binaries that connect
// namespaces (or read routes) from ever seeing each other's prefixes.
func RandomSubnet() Subnet { return RandomSubnetBits(30) }

// RandomSubnetBits is RandomSubnet with an IPv4 prefix length between 8 and 30
// (e.g. 29 for up to 6 hosts); the IPv6 prefix is always a /64.
func RandomSubnetBits(bits4 int) Subnet {
	if bits4 < 8 || bits4 > 30 {
		panic(fmt.Sprintf("testlab: RandomSubnetBits(%d): want 8..30", bits4))
	}
	var b [11]byte
	_, _ = rand.Read(b[:])
	v4 := netip.AddrFrom4([4]byte{10, b[0], b[1], b[2]})
	p4, _ := v4.Prefix(bits4)
	var a6 [16]byte
	a6[0] = 0xfd
	copy(a6[1:8], b[3:10])
	return Subnet{V4: p4, V6: netip.PrefixFrom(netip.AddrFrom16(a6), 64)}
}

// Host4 returns the i-th host address (1-based) of the IPv4 prefix, with the
// prefix length: Host4(1) of 10.1.2.4/30 is 10.1.2.5/30.
func (s Subnet) Host4(i int) (netip.Prefix, error) {
	if !s.V4.IsValid() || !s.V4.Addr().Is4() {
		return netip.Prefix{}, errors.New("no IPv4 prefix")
	}
	size := uint64(1) << (32 - s.V4.Bits())
	if i < 1 || uint64(i) >= size-1 {
		return netip.Prefix{}, fmt.Errorf("host %d out of range for %s", i, s.V4)
	}
	b := s.V4.Masked().Addr().As4()
	n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n += uint32(i)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), s.V4.Bits()), nil
}

// Host6 returns the i-th host address (1-based, below 2^16) of the IPv6
// prefix, with the prefix length: Host6(1) of fd00:1::/64 is fd00:1::1/64.
func (s Subnet) Host6(i int) (netip.Prefix, error) {
	if !s.V6.IsValid() || !s.V6.Addr().Is6() {
		return netip.Prefix{}, errors.New("no IPv6 prefix")
	}
	if i < 1 || i > 0xffff || s.V6.Bits() > 112 {
		return netip.Prefix{}, fmt.Errorf("host %d out of range for %s", i, s.V6)
	}
	b := s.V6.Masked().Addr().As16()
	b[14], b[15] = byte(i>>8), byte(i)
	return netip.PrefixFrom(netip.AddrFrom16(b), s.V6.Bits()), nil
}

// Endpoint is one end of a veth link.
type Endpoint struct {
	NS    *NetNS
	Name  string // interface name inside NS
	Index int    // interface index inside NS
	MAC   net.HardwareAddr
	IPv4  netip.Prefix // zero when the link has no addresses
	IPv6  netip.Prefix // zero when the link has no addresses
	// PeerNS and PeerName locate the other end of the veth.
	PeerNS   *NetNS
	PeerName string
}

// Addr4 is the endpoint's IPv4 address without prefix length.
func (e Endpoint) Addr4() netip.Addr { return e.IPv4.Addr() }

// Addr6 is the endpoint's IPv6 address without prefix length.
func (e Endpoint) Addr6() netip.Addr { return e.IPv6.Addr() }

// Link is a veth pair between two namespaces.
type Link struct {
	A, B   Endpoint
	Subnet Subnet
}

type vethConfig struct {
	nameA, nameB   string
	subnet         *Subnet
	hostA, hostB   int
	noAddr         bool
	mtu            int
	kernelOffloads bool
}

// VethOption configures ConnectVeth and NewPair.
type VethOption func(*vethConfig)

// WithNames sets the interface names in a and b (default vethN, N counting
// the veths created in that namespace: veth0, veth1, ...).
func WithNames(a, b string) VethOption {
	return func(c *vethConfig) { c.nameA, c.nameB = a, b }
}

// WithSubnet uses s instead of RandomSubnet(). A gets host 1, B host 2 unless
// WithHosts says otherwise.
func WithSubnet(s Subnet) VethOption { return func(c *vethConfig) { c.subnet = &s } }

// WithHosts picks the host numbers (see Subnet.Host4) of A and B.
func WithHosts(a, b int) VethOption { return func(c *vethConfig) { c.hostA, c.hostB = a, b } }

// WithoutAddresses leaves both ends without IPv4/IPv6 addresses (e.g. for a
// bridge or relay in the middle).
func WithoutAddresses() VethOption { return func(c *vethConfig) { c.noAddr = true } }

// WithMTU sets the MTU of both ends (default 1500).
func WithMTU(mtu int) VethOption { return func(c *vethConfig) { c.mtu = mtu } }

// WithKernelOffloads keeps the kernel's default offloads (TSO, GSO, TX
// checksum offload) instead of switching them off.
func WithKernelOffloads() VethOption { return func(c *vethConfig) { c.kernelOffloads = true } }

// ConnectVeth creates a veth pair with one end in a and the other in b, both
// up, with addresses from a random (or the given) subnet: IPv4 and IPv6 (ULA,
// nodad, usable at once). By default GRO, GSO, TSO and TX checksum offload are
// off on both ends so that every skb is a wire-sized frame with a correct
// checksum: captures look like a real wire, nft loss applies per packet, and
// AF_PACKET relays can forward frames as they are. The pair vanishes with the
// namespaces.
func ConnectVeth(tb testing.TB, a, b *NetNS, opts ...VethOption) *Link {
	tb.Helper()
	l, err := connectVeth(a, b, opts...)
	if err != nil {
		tb.Fatalf("testlab: %v", err)
	}
	return l
}

func connectVeth(a, b *NetNS, opts ...VethOption) (*Link, error) {
	if a == nil || b == nil || a == b {
		return nil, errors.New("connect veth: need two distinct lab namespaces")
	}
	cfg := vethConfig{mtu: 1500, hostA: 1, hostB: 2}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.nameA == "" {
		cfg.nameA = a.nextVethName()
	}
	if cfg.nameB == "" {
		cfg.nameB = b.nextVethName()
	}
	l := &Link{}
	if !cfg.noAddr {
		if cfg.subnet != nil {
			l.Subnet = *cfg.subnet
		} else {
			l.Subnet = RandomSubnet()
		}
	}
	v := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: cfg.nameA, MTU: cfg.mtu},
		PeerName:      cfg.nameB,
		PeerNamespace: netlink.NsFd(int(b.handle)),
		PeerMTU:       uint32(cfg.mtu),
	}
	if err := a.nl.LinkAdd(v); err != nil {
		return nil, fmt.Errorf("add veth %s@%s <-> %s@%s: %w", cfg.nameA, a, cfg.nameB, b, err)
	}
	var err error
	l.A, err = setupEnd(a, cfg.nameA, cfg, l.Subnet, cfg.hostA)
	if err != nil {
		return nil, err
	}
	l.B, err = setupEnd(b, cfg.nameB, cfg, l.Subnet, cfg.hostB)
	if err != nil {
		return nil, err
	}
	l.A.PeerNS, l.A.PeerName = b, cfg.nameB
	l.B.PeerNS, l.B.PeerName = a, cfg.nameA
	for _, ep := range []Endpoint{l.A, l.B} {
		if err := waitReady(ep, 5*time.Second); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// waitReady waits until the endpoint is operationally up and its IPv6 address
// has left the tentative state: before that the kernel ignores neighbour
// solicitations for it and the first IPv6 packets would wait a second for a
// retransmitted solicitation.
func waitReady(ep Endpoint, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ready, err := endpointReady(ep)
		if err != nil {
			return err
		}
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s in netns %s not ready after %v", ep.Name, ep.NS, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func endpointReady(ep Endpoint) (bool, error) {
	link, err := ep.NS.nl.LinkByIndex(ep.Index)
	if err != nil {
		return false, fmt.Errorf("find %s in netns %s: %w", ep.Name, ep.NS, err)
	}
	if link.Attrs().OperState != netlink.OperUp {
		return false, nil
	}
	if !ep.IPv6.IsValid() {
		return true, nil
	}
	addrs, err := ep.NS.nl.AddrList(link, netlink.FAMILY_V6)
	if err != nil {
		return false, fmt.Errorf("list addresses of %s in netns %s: %w", ep.Name, ep.NS, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip == ep.IPv6.Addr() {
			return a.Flags&unix.IFA_F_TENTATIVE == 0, nil
		}
	}
	return false, nil
}

func (ns *NetNS) nextVethName() string {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	n := fmt.Sprintf("veth%d", ns.nextVeth)
	ns.nextVeth++
	return n
}

func setupEnd(ns *NetNS, name string, cfg vethConfig, sub Subnet, host int) (Endpoint, error) {
	ep := Endpoint{NS: ns, Name: name}
	link, err := ns.nl.LinkByName(name)
	if err != nil {
		return ep, fmt.Errorf("find %s in netns %s: %w", name, ns, err)
	}
	ep.Index = link.Attrs().Index
	ep.MAC = link.Attrs().HardwareAddr
	if !cfg.kernelOffloads {
		if err := ns.Do(func() error { return setLegacyOffloads(name, false) }); err != nil {
			return ep, fmt.Errorf("netns %s: %w", ns, err)
		}
	}
	if !cfg.noAddr {
		if err := assignAddrs(&ep, sub, host); err != nil {
			return ep, err
		}
	}
	if err := ns.nl.LinkSetUp(link); err != nil {
		return ep, fmt.Errorf("set %s up in netns %s: %w", name, ns, err)
	}
	return ep, nil
}

// assignAddrs adds host number host of sub (IPv4, and IPv6 with nodad) to the
// endpoint's interface and records them in ep.
func assignAddrs(ep *Endpoint, sub Subnet, host int) error {
	var err error
	if ep.IPv4, err = sub.Host4(host); err != nil {
		return fmt.Errorf("address for %s: %w", ep.Name, err)
	}
	if ep.IPv6, err = sub.Host6(host); err != nil {
		return fmt.Errorf("address for %s: %w", ep.Name, err)
	}
	link := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: ep.Index, Name: ep.Name}}
	if err := ep.NS.nl.AddrAdd(link, &netlink.Addr{IPNet: prefixToIPNet(ep.IPv4)}); err != nil {
		return fmt.Errorf("add %s to %s in netns %s: %w", ep.IPv4, ep.Name, ep.NS, err)
	}
	a6 := &netlink.Addr{IPNet: prefixToIPNet(ep.IPv6), Flags: unix.IFA_F_NODAD}
	if err := ep.NS.nl.AddrAdd(link, a6); err != nil {
		return fmt.Errorf("add %s to %s in netns %s: %w", ep.IPv6, ep.Name, ep.NS, err)
	}
	return nil
}

// SetStaticNeighbors installs permanent ARP/NDP entries on each end for the
// other end's addresses, so no ARP or neighbour solicitation ever crosses the
// link (useful when the link drops packets on purpose).
func SetStaticNeighbors(a, b Endpoint) error {
	for _, p := range [][2]Endpoint{{a, b}, {b, a}} {
		self, peer := p[0], p[1]
		for _, ip := range []netip.Prefix{peer.IPv4, peer.IPv6} {
			if !ip.IsValid() {
				continue
			}
			n := &netlink.Neigh{
				LinkIndex:    self.Index,
				State:        netlink.NUD_PERMANENT,
				IP:           net.IP(ip.Addr().AsSlice()),
				HardwareAddr: peer.MAC,
			}
			if ip.Addr().Is4() {
				n.Family = unix.AF_INET
			} else {
				n.Family = unix.AF_INET6
			}
			if err := self.NS.nl.NeighSet(n); err != nil {
				return fmt.Errorf("static neighbour %s on %s in netns %s: %w", ip.Addr(), self.Name, self.NS, err)
			}
		}
	}
	return nil
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{
		IP:   net.IP(p.Addr().AsSlice()),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}
}

// Pair is two fresh namespaces joined by a veth pair.
type Pair struct {
	A, B *NetNS
	Link *Link
}

// NewPair creates two namespaces and connects them with ConnectVeth.
func NewPair(tb testing.TB, opts ...VethOption) *Pair {
	tb.Helper()
	a := NewNetNS(tb)
	b := NewNetNS(tb)
	return &Pair{A: a, B: b, Link: ConnectVeth(tb, a, b, opts...)}
}
