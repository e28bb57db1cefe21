//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// netsight per-connection TCP health.
//
// A sock_ops program on the cgroup v2 root sees every TCP socket of every
// process below it (network namespaces do not matter). It enables the RTO,
// retransmit and state callbacks on each socket at connect/accept (RTT once
// established), keeps one entry per connection (keyed by socket cookie) in
// `conns` (a hash map: socket-local storage was measured slower), and
// on the transition to CLOSE sends the final record through the `events`
// ring buffer and deletes the entry. Two tp_btf programs count RSTs sent and
// received. Besides UAPI types (struct bpf_sock_ops is stable) only the
// network namespace inode is read from kernel structures, with CO-RE and a
// minimal local definition of the few fields on the path, so the object
// needs no vmlinux.h; bpf_get_netns_cookie in sock_ops needs Linux >= 5.15.

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// The fields on the path sk->__sk_common.skc_net.net->ns.inum, relocated
// against the running kernel's BTF at load (CO-RE), so the layout of these
// local definitions does not matter.
struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

struct sock_common {
	struct {
		struct net *net;
	} skc_net;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

#define AF_INET 2
#define AF_INET6 10

#define DIR_CLIENT 1
#define DIR_SERVER 2

#define F_FAILED 1
#define F_ESTABLISHED 2

// Callbacks while connecting: handshake retransmissions, SYN timeouts and
// the close of a failed connect. The RTT callback is enabled only once the
// connection is established: the SYN-ACK's RTT sample is read at
// ACTIVE_ESTABLISHED anyway, so one callback per client connection is saved.
#define CB_CONNECT_FLAGS (BPF_SOCK_OPS_RTO_CB_FLAG | \
			  BPF_SOCK_OPS_RETRANS_CB_FLAG | BPF_SOCK_OPS_STATE_CB_FLAG)
#define CB_FLAGS (CB_CONNECT_FLAGS | BPF_SOCK_OPS_RTT_CB_FLAG)

// Counters in `stats` (per CPU; user space sums them).
#define STAT_RINGBUF_LOST 0
#define STAT_CONNS_FULL 1
#define STAT_LISTENERS_FULL 2
#define STAT_EVENTS 3
#define STAT_UNTRACKED_CLOSE 4
#define STAT_MAX 5

// Closed connections are submitted without waking user space (which drains
// the ring on a timer) until this many bytes wait; set before load.
const volatile __u32 wakeup_bytes = 1 << 20;

struct conn {
	__u64 cookie;
	__u64 start_ns;   // connect() or accept (established) time
	__u64 connect_ns; // time of TCP_CONNECT_CB (client)
	__u64 end_ns;
	__u64 cgroup;
	__u64 bytes_acked;
	__u64 bytes_received;
	__u32 laddr[4];
	__u32 raddr[4];
	__u32 pid;
	__u32 data_segs_in;
	__u32 data_segs_out;
	__u32 srtt_us;
	__u32 min_rtt_us;
	__u32 max_rtt_us;
	__u32 total_retrans;
	__u32 retrans_segs;
	__u32 syn_retrans;
	__u32 rtos;
	__u32 rst_sent;
	__u32 rst_recv;
	__u32 connect_latency_us;
	__u32 netns; // inode of the socket's network namespace (0: unknown)
	__u16 lport;
	__u16 rport;
	__u8 family;
	__u8 direction;
	__u8 state;
	__u8 flags;
	char comm[16];
};

struct owner {
	__u64 cgroup;
	__u32 pid;
	char comm[16];
};

struct listen_key {
	__u64 netns;
	__u32 port;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536); // user space may change it before load
	__type(key, __u64);
	__type(value, struct conn);
} conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct listen_key);
	__type(value, struct owner);
} listeners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); // user space may change it before load
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");


static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v += 1;
}

static __always_inline void fill_addrs(struct bpf_sock_ops *skops, struct conn *c)
{
	c->family = skops->family;
	c->lport = (__u16)skops->local_port;
	c->rport = bpf_ntohs((__u16)(skops->remote_port >> 16));
	if (skops->family == AF_INET) {
		c->laddr[0] = skops->local_ip4;
		c->raddr[0] = skops->remote_ip4;
	} else {
		c->laddr[0] = skops->local_ip6[0];
		c->laddr[1] = skops->local_ip6[1];
		c->laddr[2] = skops->local_ip6[2];
		c->laddr[3] = skops->local_ip6[3];
		c->raddr[0] = skops->remote_ip6[0];
		c->raddr[1] = skops->remote_ip6[1];
		c->raddr[2] = skops->remote_ip6[2];
		c->raddr[3] = skops->remote_ip6[3];
	}
}

// netns_inum returns the inode of the socket's network namespace (what
// stat(2) of /proc/PID/ns/net shows), read once when the entry is created.
static __always_inline __u32 netns_inum(struct bpf_sock_ops *skops)
{
	struct bpf_sock *bsk = skops->sk;
	if (!bsk)
		return 0;
	// The verifier forbids arithmetic on skops->sk; the BTF pointer from
	// bpf_skc_to_tcp_sock may be read from. struct sock is the first
	// member of struct tcp_sock (the kernel's own tcp_sk() relies on it).
	struct sock *sk = (struct sock *)bpf_skc_to_tcp_sock(bsk);
	if (!sk)
		return 0;
	// Direct loads through the BTF pointer (the verifier turns them into
	// fault-safe loads; the offsets are CO-RE relocated): cheaper than
	// BPF_CORE_READ's two bpf_probe_read_kernel calls (measured with
	// bench/flows: +0.19 us per flow against +0.05 us, within noise).
	struct net *net = sk->__sk_common.skc_net.net;
	if (!net)
		return 0;
	return net->ns.inum;
}

static __always_inline void fill_stats(struct bpf_sock_ops *skops, struct conn *c)
{
	c->bytes_acked = skops->bytes_acked;
	c->bytes_received = skops->bytes_received;
	c->data_segs_in = skops->data_segs_in;
	c->data_segs_out = skops->data_segs_out;
	c->total_retrans = skops->total_retrans;
	c->state = (__u8)skops->state;
	__u32 srtt = skops->srtt_us >> 3;
	if (srtt) {
		c->srtt_us = srtt;
	}
	__u32 mn = skops->rtt_min;
	if (mn && (c->min_rtt_us == 0 || mn < c->min_rtt_us))
		c->min_rtt_us = mn;
}

static __always_inline struct conn *track(struct bpf_sock_ops *skops, __u64 cookie, __u8 dir)
{
	struct conn c = {};
	c.cookie = cookie;
	c.direction = dir;
	c.start_ns = bpf_ktime_get_ns();
	c.netns = netns_inum(skops);
	fill_addrs(skops, &c);
	if (bpf_map_update_elem(&conns, &cookie, &c, BPF_NOEXIST) != 0) {
		struct conn *old = bpf_map_lookup_elem(&conns, &cookie);
		if (old)
			return old;
		stat_inc(STAT_CONNS_FULL);
		return 0;
	}
	return bpf_map_lookup_elem(&conns, &cookie);
}

static __always_inline void emit_close(struct bpf_sock_ops *skops, __u64 cookie, __u32 old_state)
{
	struct conn *c = bpf_map_lookup_elem(&conns, &cookie);
	if (!c) {
		stat_inc(STAT_UNTRACKED_CLOSE);
		return;
	}
	fill_stats(skops, c);
	c->end_ns = bpf_ktime_get_ns();
	c->state = BPF_TCP_CLOSE;
	if (old_state == BPF_TCP_SYN_SENT || old_state == BPF_TCP_SYN_RECV)
		c->flags |= F_FAILED;
	struct conn *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(STAT_RINGBUF_LOST);
	} else {
		__builtin_memcpy(e, c, sizeof(*e));
		__u64 flags = BPF_RB_NO_WAKEUP;
		if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
			flags = BPF_RB_FORCE_WAKEUP;
		bpf_ringbuf_submit(e, flags);
		stat_inc(STAT_EVENTS);
	}
	bpf_map_delete_elem(&conns, &cookie);
}

// set_cb_flags enables the callbacks in want, calling the helper only when
// one is missing.
static __always_inline void set_cb_flags(struct bpf_sock_ops *skops, __u32 want)
{
	__u32 f = skops->bpf_sock_ops_cb_flags;
	if ((f & want) != want)
		bpf_sock_ops_cb_flags_set(skops, f | want);
}

SEC("sockops")
int netsight_sockops(struct bpf_sock_ops *skops)
{
	__u32 family = skops->family;
	if (family != AF_INET && family != AF_INET6)
		return 1;
	__u32 op = skops->op;
	__u64 cookie;
	struct conn *c;

	switch (op) {
	case BPF_SOCK_OPS_TCP_LISTEN_CB: {
		// listen(2) runs in the owner's process context.
		struct listen_key k = {};
		k.netns = bpf_get_netns_cookie(skops);
		k.port = skops->local_port;
		struct owner o = {};
		o.pid = bpf_get_current_pid_tgid() >> 32;
		o.cgroup = bpf_get_current_cgroup_id();
		bpf_get_current_comm(&o.comm, sizeof(o.comm));
		if (bpf_map_update_elem(&listeners, &k, &o, BPF_ANY) != 0)
			stat_inc(STAT_LISTENERS_FULL);
		return 1;
	}
	case BPF_SOCK_OPS_TCP_CONNECT_CB: {
		// connect(2) runs in the caller's process context. The entry is
		// built on the stack and stored with one map update (no lookup).
		struct conn n = {};
		cookie = bpf_get_socket_cookie(skops);
		n.cookie = cookie;
		n.direction = DIR_CLIENT;
		n.start_ns = bpf_ktime_get_ns();
		n.connect_ns = n.start_ns;
		n.pid = bpf_get_current_pid_tgid() >> 32;
		n.cgroup = bpf_get_current_cgroup_id();
		bpf_get_current_comm(&n.comm, sizeof(n.comm));
		n.netns = netns_inum(skops);
		fill_addrs(skops, &n);
		if (bpf_map_update_elem(&conns, &cookie, &n, BPF_ANY) != 0)
			stat_inc(STAT_CONNS_FULL);
		set_cb_flags(skops, CB_CONNECT_FLAGS);
		return 1;
	}
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		cookie = bpf_get_socket_cookie(skops);
		// Normally tracked since connect: one lookup.
		c = bpf_map_lookup_elem(&conns, &cookie);
		if (!c)
			c = track(skops, cookie, DIR_CLIENT);
		if (c) {
			__u64 now = bpf_ktime_get_ns();
			if (c->connect_ns && now > c->connect_ns)
				c->connect_latency_us = (now - c->connect_ns) / 1000;
			c->flags |= F_ESTABLISHED;
			fill_addrs(skops, c); // the local address is final now
			fill_stats(skops, c);
			if (c->srtt_us > c->max_rtt_us) // the SYN-ACK's sample
				c->max_rtt_us = c->srtt_us;
		}
		set_cb_flags(skops, CB_FLAGS);
		return 1;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB: {
		// One map update with the entry built on the stack.
		struct conn n = {};
		cookie = bpf_get_socket_cookie(skops);
		n.cookie = cookie;
		n.direction = DIR_SERVER;
		n.start_ns = bpf_ktime_get_ns();
		n.flags = F_ESTABLISHED;
		n.netns = netns_inum(skops);
		fill_addrs(skops, &n);
		fill_stats(skops, &n);
		n.max_rtt_us = n.srtt_us;
		struct listen_key k = {};
		k.netns = bpf_get_netns_cookie(skops);
		k.port = skops->local_port;
		struct owner *o = bpf_map_lookup_elem(&listeners, &k);
		if (o) {
			n.pid = o->pid;
			n.cgroup = o->cgroup;
			__builtin_memcpy(n.comm, o->comm, sizeof(n.comm));
		}
		if (bpf_map_update_elem(&conns, &cookie, &n, BPF_ANY) != 0)
			stat_inc(STAT_CONNS_FULL);
		set_cb_flags(skops, CB_FLAGS);
		return 1;
	}
	case BPF_SOCK_OPS_RTT_CB:
		cookie = bpf_get_socket_cookie(skops);
		c = bpf_map_lookup_elem(&conns, &cookie);
		if (c) {
			fill_stats(skops, c);
			__u32 srtt = skops->srtt_us >> 3;
			if (srtt > c->max_rtt_us)
				c->max_rtt_us = srtt;
		}
		return 1;
	case BPF_SOCK_OPS_RTO_CB:
		cookie = bpf_get_socket_cookie(skops);
		c = bpf_map_lookup_elem(&conns, &cookie);
		if (c)
			c->rtos++;
		return 1;
	case BPF_SOCK_OPS_RETRANS_CB:
		// args: seq, segments, return value of the retransmit
		if (skops->args[2] != 0)
			return 1;
		cookie = bpf_get_socket_cookie(skops);
		c = bpf_map_lookup_elem(&conns, &cookie);
		if (c) {
			__u32 segs = skops->args[1];
			c->retrans_segs += segs;
			__u32 st = skops->state;
			if (st == BPF_TCP_SYN_SENT || st == BPF_TCP_SYN_RECV)
				c->syn_retrans += segs;
			c->total_retrans = skops->total_retrans;
		}
		return 1;
	case BPF_SOCK_OPS_STATE_CB:
		// args: old state, new state
		if (skops->args[1] == BPF_TCP_CLOSE) {
			cookie = bpf_get_socket_cookie(skops);
			emit_close(skops, cookie, skops->args[0]);
		}
		return 1;
	}
	return 1;
}

// RSTs. The socket cookie is the same one sock_ops sees.

static __always_inline void count_rst(void *sk, int sent)
{
	if (!sk)
		return;
	__u64 cookie = bpf_get_socket_cookie(sk);
	struct conn *c = bpf_map_lookup_elem(&conns, &cookie);
	if (!c)
		return;
	if (sent)
		c->rst_sent++;
	else
		c->rst_recv++;
}

SEC("tp_btf/tcp_receive_reset")
int netsight_rst_recv(__u64 *ctx)
{
	count_rst((void *)ctx[0], 0);
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int netsight_rst_send(__u64 *ctx)
{
	count_rst((void *)ctx[0], 1);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
