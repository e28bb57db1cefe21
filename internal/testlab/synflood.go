package testlab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// SYNFloodConfig configures SYNFlood. The flood is bounded in count and time.
type SYNFloodConfig struct {
	// Src is the source address: an address of the sending namespace (the
	// generator never forges addresses, only source ports).
	Src netip.Addr
	// Dst and DstPort are the target; Dst has Src's family.
	Dst     netip.Addr
	DstPort uint16
	// Count is the number of SYNs to send (required, at most 10,000,000).
	Count int
	// Rate is packets per second (default 10,000).
	Rate int
	// Seed makes the source ports reproducible.
	Seed uint64
	// Timeout bounds the whole run (default 60s).
	Timeout time.Duration
}

// SYNFloodResult says what was sent.
type SYNFloodResult struct {
	Sent     int
	Ports    int // distinct source ports used
	Duration time.Duration
}

// Source ports used by SYNFlood: the non-privileged range.
const (
	synFloodFirstPort = 1024
	synFloodPorts     = 65536 - synFloodFirstPort
)

// SYNFlood sends cfg.Count TCP SYNs from inside ns through a raw socket,
// each from a different source port (a seeded random permutation of
// 1024-65535, repeated when Count exceeds it) with a random sequence number
// and an MSS option, paced at cfg.Rate. hping3's --flood has no bound and its
// --rand-source forges addresses; this has neither problem. The peer's
// SYN-ACKs are answered with RSTs by the sender's kernel (no socket owns
// the port), as in a real SYN flood from a host that does not spoof.
func (ns *NetNS) SYNFlood(ctx context.Context, cfg SYNFloodConfig) (SYNFloodResult, error) {
	var res SYNFloodResult
	if cfg.Count <= 0 || cfg.Count > 10_000_000 {
		return res, fmt.Errorf("syn flood: count %d: must be between 1 and 10000000", cfg.Count)
	}
	if !cfg.Src.IsValid() || !cfg.Dst.IsValid() || cfg.Src.Is4() != cfg.Dst.Is4() {
		return res, fmt.Errorf("syn flood: src %v and dst %v must be addresses of one family", cfg.Src, cfg.Dst)
	}
	if cfg.DstPort == 0 {
		return res, errors.New("syn flood: dst port must be set")
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 10_000
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	family := unix.AF_INET
	if cfg.Dst.Is6() {
		family = unix.AF_INET6
	}
	fd, err := ns.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return res, fmt.Errorf("syn flood: raw socket: %w", err)
	}
	defer unix.Close(fd)
	var sa unix.Sockaddr
	if cfg.Dst.Is4() {
		sa = &unix.SockaddrInet4{Addr: cfg.Dst.As4()}
	} else {
		sa = &unix.SockaddrInet6{Addr: cfg.Dst.As16()}
	}

	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	perm := rng.Perm(synFloodPorts)
	seg := make([]byte, 24)
	const tick = 10 * time.Millisecond
	perTick := max(1, cfg.Rate/int(time.Second/tick))
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	for res.Sent < cfg.Count {
		for i := 0; i < perTick && res.Sent < cfg.Count; i++ {
			sport := uint16(synFloodFirstPort + perm[res.Sent%synFloodPorts])
			buildSYN(seg, cfg.Src, cfg.Dst, sport, cfg.DstPort, rng.Uint32())
			if err := unix.Sendto(fd, seg, 0, sa); err != nil {
				if errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EAGAIN) {
					continue // local queue full: the packet is not sent, try the next
				}
				res.Duration = time.Since(start)
				return res, fmt.Errorf("syn flood: send: %w", err)
			}
			res.Sent++
		}
		select {
		case <-ctx.Done():
			res.Duration = time.Since(start)
			res.Ports = min(res.Sent, synFloodPorts)
			return res, nil
		case <-t.C:
		}
	}
	res.Duration = time.Since(start)
	res.Ports = min(res.Sent, synFloodPorts)
	return res, nil
}

// buildSYN writes a 24-byte TCP SYN with an MSS option and its checksum.
func buildSYN(b []byte, src, dst netip.Addr, sport, dport uint16, seq uint32) {
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], seq)
	binary.BigEndian.PutUint32(b[8:], 0)
	b[12] = 6 << 4 // data offset: 6 words
	b[13] = 0x02   // SYN
	binary.BigEndian.PutUint16(b[14:], 64240)
	b[16], b[17] = 0, 0 // checksum
	binary.BigEndian.PutUint16(b[18:], 0)
	b[20], b[21] = 2, 4 // MSS option
	binary.BigEndian.PutUint16(b[22:], 1460)
	binary.BigEndian.PutUint16(b[16:], tcpChecksum(src, dst, b))
}

// tcpChecksum is the Internet checksum of seg with the IPv4 or IPv6
// pseudo-header.
func tcpChecksum(src, dst netip.Addr, seg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	s, d := src.AsSlice(), dst.AsSlice()
	add(s)
	add(d)
	sum += uint32(unix.IPPROTO_TCP) + uint32(len(seg))
	add(seg)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
