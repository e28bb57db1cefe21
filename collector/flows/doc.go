// Package flows is the per-connection TCP health collector. It feeds a
// flow.Table from one of two back ends, exports bounded metrics from it and
// serves GET /api/v1/flows:
//
//   - ebpf (collector/flows/ebpf): a sock_ops program on the cgroup v2 root
//     with RTT, RTO, retransmit and state callbacks, closed connections
//     delivered through a ring buffer, RSTs counted by tp_btf programs.
//   - sockdiag (collector/flows/sockdiag): INET_DIAG dumps with tcp_info plus
//     the kernel's socket-destroy notifications; used when eBPF cannot load
//     (auto) or when chosen (backend: sockdiag).
//
// The table is published in collector.Shared under SharedTableKey.
package flows
