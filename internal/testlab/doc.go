// Package testlab is the network-namespace test lab that privileged tests of
// every netsight package use: namespaces, veth links, loss, delay, traffic
// generators and the CI guard. It only touches namespaces it creates itself;
// all traffic stays on loopback or on veths between those namespaces, with
// addresses the lab assigns (random 10.x.y.z/30 and fdXX::/64 ULA prefixes).
//
// # CI guard
//
// RequireRoot, Require, RequireBinary and RequireKernel skip a test whose
// requirement is missing, except when the environment has CI=true: then they
// fail it, so a privileged test can never silently not run in CI.
//
// # Namespaces
//
// NewNetNS(tb) creates a named namespace ("nstest-<pid>-<random>", visible to
// `ip netns`), brings lo up and deletes it in tb.Cleanup, killing every
// process still running in it. Go code runs inside with ns.Do(fn); sockets
// created there stay in the namespace, which is what ns.Listen, ns.ListenTCP,
// ns.ListenPacket and ns.Dial do. External tools run with ns.Command or ns.Run
// (`ip netns exec NAME ...`). ns.Handle() is a netlink handle inside it. A nil
// *NetNS means the test process's own namespace, so the servers and
// generators below also work on loopback without root.
//
// # Topologies
//
// Pair (NewPair or ConnectVeth on existing namespaces):
//
//	ns A [veth0 10.x.y.1/30, fdXX::1/64] <--veth--> [veth0 10.x.y.2/30, fdXX::2/64] ns B
//
// RelayedPath (NewRelayedPath):
//
//	client [veth0 .1] <--veth--> [veth0  middle  veth1] <--veth--> [veth0 .2] server
//	                              \______ Relay ______/
//
// The relay is a layer-2 bridge: client and server share one subnet, with
// static ARP/NDP entries for each other, so only their IP traffic crosses it.
// The middle namespace has no addresses and IPv6 off.
//
// By default every lab veth has GRO, GSO, TSO and TX checksum offload off, so
// every skb is a wire-sized frame with a valid checksum: tcpdump in a lab
// namespace shows what a wire would carry, nft loss hits single packets, and
// the relay can forward frames untouched. WithKernelOffloads keeps the
// kernel's defaults instead.
//
// # Delay, jitter and loss: the relay
//
// The kernel here has no netem, so Relay does it in user space: one AF_PACKET
// socket per middle veth (promiscuous, 32 MiB buffers, own transmissions
// ignored), a reader per direction that decides loss with a seeded PCG and
// stamps each frame's release time (arrival + Delay ± uniform Jitter), a
// time-ordered queue, and a writer per direction woken by a timerfd that sends
// due frames out of the other veth. Order is kept unless Impairment.Reorder.
// It carries iperf3 at 300-700 Mbit/s on a 2-core VM with no frame lost on
// its own; RelayStats separates loss on purpose (DroppedLoss) from anything
// unintended (Unintended: queue overflow, socket buffer drops, oversized
// frames, send errors). SetImpairment changes a direction on the fly.
// RelayConfig.LossMatch limits loss to chosen frames: with IsICMPEchoRequest
// only echo requests are dropped, so a prober's lost count must equal
// DroppedLoss exactly.
//
// # Loss with nftables
//
// ns.AddLoss(tb, Ingress|Egress, percent, matches...) adds a chain to the
// namespace's netdev table "testlab" with
// `<matches> counter numgen random mod 100 < percent counter drop`, hooked on
// the given devices (OnDevice) or all non-lo interfaces. Matches: Proto,
// SYNACK, TCPFlags, SrcPort, DstPort, IPv4Only, IPv6Only, Expr (raw nft).
// LossRule.Counters reports matched and dropped packets. Egress drops in the
// sender's own namespace are reported to the sender (like a qdisc drop); for
// wire-like loss use Endpoint.AddLoss, whose Egress hooks the peer's ingress:
//
//	rule := pair.Link.B.AddLoss(t, testlab.Egress, 10, testlab.SYNACK(), testlab.SrcPort(443))
//
// BinomialBounds gives exact bounds to check a measured count against the
// configured probability.
//
// # Traffic
//
// Everything is bounded in count and time:
//   - ns.Ping: the ping CLI, per-reply RTTs, MedianRTT, ReplyRatio.
//   - Iperf3 / StartIperf3Server + RunIperf3: one-off iperf3 server on a free
//     port, client with -J, parsed into bytes, bit/s, retransmits and
//     per-stream ports. Note: unthrottled TCP over veths with offloads off
//     reorders a little (per-CPU backlogs), so expect some retransmits; set
//     Bitrate for a clean baseline.
//   - ns.ShortConns: N connect/write/read-echo/close connections with bounded
//     concurrency and time; ns.HoldConns: N idle connections held until
//     Release or ctx end. Per-connection local address, bytes and error.
//   - ns.StartEchoServer / ns.StartSinkServer: small counting TCP servers.
//   - ns.SYNFlood: Count TCP SYNs through a raw socket from a seeded random
//     permutation of source ports 1024-65535 (never forged addresses), paced
//     at Rate per second; for flood tests of capture and flow tables.
//
// # Memory limits
//
// NewCgroup(tb, bytes) (CreateCgroup without a TB) is a memory-limited
// cgroup under /sys/fs/cgroup: cgroup v2 memory.max where the v2 hierarchy
// has the memory controller, else the v1 memory hierarchy
// (memory.limit_in_bytes) of hybrid hosts. cg.Start(cmd) / cg.Wrap(cmd) run a
// command that enters the cgroup before it executes (through sh, same pid),
// so none of its allocations escape the limit; cg.Memory() reports current
// and peak usage, limit hits and OOM kills; Cleanup kills what is left and
// removes the directory. Every test that may blow up memory (floods, churn,
// hostile queries) runs the agent this way. ReadProcStats(pid) gives RSS,
// peak RSS (VmHWM), open fds and threads from /proc.
//
// # Without a testing.TB
//
// Programs such as the benchmarks under bench/ use the same lab through
// CreateNetNS, Connect, CreateRelayedPath, NewRelay and ns.NewLossRule, which
// return errors instead of failing a test; the caller closes what it created
// (NetNS.Close, RelayedPath.Close, Relay.Close, LossRule.Remove). ns.Socket is
// socket(2) inside a namespace, for code that takes a socket function.
//
// # Requirements
//
// Root (CAP_NET_ADMIN, CAP_SYS_ADMIN for the bind mount), kernel >= 5.16 for
// the netdev egress hook, and the tools ip (iproute2), ping (iputils-ping),
// nft (nftables) and iperf3 for the helpers that run them.
package testlab
