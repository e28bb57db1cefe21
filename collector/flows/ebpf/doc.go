// Package ebpf is the eBPF back end of the flows collector: a sock_ops
// program attached to the cgroup v2 root tracks every TCP connection of the
// host (process attribution at connect/listen, retransmit and RTO
// callbacks; no per-ACK or state callback), the tcp_destroy_sock tracepoint
// takes each connection's final state, which user space reads through
// memory mappings (shared.go): short connections from the hot window, a
// small table claimed by compare-and-swap in socket-cookie order, the rest
// from a ring of closed records (the conns hash map holds the connections
// the hot window could not); a BPF iterator over TCP sockets (iter/tcp, run once per refresh in
// each network namespace with tracked connections) refreshes the live
// per-connection signals (RTT, bytes, chrono busy/rwnd/sndbuf-limited times,
// delivery rate, windows, receive queue, zero-window samples), and tp_btf
// programs count RSTs and record connect errors. flow.bpf.c is the source;
// flow_bpfel.go and flow_bpfel.o are bpf2go output, committed so that
// `go build` needs no clang (`go generate ./collector/flows/ebpf`
// regenerates them).
package ebpf
