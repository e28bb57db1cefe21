// Package flows is the per-connection TCP health collector. It feeds the
// agent's flow.Table (collector.Deps.Flows) from one of two back ends, rolls
// it every interval and exports bounded metrics from it (web serves
// GET /api/v1/flows from the same table):
//
//   - ebpf (collector/flows/ebpf): a sock_ops program on the cgroup v2 root
//     (connect/accept, RTO and retransmit callbacks), closed connections
//     from the tcp_destroy_sock tracepoint through a memory-mapped ring, live
//     per-connection signals from an iter/tcp pass per refresh, RSTs and
//     connect errors from tp_btf programs.
//   - sockdiag (collector/flows/sockdiag): INET_DIAG dumps with tcp_info plus
//     the kernel's socket-destroy notifications; used when eBPF cannot load
//     (auto) or when chosen (backend: sockdiag).
package flows
