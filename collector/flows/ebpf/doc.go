// Package ebpf is the eBPF back end of the flows collector: a sock_ops
// program attached to the cgroup v2 root tracks every TCP connection of the
// host (RTT, RTO, retransmit and state callbacks, process attribution at
// connect/listen), delivers closed connections through a ring buffer, and two
// tp_btf programs count RSTs. flow.bpf.c is the source; flow_bpfel.go and
// flow_bpfel.o are bpf2go output, committed so that `go build` needs no
// clang (`go generate ./collector/flows/ebpf` regenerates them).
package ebpf
