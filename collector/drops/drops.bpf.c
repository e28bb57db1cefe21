//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// netsight kernel drops by reason.
//
// One tp_btf program on the kfree_skb tracepoint (Linux >= 5.17 passes the
// drop reason; consume_skb, the normal free, is another tracepoint) counts
// every freed-as-dropped sk_buff twice:
//   - `totals`, a per-CPU array indexed by reason (exact totals, never
//     full: enum values above 511 fold into 511, subsystem-coded reasons
//     into 512 + subsystem);
//   - `drops`, an LRU per-CPU hash keyed by (reason, network namespace
//     inode), bounded by max_entries: under namespace churn the least
//     recently used keys are evicted (their counts are lost; user space
//     keeps what it read before).
// The namespace is the one of skb->dev (received, forwarded and queued
// packets) or else of skb->sk (locally generated packets before routing,
// socket-level drops); 0 when the buffer has neither. Only these two
// pointer chains are read from kernel structures, with CO-RE and minimal
// local definitions, so the object needs no vmlinux.h. Reason names are
// resolved in user space from the running kernel's BTF.

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

struct net_device {
	struct {
		struct net *net;
	} nd_net;
} __attribute__((preserve_access_index));

struct sock_common {
	struct {
		struct net *net;
	} skc_net;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

struct sk_buff {
	struct net_device *dev;
	struct sock *sk;
} __attribute__((preserve_access_index));

#define REASON_SLOTS 512
#define SUBSYS_SLOTS 64
#define SUBSYS_SHIFT 16

struct drop_key {
	__u32 reason;
	__u32 netns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct drop_key);
	__type(value, __u64);
} drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, REASON_SLOTS + SUBSYS_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} totals SEC(".maps");

static __always_inline __u32 skb_netns(struct sk_buff *skb)
{
	struct net_device *dev = BPF_CORE_READ(skb, dev);
	if (dev)
		return BPF_CORE_READ(dev, nd_net.net, ns.inum);
	struct sock *sk = BPF_CORE_READ(skb, sk);
	if (sk)
		return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	return 0;
}

// ctx: struct sk_buff *skb, void *location, enum skb_drop_reason reason
// (and, since 6.12, struct sock *rx_sk).
SEC("tp_btf/kfree_skb")
int netsight_kfree_skb(__u64 *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx[0];
	__u32 reason = (__u32)ctx[2];

	__u32 slot = reason;
	__u32 subsys = reason >> SUBSYS_SHIFT;
	if (subsys)
		slot = REASON_SLOTS + (subsys < SUBSYS_SLOTS ? subsys : SUBSYS_SLOTS - 1);
	else if (slot >= REASON_SLOTS)
		slot = REASON_SLOTS - 1;
	__u64 *total = bpf_map_lookup_elem(&totals, &slot);
	if (total)
		*total += 1;

	struct drop_key key = { .reason = reason, .netns = skb_netns(skb) };
	__u64 *n = bpf_map_lookup_elem(&drops, &key);
	if (n) {
		*n += 1;
		return 0;
	}
	__u64 one = 1;
	if (bpf_map_update_elem(&drops, &key, &one, BPF_NOEXIST) == 0)
		return 0;
	// Another CPU created the key meanwhile (or the LRU could not make
	// room): count on the existing entry when there is one.
	n = bpf_map_lookup_elem(&drops, &key);
	if (n)
		*n += 1;
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
