// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * TCP telemetry from sockops on a cgroup v2: for every connection of the cgroup,
 * enable the RTT, state and retransmit callbacks and emit sock_sample records into
 * the `sock_events` ring buffer: one at establish, one at close, and in between
 * about one per flow per sample_interval_ns, never two within half of it. It also
 * runs the cwnd actuator the config names: the clamp (below), or, for the cc
 * actuator, moving each connection to the `reflex` congestion control at establish.
 *
 * The RTT callback runs once per round trip of every connection (the kernel calls
 * it when snd_una passes the rtt_seq it set a round trip before, not per ACK): tens
 * of thousands of times a second on a short path. So its common path reads nothing
 * but the socket: where kernel entries flush the TLB (PTI without PCID, as on the
 * VMs we test on) each further page it touched would cost more than the rest of the
 * path (sample_window_ns). The callbacks that may sample read the socket's storage; a
 * sample writes the ring and sock_flows and looks the decision up, which on a long
 * path, where every callback reads the storage, is also looked up as soon as
 * reflexd changed some decision since the socket's last look (decision_gen).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

#include "reflex.h"
#include "maps.bpf.h"
#include "helpers.bpf.h"
#include "control.bpf.h"
#include "sock_state.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define SOL_TCP 6
#define TCP_CONGESTION 13

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Fixed for the life of the program: set by reflexd before load (loader.c), so no
 * config-map read per callback. The RTT callback's common path needs only the sample
 * interval, which it reads from its own instruction (load_imm in sock_tick), not from
 * here: .rodata is one more page. */
const volatile __u32 actuator = REFLEX_ACTUATOR_CLAMP;
const volatile __u64 heartbeat_deadline = REFLEX_DEFAULT_HEARTBEAT_DEADLINE_NS;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, REFLEX_RINGBUF_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sock_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, REFLEX_MAX_FLOWS);
	__type(key, struct flow_key);
	__type(value, struct sock_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sock_flows SEC(".maps");


/*
 * Every address field is loaded unconditionally: when loads sit in the two branches
 * of an if, clang merges them into one load through a computed ctx pointer, which
 * the verifier rejects ("dereference of modified ctx ptr").
 */
static __always_inline void flow_key_from_skops(const struct bpf_sock_ops *skops, struct flow_key *key)
{
	__u32 local4 = skops->local_ip4, remote4 = skops->remote_ip4;
	__u32 l6_0 = skops->local_ip6[0], l6_1 = skops->local_ip6[1];
	__u32 l6_2 = skops->local_ip6[2], l6_3 = skops->local_ip6[3];
	__u32 r6_0 = skops->remote_ip6[0], r6_1 = skops->remote_ip6[1];
	__u32 r6_2 = skops->remote_ip6[2], r6_3 = skops->remote_ip6[3];

	__builtin_memset(key, 0, sizeof(*key));
	key->family = skops->family;
	key->proto = IPPROTO_TCP;
	key->sport = skops->local_port;
	key->dport = bpf_ntohl(skops->remote_port);
	if (key->family == AF_INET) {
		key->saddr[0] = local4;
		key->daddr[0] = remote4;
	} else {
		key->saddr[0] = l6_0;
		key->saddr[1] = l6_1;
		key->saddr[2] = l6_2;
		key->saddr[3] = l6_3;
		key->daddr[0] = r6_0;
		key->daddr[1] = r6_1;
		key->daddr[2] = r6_2;
		key->daddr[3] = r6_3;
	}
}

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

/* The socket as a read-only tcp_sock: the verifier turns bpf_rdonly_cast into a
 * register move and the field reads into fault-safe loads, where
 * bpf_skc_to_tcp_sock is a helper call. The callbacks below come from TCP only. */
static __always_inline const struct tcp_sock *tcp_sock_of(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk = skops->sk;

	return sk ? bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock)) : NULL;
}

/* Fill a sample from the socket at `now`; srtt and mdev are reported as `ss -ti`
 * shows them (srtt_us >> 3, mdev_us >> 2), so they can be compared directly. */
static __always_inline void sample_fill(struct bpf_sock_ops *skops, struct sock_sample *s, __u32 event,
					__u32 mrtt_us, __u64 now)
{
	const struct tcp_sock *tp = tcp_sock_of(skops);

	s->ts_ns = now;
	s->cookie = bpf_get_socket_cookie(skops);
	flow_key_from_skops(skops, &s->key);
	s->event = event;
	s->state = skops->state;
	s->mrtt_us = mrtt_us;
	s->srtt_us = skops->srtt_us >> 3;
	s->rtt_min_us = skops->rtt_min;
	s->snd_cwnd = skops->snd_cwnd;
	s->snd_ssthresh = skops->snd_ssthresh;
	s->packets_out = skops->packets_out;
	s->retrans_out = skops->retrans_out;
	s->lost_out = skops->lost_out;
	s->total_retrans = skops->total_retrans;
	s->mss_cache = skops->mss_cache;
	s->cpu = bpf_get_smp_processor_id();
	s->bytes_acked = skops->bytes_acked;
	s->bytes_received = skops->bytes_received;
	if (tp) {
		s->mdev_us = tp->mdev_us >> 2;
		s->delivered = tp->delivered;
	}
}

static __always_inline void sock_flow_fill(struct sock_flow *flow, const struct sock_sample *s)
{
	flow->cookie = s->cookie;
	flow->last_sample_ns = s->ts_ns;
	flow->bytes_acked = s->bytes_acked;
	flow->bytes_received = s->bytes_received;
	flow->state = s->state;
	flow->srtt_us = s->srtt_us;
	flow->mdev_us = s->mdev_us;
	flow->snd_cwnd = s->snd_cwnd;
	flow->snd_ssthresh = s->snd_ssthresh;
	flow->total_retrans = s->total_retrans;
	flow->delivered = s->delivered;
}

/*
 * In place when the flow has an entry: an update of an LRU hash allocates a new
 * element and frees the old one, many times the cost of the stores. An insert into a
 * full LRU evicts some other socket's entry silently; that socket counts it when it
 * next finds its own entry gone (here or at close), so the count is exact without a
 * walk of the map, and costs nothing while entries stay.
 */
static __always_inline void sock_flow_update(struct sock_state *st, const struct sock_sample *s)
{
	struct sock_flow *old = bpf_map_lookup_elem(&sock_flows, &s->key);
	struct sock_flow flow = {};

	if (old) {
		sock_flow_fill(old, s);
		return;
	}
	if (st && (st->flags & SOCK_STATE_LISTED))
		counter_add(CNT_SOCK_FLOW_EVICTED, 1);
	sock_flow_fill(&flow, s);
	if (bpf_map_update_elem(&sock_flows, &s->key, &flow, BPF_ANY)) {
		counter_add(CNT_SOCK_FLOW_FAIL, 1);
		return;
	}
	if (st)
		st->flags |= SOCK_STATE_LISTED;
}

static __always_inline void sock_flow_remove(struct sock_state *st, const struct flow_key *key)
{
	if (bpf_map_delete_elem(&sock_flows, key) && st && (st->flags & SOCK_STATE_LISTED))
		counter_add(CNT_SOCK_FLOW_EVICTED, 1);
}

/* st may be NULL (no socket storage): then evictions of this socket's entry go
 * uncounted. */
static __always_inline void emit(struct bpf_sock_ops *skops, struct sock_state *st, __u32 event,
				 __u32 mrtt_us, __u64 now)
{
	struct sock_sample *s;

	s = bpf_ringbuf_reserve(&sock_events, sizeof(*s), 0);
	if (!s) {
		counter_add(CNT_SOCK_RESERVE_FAIL, 1);
		return;
	}
	sample_fill(skops, s, event, mrtt_us, now);
	if (event == SOCK_EVENT_CLOSE)
		sock_flow_remove(st, &s->key);
	else
		sock_flow_update(st, s);
	counter_add(CNT_SOCK_SAMPLES, 1);
	/* Establish and close are rare and matter to userspace's flow table: wake it. */
	if (event == SOCK_EVENT_ESTABLISHED || event == SOCK_EVENT_CLOSE)
		bpf_ringbuf_submit(s, BPF_RB_FORCE_WAKEUP);
	else
		bpf_ringbuf_submit(s, ring_submit_flags(RING_SOCK, config_get()));
}

static __always_inline void clamp_record(const struct flow_key *key, __u32 clamp)
{
	struct sock_flow *flow = bpf_map_lookup_elem(&sock_flows, key);

	if (flow)
		flow->cwnd_clamp = clamp;
}

/*
 * The cc actuator: the connection runs the `reflex` congestion control from now on.
 * A BPF context may pick any registered congestion control, so reflex needs no entry
 * in net.ipv4.tcp_allowed_congestion_control and the namespace default is untouched.
 */
static __always_inline void cc_select(struct bpf_sock_ops *skops)
{
	char name[] = REFLEX_CC_NAME;

	if (bpf_setsockopt(skops, SOL_TCP, TCP_CONGESTION, name, sizeof(name)))
		counter_add(CNT_CC_SELECT_FAIL, 1);
	else
		counter_add(CNT_CC_SELECT, 1);
}

/*
 * Makes the socket's clamp follow reflexd's decision. TCP_BPF_SNDCWND_CLAMP also
 * sets ssthresh, so it is called only when the wanted value changes; a decision that
 * is withdrawn, or whose controller stopped beating, is lifted back to the kernel's
 * initial state (no clamp, infinite ssthresh). gen is decision_gen read before the
 * lookup, so a decision written after it is looked up at the next callback.
 */
static __always_inline void clamp_follow(struct bpf_sock_ops *skops, struct sock_state *st, __u64 now, __u64 gen)
{
	struct cwnd_decision *decision;
	struct flow_key key;
	__u32 wanted = 0;
	int val;

	st->decision_gen = gen;
	flow_key_from_skops(skops, &key);
	decision = bpf_map_lookup_elem(&cwnd_decisions, &key);
	if (decision && decision->cwnd_target) {
		if (heartbeat_fresh_within(heartbeat_deadline, now))
			wanted = decision->cwnd_target;
		else if (st->applied_clamp)
			counter_add(CNT_HEARTBEAT_STALE, 1);
	}
	if (wanted == st->applied_clamp)
		return;
	val = wanted ? wanted : REFLEX_CLAMP_NONE;
	if (bpf_setsockopt(skops, SOL_TCP, TCP_BPF_SNDCWND_CLAMP, &val, sizeof(val))) {
		counter_add(CNT_CLAMP_FAIL, 1);
		return;
	}
	counter_add(wanted ? CNT_CLAMP_SET : CNT_CLAMP_LIFTED, 1);
	st->applied_clamp = wanted;
	clamp_record(&key, wanted);
}

static __always_inline struct sock_state *sock_state_of(struct bpf_sock_ops *skops, __u64 flags)
{
	struct bpf_sock *sk = skops->sk;

	if (!sk)
		return NULL;
	return bpf_sk_storage_get(&sock_state_store, sk, 0, flags);
}

/* Nothing in flight and nothing left to send: the application is done for now, and
 * the flow's next callback may come any time later. (Nothing in flight alone is
 * common: a fast receiver acks all of a bulk flow's flight at once.) */
static __always_inline bool flow_goes_idle(struct bpf_sock_ops *skops)
{
	const struct tcp_sock *tp = tcp_sock_of(skops);

	return !skops->packets_out && (!tp || tp->write_seq == tp->snd_nxt);
}

/*
 * Most RTT callbacks leave the socket's storage alone: on a host whose kernel entries
 * flush the TLB, every page touched outside the socket costs ~90 ns, so the common
 * callback reads only the socket. A flow on a short path samples in a window after
 * each boundary of a sample_interval grid it alone keeps (phased by its ports, so
 * flows spread their samples instead of all writing the ring at once): the window is
 * two round trips long, and a callback reads its storage only within it. That finds
 * every boundary as long as callbacks come at least once per two round trips, which
 * holds while data is in flight (the kernel calls once per round trip). A callback after which the flow goes idle (its next
 * may come any time later) and a retransmission (loss recovery, where RTT callbacks
 * thin out) always read the storage, as does every callback of a flow whose window
 * would be half the interval or more.
 *
 * Returns the window's length in ns, or 0 on a path too long for one. A sample inside
 * a window is due when the last one is at least an interval less the window old, so
 * each window gets its sample and samples stay more than half an interval apart.
 */
static __always_inline __u64 sample_window_ns(struct bpf_sock_ops *skops, __u32 mrtt_us, __u64 interval_ns)
{
	__u32 srtt_us = skops->srtt_us >> 3;
	__u64 window_ns = 2000ULL * (mrtt_us > srtt_us ? mrtt_us : srtt_us);

	return 2 * window_ns < interval_ns ? window_ns : 0;
}

/* Whether now is within the window after a boundary of the flow's grid. */
static __always_inline bool in_sample_window(struct bpf_sock_ops *skops, __u64 now, __u64 window_ns,
					     __u64 interval_ns)
{
	__u32 port_hash = (skops->local_port ^ skops->remote_port) * 2654435761u;
	__u64 phase_ns = ((__u64)port_hash * interval_ns) >> 32;

	return (now + phase_ns) % interval_ns < window_ns;
}

/* What a callback that may sample hands to sock_tick_storage. */
struct sock_tick {
	__u64 now;
	__u64 due_age_ns; /* a sample is due when the last one is at least this old */
	__u32 event;
	__u32 mrtt_us;
	bool windowed;	  /* a short path's callback: decisions are followed at samples only */
};

/*
 * The part of a callback that reads the socket's storage: its own subprogram, so the
 * common path's code stays within a page or two instead of spreading over the whole
 * program (each page a callback's code touches is one more TLB miss).
 */
static __noinline int sock_tick_storage(struct bpf_sock_ops *skops, const struct sock_tick *tick)
{
	struct sock_state *st = sock_state_of(skops, BPF_SK_STORAGE_GET_F_CREATE);
	__u64 gen;
	bool due;

	if (!st)
		return 0;
	due = tick->now - st->last_sample_ns >= tick->due_age_ns;
	if (due) {
		st->last_sample_ns = tick->now;
		emit(skops, st, tick->event, tick->mrtt_us, tick->now);
	}
	/* On a short path (a window) the decision is followed at samples only, which
	 * spares the other callbacks decision_gen's page. */
	if (actuator != REFLEX_ACTUATOR_CLAMP || (!due && tick->windowed))
		return 0;
	gen = decision_gen_read();
	if (due || gen != st->decision_gen)
		clamp_follow(skops, st, tick->now, gen);
	return 0;
}

/*
 * An ACK (RTT) or a retransmission: a sample about once per sample interval, and
 * under the clamp actuator the decision followed then, or, on a path too long for a
 * window, at any callback after reflexd changed one. A decision, reflexd's or anyone
 * else's, and a stale heartbeat are thus followed within a sample interval of their
 * write or deadline.
 *
 * Now is on the bpf_ktime_get_ns clock without reading it (a clock read costs far
 * more than the rest of this path on a virtual machine): TCP stamped tcp_mstamp (us)
 * when it took this ACK or sent this retransmission.
 */
static __always_inline void sock_tick(struct bpf_sock_ops *skops, __u32 event, __u32 mrtt_us)
{
	const struct tcp_sock *tp = tcp_sock_of(skops);
	__u64 interval_ns = load_imm(REFLEX_IMM_SAMPLE_INTERVAL_NS);
	struct sock_tick tick = { .event = event, .mrtt_us = mrtt_us };
	__u64 window_ns;
	bool idle;

	tick.now = tp ? tp->tcp_mstamp * 1000 : bpf_ktime_get_ns();
	window_ns = event == SOCK_EVENT_RTT ? sample_window_ns(skops, mrtt_us, interval_ns) : 0;
	idle = window_ns && flow_goes_idle(skops);
	if (window_ns && !idle && !in_sample_window(skops, tick.now, window_ns, interval_ns))
		return;
	tick.due_age_ns = interval_ns - (idle ? 0 : window_ns);
	tick.windowed = window_ns != 0;
	sock_tick_storage(skops, &tick);
}

/* Establish: the first sample, then the actuator's setup. A subprogram, as is the
 * close, for the reason sock_tick_storage is one. */
static __noinline int sock_established(struct bpf_sock_ops *skops)
{
	struct sock_state *st = sock_state_of(skops, BPF_SK_STORAGE_GET_F_CREATE);
	__u64 gen = decision_gen_read();
	__u64 now = bpf_ktime_get_ns();

	emit(skops, st, SOCK_EVENT_ESTABLISHED, 0, now);
	if (actuator == REFLEX_ACTUATOR_CC) {
		cc_select(skops);
		return 0;
	}
	if (st)
		clamp_follow(skops, st, now, gen);
	return 0;
}

static __noinline int sock_closed(struct bpf_sock_ops *skops)
{
	emit(skops, sock_state_of(skops, 0), SOCK_EVENT_CLOSE, 0, bpf_ktime_get_ns());
	return 0;
}

SEC("sockops")
int reflex_sockops(struct bpf_sock_ops *skops)
{
	if (skops->family != AF_INET && skops->family != AF_INET6)
		return 1;

	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_RTT_CB_FLAG | BPF_SOCK_OPS_STATE_CB_FLAG |
							 BPF_SOCK_OPS_RETRANS_CB_FLAG);
		sock_established(skops);
		break;
	case BPF_SOCK_OPS_RTT_CB:
		/* args[0] is this ACK's RTT measurement in us (kernel >= 6.3). */
		sock_tick(skops, SOCK_EVENT_RTT, skops->args[0]);
		break;
	case BPF_SOCK_OPS_RETRANS_CB:
		sock_tick(skops, SOCK_EVENT_RETRANS, 0);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		/* args[1] is the new state; BPF_TCP_CLOSE is the end of the flow. */
		if (skops->args[1] == BPF_TCP_CLOSE)
			sock_closed(skops);
		break;
	default:
		break;
	}
	return 1;
}
