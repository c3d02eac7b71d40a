// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * The cc actuator (reflexd --actuator cc): a TCP congestion control registered as
 * `reflex` through struct_ops, which sockops selects per socket at establish. While
 * reflexd's heartbeat is fresh, cwnd is the flow's decision in `cwnd_decisions`, the
 * map and key the clamp actuator reads. Without a decision, or once the heartbeat is
 * stale (reflexd dead), the socket runs CUBIC through the kernel's own cubictcp_*
 * kfuncs (HyStart included), so a flow starts as it would under the kernel default
 * and a killed controller leaves its flows probing and backing off, not held at the
 * last decision.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

#include "reflex.h"
#include "maps.bpf.h"
#include "helpers.bpf.h"
#include "control.bpf.h"

#define AF_INET 2
#define IPPROTO_TCP 6

char LICENSE[] SEC("license") = "Dual BSD/GPL";

extern void cubictcp_init(struct sock *sk) __ksym;
extern void cubictcp_cong_avoid(struct sock *sk, __u32 ack, __u32 acked) __ksym;
extern __u32 cubictcp_recalc_ssthresh(struct sock *sk) __ksym;
extern void cubictcp_state(struct sock *sk, __u8 new_state) __ksym;
extern void cubictcp_cwnd_event(struct sock *sk, enum tcp_ca_event event) __ksym;
extern void cubictcp_acked(struct sock *sk, const struct ack_sample *sample) __ksym;
extern __u32 tcp_reno_undo_cwnd(struct sock *sk) __ksym;

static __always_inline __u32 min_u32(__u32 a, __u32 b)
{
	return a < b ? a : b;
}

/* Per socket, in the congestion control's private area (icsk_ca_priv), after the
 * struct bictcp that the cubictcp_* kfuncs keep at its start. */
struct reflex_ca {
	__u32 followed; /* the decision cwnd follows, 0 = the CUBIC fallback */
};

#define REFLEX_CA_OFFSET ((sizeof(struct bictcp) + 7) & ~7UL)
_Static_assert(REFLEX_CA_OFFSET + sizeof(struct reflex_ca) <=
		       sizeof(((struct inet_connection_sock *)0)->icsk_ca_priv),
	       "reflex_ca does not fit after struct bictcp in icsk_ca_priv");

static __always_inline struct reflex_ca *ca_of(struct sock *sk)
{
	return (void *)((struct inet_connection_sock *)sk)->icsk_ca_priv + REFLEX_CA_OFFSET;
}

/* The key sockops builds from the same connection (flow_key_from_skops): local end
 * first, ports in host byte order. */
static __always_inline void flow_key_from_sk(const struct sock *sk, struct flow_key *key)
{
	const struct sock_common *skc = &sk->__sk_common;

	__builtin_memset(key, 0, sizeof(*key));
	key->family = skc->skc_family;
	key->proto = IPPROTO_TCP;
	key->sport = skc->skc_num;
	key->dport = bpf_ntohs(skc->skc_dport);
	if (key->family == AF_INET) {
		key->saddr[0] = skc->skc_rcv_saddr;
		key->daddr[0] = skc->skc_daddr;
		return;
	}
	for (int i = 0; i < 4; i++) {
		key->saddr[i] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[i];
		key->daddr[i] = skc->skc_v6_daddr.in6_u.u6_addr32[i];
	}
}

/*
 * The cwnd reflexd decided for this socket, or 0 for the fallback. Counts each switch
 * between following a decision and the fallback, as the clamp actuator counts its
 * clamps set and lifted.
 */
static __always_inline __u32 cwnd_decided(struct sock *sk)
{
	const struct reflex_config *cfg = config_get();
	struct reflex_ca *ca = ca_of(sk);
	struct cwnd_decision *decision;
	struct flow_key key;
	__u32 cwnd = 0;

	flow_key_from_sk(sk, &key);
	decision = bpf_map_lookup_elem(&cwnd_decisions, &key);
	if (decision && decision->cwnd_target) {
		if (heartbeat_fresh(cfg, bpf_ktime_get_ns()))
			cwnd = decision->cwnd_target;
		else if (ca->followed)
			counter_add(CNT_HEARTBEAT_STALE, 1);
	}
	if (cwnd && cwnd != ca->followed) {
		counter_add(CNT_CC_SET, 1);
	} else if (!cwnd && ca->followed) {
		/* A fresh cubic epoch from the current cwnd: the old one is from before
		 * the decision and would grow cwnd as if that time had been spent probing. */
		cubictcp_init(sk);
		counter_add(CNT_CC_FALLBACK, 1);
	}
	ca->followed = cwnd;
	return cwnd;
}

SEC("struct_ops/reflex_init")
void BPF_PROG(reflex_init, struct sock *sk)
{
	cubictcp_init(sk);
	ca_of(sk)->followed = 0;
}

/*
 * Called for ACKs that advance the window outside CWR and Recovery: there cwnd is
 * set to the decision on every ACK, so it stays exact whether or not the flow is
 * cwnd-limited. After a timeout (Loss state) cwnd restarts near 1: until the loss is
 * repaired CUBIC grows it, capped by the decision, rather than sending a whole
 * decided window at once.
 */
SEC("struct_ops/reflex_cong_avoid")
void BPF_PROG(reflex_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	__u32 cwnd = cwnd_decided(sk);

	if (!cwnd) {
		cubictcp_cong_avoid(sk, ack, acked);
		return;
	}
	if (((struct inet_connection_sock *)sk)->icsk_ca_state == TCP_CA_Loss && tp->snd_cwnd < cwnd) {
		cubictcp_cong_avoid(sk, ack, acked);
		cwnd = min_u32(tp->snd_cwnd, cwnd);
	}
	tp->snd_cwnd = min_u32(cwnd, tp->snd_cwnd_clamp);
	tp->snd_cwnd_cnt = 0;
}

/* A loss cuts cwnd for the recovery episode as CUBIC does (to 0.7), with or without
 * a decision; the first ACK after recovery puts cwnd back on the decision. */
SEC("struct_ops/reflex_ssthresh")
__u32 BPF_PROG(reflex_ssthresh, struct sock *sk)
{
	return cubictcp_recalc_ssthresh(sk);
}

/* CUBIC's own bookkeeping runs whether or not cwnd follows a decision, so that the
 * fallback takes over with HyStart's and the cubic epoch's state intact. */
SEC("struct_ops/reflex_set_state")
void BPF_PROG(reflex_set_state, struct sock *sk, __u8 new_state)
{
	cubictcp_state(sk, new_state);
}

SEC("struct_ops/reflex_cwnd_event")
void BPF_PROG(reflex_cwnd_event, struct sock *sk, enum tcp_ca_event event)
{
	cubictcp_cwnd_event(sk, event);
}

SEC("struct_ops/reflex_pkts_acked")
void BPF_PROG(reflex_pkts_acked, struct sock *sk, const struct ack_sample *sample)
{
	cubictcp_acked(sk, sample);
}

SEC("struct_ops/reflex_undo_cwnd")
__u32 BPF_PROG(reflex_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

/* The variable's name is the struct_ops map's name, by which reflexd tells its own
 * registrations (live or left by a dead reflexd) from another `reflex`. */
SEC(".struct_ops")
struct tcp_congestion_ops reflex = {
	.init = (void *)reflex_init,
	.cong_avoid = (void *)reflex_cong_avoid,
	.ssthresh = (void *)reflex_ssthresh,
	.set_state = (void *)reflex_set_state,
	.cwnd_event = (void *)reflex_cwnd_event,
	.pkts_acked = (void *)reflex_pkts_acked,
	.undo_cwnd = (void *)reflex_undo_cwnd,
	.name = REFLEX_CC_NAME,
};
