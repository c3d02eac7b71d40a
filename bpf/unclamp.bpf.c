// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * Lifts every clamp the sockops program set, on every TCP socket of the network
 * namespace, at once. sockops lifts a clamp only in that flow's own callbacks, so a
 * flow idle when reflexd stops would keep TCP_BPF_SNDCWND_CLAMP (and the ssthresh it
 * set) for good; reflexd runs this iterator at its teardown and at --cleanup.
 * bpf_setsockopt is allowed from iter/tcp (the iterator holds the socket lock).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "reflex.h"
#include "maps.bpf.h"
#include "helpers.bpf.h"
#include "sock_state.bpf.h"

#define SOL_TCP 6

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("iter/tcp")
int reflex_unclamp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	int none = REFLEX_CLAMP_NONE;
	struct sock_state *st;
	struct tcp_sock *tp;

	if (!skc)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	st = bpf_sk_storage_get(&sock_state_store, tp, 0, 0);
	if (!st || !st->applied_clamp)
		return 0;
	if (bpf_setsockopt(tp, SOL_TCP, TCP_BPF_SNDCWND_CLAMP, &none, sizeof(none))) {
		counter_add(CNT_CLAMP_FAIL, 1);
		return 0;
	}
	st->applied_clamp = 0;
	counter_add(CNT_CLAMP_LIFTED, 1);
	bpf_seq_write(ctx->meta->seq, "1", 1); /* reflexd counts the bytes */
	return 0;
}
