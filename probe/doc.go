// Package probe is netsight's active-probing engine: ICMP echo and TCP
// handshake probers, a heap scheduler that runs thousands of targets per
// process, and per-period aggregation (sent, received, loss, RTT min/avg/max,
// jitter). The collector (collector/probe) and the one-shot command
// (`netsight probe`) both use it.
//
// ICMP uses one socket per address family (and per DF setting) shared by
// every target: an unprivileged datagram ("ping") socket when
// net.ipv4.ping_group_range allows it, a raw socket otherwise. Replies are
// matched by sequence number plus a payload token (the kernel rewrites the
// echo identifier of datagram sockets), and RTTs are measured from the
// kernel's receive timestamp (SO_TIMESTAMPNS).
//
// TCP probes time the handshake on a non-blocking socket and classify the
// outcome: open, refused (RST), timeout, unreachable. SYN retransmissions
// read from tcp_info count as lost packets, so SYN or SYN-ACK loss shows up as
// loss rather than as a 1 s RTT spike. Sockets close with SO_LINGER 0 so no
// TIME_WAIT state piles up.
//
// A target that never answers is 100% loss and has no RTT: RTT statistics
// are absent (NaN/nil), never 0.
package probe
