// Package drops counts the packets the kernel drops, by drop reason and
// network namespace, with an eBPF program on tp_btf/kfree_skb (drops.bpf.c,
// compiled by bpf2go; the object and bindings are committed). Reason names
// come from the running kernel's BTF (enum skb_drop_reason), so they are
// right on any kernel. It exports netsight_skb_drops_total{reason} and
// gives the health verdict DropsByNetNS and DropsTotal.
package drops
