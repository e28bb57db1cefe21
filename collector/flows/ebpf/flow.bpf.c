//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// netsight per-connection TCP health.
//
// A sock_ops program on the cgroup v2 root sees every TCP socket of every
// process below it (network namespaces do not matter). At connect/accept it
// enables the RTO, retransmit and state callbacks on the socket (no per-ACK
// RTT callback: RTT, bytes and segments are read from the socket instead),
// keeps one entry per connection, keyed by socket cookie, and when the
// socket is destroyed (tcp_destroy_sock tracepoint) reads its final state.
//
// Entries live first in the hot window: `hot_keys` holds buckets of eight
// cookies (one cache line), `hot` the entries at the same indexes, and a
// cookie's bucket is its run of eight in the kernel's cookie sequence, so
// connections opened one after another take neighbouring slots and short
// ones keep reusing a small, cache-warm window. A slot is claimed with a
// compare-and-swap (cookie | BUSY while filled, then the cookie); at close
// the program marks it (cookie | CLOSED) and user space, which maps the
// window, copies the record and frees the slot: a short connection costs
// no lock, no copy and no map operation in the kernel. When its bucket is
// full (long-lived connections, or user space behind), a connection goes
// to `conns`, a hash map (one update when created, built in per-CPU
// scratch), and at close its record is copied into `closed` and the entry
// deleted. `closed` is a ring of slots that user space reads through mmap:
// a record is reserved by an atomic counter and published by a sequence
// word, so a close takes no lock and never disables interrupts (a BPF ring
// buffer does both for every record: on a paravirtualised VM that was a
// third of the in-kernel cost), and user space makes no system call to
// read it.
// A BPF iterator over TCP sockets (iter/tcp, Linux 5.8+) refreshes the live
// state of every tracked connection of one network namespace in place once
// per poll interval (user space runs it in each namespace it can enter).
// Two tp_btf programs count RSTs sent and received. Kernel fields are read
// with CO-RE through bpf_skc_to_tcp_sock (5.9+) and minimal local
// definitions of the structs on the path (relocated against the running
// kernel's BTF at load), so the object needs no vmlinux.h;
// bpf_get_netns_cookie in sock_ops needs Linux >= 5.15.

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

// Kernel structures, relocated against the running kernel's BTF at load
// (CO-RE): the layout of these local definitions does not matter, only the
// names and types of the fields.
struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
	__u64 net_cookie;
} __attribute__((preserve_access_index));

struct in6_addr {
	union {
		__u32 u6_addr32[4];
	} in6_u;
} __attribute__((preserve_access_index));

struct sock_common {
	__u32 skc_daddr;
	__u32 skc_rcv_saddr;
	__u16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
	unsigned char skc_state;
	struct {
		struct net *net;
	} skc_net;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	int sk_err;
} __attribute__((preserve_access_index));

struct minmax_sample {
	__u32 t;
	__u32 v;
} __attribute__((preserve_access_index));

struct minmax {
	struct minmax_sample s[3];
} __attribute__((preserve_access_index));

struct tcp_sock {
	__u32 srtt_us;
	struct minmax rtt_min;
	__u32 rcv_nxt;
	__u32 copied_seq;
	__u32 snd_una;
	__u32 write_seq;
	__u32 snd_wnd;
	__u32 rcv_wnd;
	__u32 mss_cache;
	__u32 rate_delivered;
	__u32 rate_interval_us;
	__u32 dsack_dups;
	__u32 total_retrans;
	__u32 data_segs_in;
	__u32 data_segs_out;
	__u64 bytes_acked;
	__u64 bytes_received;
	__u32 chrono_start;
	__u32 chrono_stat[3];
	// A 2-bit field up to Linux 6.x, a plain byte later: read with
	// BPF_CORE_READ_BITFIELD, which relocates either.
	__u8 chrono_type : 2;
} __attribute__((preserve_access_index));

struct seq_file;
struct bpf_map;

struct bpf_iter_meta {
	struct seq_file *seq;
} __attribute__((preserve_access_index));

struct bpf_iter__tcp {
	struct bpf_iter_meta *meta;
	struct sock_common *sk_common;
} __attribute__((preserve_access_index));

#define AF_INET 2
#define AF_INET6 10

#define DIR_CLIENT 1
#define DIR_SERVER 2

#define F_FAILED 1
#define F_ESTABLISHED 2

// Callbacks on tracked sockets: retransmissions (handshake included) and
// RTOs, both rare. No RTT callback (it runs on every ACK) and no state
// callback (three or four per connection): the close is the tcp_destroy_sock
// tracepoint, once per socket.
#define CB_FLAGS (BPF_SOCK_OPS_RTO_CB_FLAG | BPF_SOCK_OPS_RETRANS_CB_FLAG)

// Counters in `stats` (per CPU; user space sums them).
#define STAT_RINGBUF_LOST 0 // unused: user space counts the records it missed
#define STAT_CONNS_FULL 1
#define STAT_LISTENERS_FULL 2
#define STAT_EVENTS 3
#define STAT_UNTRACKED_CLOSE 4
#define STAT_HOT_FULL 5 // new connections that found their hot bucket full
#define STAT_SEEDED 6   // connections opened before attach, tracked from an iterator pass
#define STAT_MAX 7

struct conn {
	__u64 cookie;
	__u64 start_ns;   // connect() or accept (established) time
	__u64 connect_ns; // time of TCP_CONNECT_CB (client)
	__u64 end_ns;
	__u64 cgroup;
	__u64 bytes_acked;
	__u64 bytes_received;
	__u64 delivery_rate; // bytes/s, as tcpi_delivery_rate
	__u32 laddr[4];
	__u32 raddr[4];
	__u32 pid;
	__u32 data_segs_in;
	__u32 data_segs_out;
	__u32 srtt_us;
	__u32 min_rtt_us;
	__u32 max_rtt_us; // largest srtt sampled
	__u32 total_retrans;
	__u32 retrans_segs;
	__u32 syn_retrans;
	__u32 rtos;
	__u32 rst_sent;
	__u32 rst_recv;
	__u32 connect_latency_us;
	__u32 netns; // inode of the socket's network namespace (0: unknown)
	// tcp_sock chrono_stat in jiffies (the running period included): busy
	// (data in flight), limited by the peer's receive window, limited by
	// the send buffer. User space converts with the kernel's HZ.
	__u32 chrono[3];
	__u32 dsack_dups;
	__u32 snd_wnd;
	__u32 rcv_wnd;
	__u32 recv_queue; // rcv_nxt - copied_seq
	__u32 zero_wnd_sent; // samples with rcv_wnd 0
	__u32 zero_wnd_recv; // samples with snd_wnd 0 and data queued
	__u32 sk_err; // sk_err at the close of a connect that failed
	__u32 samples;
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

// Per-CPU scratch where a new entry is built before its one map update
// (struct conn is too large for comfort on the 512-byte stack).
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct conn);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct listen_key);
	__type(value, struct owner);
} listeners SEC(".maps");

// The hot window (see the top of the file); its size is set before load.
#define SLOTS 8
#define BUSY (1ULL << 63)   // slot being filled: cookie | BUSY
#define CLOSED (1ULL << 62) // closed, for user space to read and free

struct bucket {
	__u64 k[SLOTS];
};

const volatile __u32 hot_buckets = 1;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bucket);
} hot_keys SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, SLOTS);
	__type(key, __u32);
	__type(value, struct conn);
} hot SEC(".maps");

// The ring of closed connections: record i goes to slot i & ring_mask and
// is published by writing seq = i + 1 last; user space follows the head.
struct closed_rec {
	__u64 seq;
	struct conn c;
};

const volatile __u32 ring_mask = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1); // user space sets it before load
	__type(key, __u32);
	__type(value, struct closed_rec);
} closed SEC(".maps");

struct ring_head {
	__u64 head; // records reserved so far
	__u64 pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ring_head);
} head SEC(".maps");

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

// tcp_of returns the socket as a BTF pointer that may be read from (the
// verifier forbids loads through skops->sk itself); NULL for request and
// time-wait sockets.
static __always_inline struct tcp_sock *tcp_of(struct bpf_sock_ops *skops)
{
	struct bpf_sock *bsk = skops->sk;
	if (!bsk)
		return 0;
	return bpf_skc_to_tcp_sock(bsk);
}

// netns_inum returns the inode of the socket's network namespace (what
// stat(2) of /proc/PID/ns/net shows), read once when the entry is created.
// struct sock is the first member of struct tcp_sock (the kernel's own
// tcp_sk() relies on it).
static __always_inline __u32 netns_inum(struct tcp_sock *tp)
{
	if (!tp)
		return 0;
	// Direct loads through the BTF pointer (the verifier turns them into
	// fault-safe loads; the offsets are CO-RE relocated).
	struct net *net = ((struct sock *)tp)->__sk_common.skc_net.net;
	if (!net)
		return 0;
	return net->ns.inum;
}

// sample reads the connection's counters and signals from the socket, as
// tcp_get_info does: at established, at each iterator pass and at close.
static __always_inline void sample(struct tcp_sock *tp, struct conn *c)
{
	c->bytes_acked = tp->bytes_acked;
	c->bytes_received = tp->bytes_received;
	c->data_segs_in = tp->data_segs_in;
	c->data_segs_out = tp->data_segs_out;
	c->total_retrans = tp->total_retrans;
	__u32 srtt = tp->srtt_us >> 3;
	if (srtt) {
		c->srtt_us = srtt;
		if (srtt > c->max_rtt_us)
			c->max_rtt_us = srtt;
	}
	__u32 mn = tp->rtt_min.s[0].v;
	if (mn && mn != ~0U && (c->min_rtt_us == 0 || mn < c->min_rtt_us))
		c->min_rtt_us = mn;

	__u32 rate = tp->rate_delivered, intv = tp->rate_interval_us;
	if (rate && intv)
		c->delivery_rate = (__u64)rate * tp->mss_cache * 1000000 / intv;

	// chrono_stat[type-1] accumulates the finished periods of each type;
	// the running one (chrono_type, since chrono_start) is added here.
	__u32 now = (__u32)bpf_jiffies64();
	__u32 type = BPF_CORE_READ_BITFIELD(tp, chrono_type);
	__u32 start = tp->chrono_start;
	c->chrono[0] = tp->chrono_stat[0];
	c->chrono[1] = tp->chrono_stat[1];
	c->chrono[2] = tp->chrono_stat[2];
	__u32 run = now - start;
	if (type == 1)
		c->chrono[0] += run;
	else if (type == 2)
		c->chrono[1] += run;
	else if (type == 3)
		c->chrono[2] += run;

	c->dsack_dups = tp->dsack_dups;
	__u32 snd_wnd = tp->snd_wnd, rcv_wnd = tp->rcv_wnd;
	c->snd_wnd = snd_wnd;
	c->rcv_wnd = rcv_wnd;
	__s32 q = (__s32)(tp->rcv_nxt - tp->copied_seq);
	c->recv_queue = q > 0 ? q : 0;
	// Windows mean something only once established.
	if (c->flags & F_ESTABLISHED) {
		if (rcv_wnd == 0)
			c->zero_wnd_sent++;
		if (snd_wnd == 0 && tp->write_seq != tp->snd_una)
			c->zero_wnd_recv++;
	}
	c->state = ((struct sock *)tp)->__sk_common.skc_state;
	c->samples++;
}

static __always_inline void copy_owner(struct conn *c, struct owner *o)
{
	c->pid = o->pid;
	c->cgroup = o->cgroup;
	__builtin_memcpy(c->comm, o->comm, sizeof(c->comm));
}

// find returns the entry of a tracked connection and, for one in the hot
// window, its key in *key (NULL for one in `conns`).
static __always_inline struct conn *find(__u64 cookie, __u64 **key)
{
	__u32 b = (__u32)((cookie / SLOTS) % hot_buckets);
	struct bucket *bk = bpf_map_lookup_elem(&hot_keys, &b);
	if (bk) {
#pragma unroll
		for (int i = 0; i < SLOTS; i++) {
			if (bk->k[i] == cookie) {
				__u32 idx = b * SLOTS + i;
				struct conn *c = bpf_map_lookup_elem(&hot, &idx);
				if (c) {
					*key = &bk->k[i];
					return c;
				}
			}
		}
	}
	*key = 0;
	return bpf_map_lookup_elem(&conns, &cookie);
}

// new_conn returns a zeroed entry for a new connection with its identity
// filled: a claimed slot of the hot window (*key set, cookie | BUSY until
// store), else the per-CPU scratch entry that store() copies into `conns`.
static __always_inline struct conn *new_conn(struct bpf_sock_ops *skops, __u64 cookie, __u8 dir, struct tcp_sock *tp, __u64 **key)
{
	struct conn *c = 0;
	*key = 0;
	__u32 b = (__u32)((cookie / SLOTS) % hot_buckets);
	struct bucket *bk = bpf_map_lookup_elem(&hot_keys, &b);
	if (bk) {
#pragma unroll
		for (int i = 0; i < SLOTS; i++) {
			if (!c && bk->k[i] == 0 && __sync_val_compare_and_swap(&bk->k[i], 0, cookie | BUSY) == 0) {
				__u32 idx = b * SLOTS + i;
				c = bpf_map_lookup_elem(&hot, &idx);
				if (c)
					*key = &bk->k[i];
				else
					bk->k[i] = 0;
			}
		}
	}
	if (!c) {
		stat_inc(STAT_HOT_FULL);
		__u32 zero = 0;
		c = bpf_map_lookup_elem(&scratch, &zero);
		if (!c)
			return 0;
	}
	__builtin_memset(c, 0, sizeof(*c));
	c->cookie = cookie;
	c->direction = dir;
	c->start_ns = bpf_ktime_get_ns();
	c->netns = netns_inum(tp);
	fill_addrs(skops, c);
	return c;
}

// store makes a new entry findable: publishes its hot slot (the exchange
// orders the entry's writes before it) or copies it into `conns`.
static __always_inline void store(__u64 *key, __u64 *cookie, struct conn *c)
{
	if (key) {
		__sync_lock_test_and_set(key, *cookie);
		return;
	}
	if (bpf_map_update_elem(&conns, cookie, c, BPF_ANY) != 0)
		stat_inc(STAT_CONNS_FULL);
}

// emit_close sends the final record of a connection whose socket is being
// destroyed and deletes its entry.
static __always_inline void emit_close(struct sock *sk)
{
	__u64 cookie = bpf_get_socket_cookie(sk);
	__u64 *key;
	struct conn *c = find(cookie, &key);
	if (!c)
		return; // listeners, sockets never connected or opened before attach
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
	if (tp)
		sample(tp, c);
	c->end_ns = bpf_ktime_get_ns();
	c->state = BPF_TCP_CLOSE;
	if (c->direction == DIR_CLIENT && !(c->flags & F_ESTABLISHED))
		c->flags |= F_FAILED;
	if (key) {
		// Hot window: user space reads the record in place and frees
		// the slot.
		__sync_lock_test_and_set(key, cookie | CLOSED);
		stat_inc(STAT_EVENTS);
		return;
	}
	__u32 zero = 0;
	struct ring_head *h = bpf_map_lookup_elem(&head, &zero);
	if (h) {
		// Reserve record i, invalidate the slot (a reader copying the
		// previous lap's record there sees the change), fill it, publish
		// i + 1. A reader that falls a lap behind counts the loss.
		__u64 i = __sync_fetch_and_add(&h->head, 1);
		__u32 slot = (__u32)i & ring_mask;
		struct closed_rec *r = bpf_map_lookup_elem(&closed, &slot);
		if (r) {
			__sync_lock_test_and_set(&r->seq, 0);
			__builtin_memcpy(&r->c, c, sizeof(*c));
			__sync_lock_test_and_set(&r->seq, i + 1);
			stat_inc(STAT_EVENTS);
		}
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
	__u64 *key;
	struct conn *c;
	struct tcp_sock *tp;

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
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		// connect(2) runs in the caller's process context.
		cookie = bpf_get_socket_cookie(skops);
		c = new_conn(skops, cookie, DIR_CLIENT, tcp_of(skops), &key);
		if (c) {
			c->connect_ns = c->start_ns;
			c->pid = bpf_get_current_pid_tgid() >> 32;
			c->cgroup = bpf_get_current_cgroup_id();
			bpf_get_current_comm(&c->comm, sizeof(c->comm));
			store(key, &cookie, c);
		}
		set_cb_flags(skops, CB_FLAGS);
		return 1;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		cookie = bpf_get_socket_cookie(skops);
		tp = tcp_of(skops);
		// Normally tracked since connect: one lookup, updated in place.
		c = find(cookie, &key);
		if (c) {
			__u64 now = bpf_ktime_get_ns();
			if (c->connect_ns && now > c->connect_ns)
				c->connect_latency_us = (now - c->connect_ns) / 1000;
			c->flags |= F_ESTABLISHED;
			fill_addrs(skops, c); // the local address is final now
			if (tp)
				sample(tp, c); // the SYN-ACK's RTT sample
		} else {
			c = new_conn(skops, cookie, DIR_CLIENT, tp, &key);
			if (c) {
				c->flags = F_ESTABLISHED;
				if (tp)
					sample(tp, c);
				store(key, &cookie, c);
			}
		}
		set_cb_flags(skops, CB_FLAGS);
		return 1;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB: {
		cookie = bpf_get_socket_cookie(skops);
		tp = tcp_of(skops);
		c = new_conn(skops, cookie, DIR_SERVER, tp, &key);
		if (c) {
			c->flags = F_ESTABLISHED;
			if (tp)
				sample(tp, c);
			struct listen_key k = {};
			k.netns = bpf_get_netns_cookie(skops);
			k.port = skops->local_port;
			struct owner *o = bpf_map_lookup_elem(&listeners, &k);
			if (o)
				copy_owner(c, o);
			store(key, &cookie, c);
		}
		set_cb_flags(skops, CB_FLAGS);
		return 1;
	}
	case BPF_SOCK_OPS_RTO_CB:
		cookie = bpf_get_socket_cookie(skops);
		c = find(cookie, &key);
		if (c)
			c->rtos++;
		return 1;
	case BPF_SOCK_OPS_RETRANS_CB:
		// args: seq, segments, return value of the retransmit
		if (skops->args[2] != 0)
			return 1;
		cookie = bpf_get_socket_cookie(skops);
		c = find(cookie, &key);
		if (c) {
			__u32 segs = skops->args[1];
			c->retrans_segs += segs;
			__u32 st = skops->state;
			if (st == BPF_TCP_SYN_SENT || st == BPF_TCP_SYN_RECV)
				c->syn_retrans += segs;
			c->total_retrans = skops->total_retrans;
		}
		return 1;
	}
	return 1;
}

// seed_conn starts tracking a connection the sock_ops program never saw
// (opened before the programs were attached): identity from the socket, no
// process (pid, comm and cgroup 0), direction from the listeners seen so
// far, start = now. RTO and retransmit callbacks cannot be enabled from
// here: its retransmissions come from the socket's total_retrans at each
// sample, its RTOs are not counted.
static __always_inline void seed_conn(struct tcp_sock *tp, __u64 cookie)
{
	struct sock_common *skc = &((struct sock *)tp)->__sk_common;
	__u32 zero = 0;
	struct conn *c = bpf_map_lookup_elem(&scratch, &zero);
	if (!c)
		return;
	__builtin_memset(c, 0, sizeof(*c));
	c->cookie = cookie;
	c->start_ns = bpf_ktime_get_ns();
	c->netns = netns_inum(tp);
	__u16 family = skc->skc_family;
	c->family = family;
	c->lport = skc->skc_num;
	c->rport = bpf_ntohs(skc->skc_dport);
	if (family == AF_INET) {
		c->laddr[0] = skc->skc_rcv_saddr;
		c->raddr[0] = skc->skc_daddr;
	} else {
		c->laddr[0] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[0];
		c->laddr[1] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[1];
		c->laddr[2] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[2];
		c->laddr[3] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[3];
		c->raddr[0] = skc->skc_v6_daddr.in6_u.u6_addr32[0];
		c->raddr[1] = skc->skc_v6_daddr.in6_u.u6_addr32[1];
		c->raddr[2] = skc->skc_v6_daddr.in6_u.u6_addr32[2];
		c->raddr[3] = skc->skc_v6_daddr.in6_u.u6_addr32[3];
	}
	struct listen_key k = {};
	struct net *net = skc->skc_net.net;
	if (net)
		k.netns = net->net_cookie;
	k.port = c->lport;
	c->direction = bpf_map_lookup_elem(&listeners, &k) ? DIR_SERVER : DIR_CLIENT;
	c->flags = F_ESTABLISHED;
	sample(tp, c);
	if (bpf_map_update_elem(&conns, &cookie, c, BPF_NOEXIST) == 0)
		stat_inc(STAT_SEEDED);
}

// The live state of the tracked connections of one network namespace (the
// reader's): each full TCP socket with an entry has it refreshed in place
// (the socket is locked meanwhile); user space then reads the entries. The
// close record carries the zero-window samples taken here. A listener not
// yet known is recorded (no owner: it was opened before attach) and a
// connection not yet tracked is seeded; the iterator visits listeners
// before connections, so a pass tells the server ends it seeds.
SEC("iter/tcp")
int netsight_iter(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	if (!skc)
		return 0;
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0; // request and time-wait sockets are not tcp_socks
	__u64 cookie = bpf_get_socket_cookie(tp);
	__u64 *key;
	struct conn *c = find(cookie, &key);
	if (c) {
		sample(tp, c);
		return 0;
	}
	struct sock_common *own = &((struct sock *)tp)->__sk_common;
	__u8 st = own->skc_state;
	if (st == BPF_TCP_LISTEN) {
		struct listen_key k = {};
		struct net *net = own->skc_net.net;
		if (net)
			k.netns = net->net_cookie;
		k.port = own->skc_num;
		struct owner o = {};
		bpf_map_update_elem(&listeners, &k, &o, BPF_NOEXIST);
		return 0;
	}
	// Seed only connections past the handshake: one in SYN_SENT or
	// SYN_RECV still gets its established callback, which creates the
	// entry (seeding it too would track it twice).
	if (st == BPF_TCP_CLOSE || st == BPF_TCP_SYN_SENT || st == BPF_TCP_SYN_RECV)
		return 0;
	seed_conn(tp, cookie);
	return 0;
}

// RSTs. The socket cookie is the same one sock_ops sees.

static __always_inline void count_rst(void *sk, int sent)
{
	if (!sk)
		return;
	__u64 cookie = bpf_get_socket_cookie(sk);
	__u64 *key;
	struct conn *c = find(cookie, &key);
	if (!c)
		return;
	if (sent)
		c->rst_sent++;
	else
		c->rst_recv++;
}

// The close: once per TCP socket (tcp_v4_destroy_sock, IPv6 included), when
// the kernel frees it: at once for a socket the application has closed,
// else when it closes its descriptor.
SEC("tp_btf/tcp_destroy_sock")
int netsight_destroy(__u64 *ctx)
{
	struct sock *sk = (struct sock *)ctx[0];
	if (sk)
		emit_close(sk);
	return 0;
}

// How a connect failed: the socket's error when the kernel reports it
// (ECONNREFUSED on a RST, ETIMEDOUT when the SYN retries run out, an ICMP
// error). Errors are rare; the lookup only happens for them.
SEC("tp_btf/inet_sk_error_report")
int netsight_sk_error(__u64 *ctx)
{
	struct sock *sk = (struct sock *)ctx[0];
	if (!sk)
		return 0;
	__u64 cookie = bpf_get_socket_cookie(sk);
	__u64 *key;
	struct conn *c = find(cookie, &key);
	if (c && !(c->flags & F_ESTABLISHED))
		c->sk_err = sk->sk_err;
	return 0;
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
