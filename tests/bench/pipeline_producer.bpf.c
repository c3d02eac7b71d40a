// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * The synthetic producer of bench_pipeline: sock_sample records, as sockops writes
 * them, into a ring buffer of sock_events' type and size, for `flows` distinct flows
 * in turn. One record per run of BPF_PROG_TEST_RUN (repeat = records); a reserve
 * that fails (the ring is full) is counted in `lost`, as sockops counts
 * sock_reserve_fail.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "reflex.h"

#define AF_INET 2
#define IPPROTO_TCP 6

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, REFLEX_RINGBUF_BYTES);
} events SEC(".maps");

/* Set by the bench: how many flows the records cycle through. */
__u32 flows;
__u64 next_seq;
__u64 produced;
__u64 lost;

SEC("tc")
int produce(struct __sk_buff *skb)
{
	__u32 nflows = flows ? flows : 1;
	__u64 seq = next_seq++;
	__u32 flow = seq % nflows;
	struct sock_sample *s = bpf_ringbuf_reserve(&events, sizeof(*s), 0);

	if (!s) {
		lost++;
		return 0;
	}
	__builtin_memset(s, 0, sizeof(*s));
	s->ts_ns = bpf_ktime_get_ns();
	s->cookie = flow + 1;
	s->key.family = AF_INET;
	s->key.proto = IPPROTO_TCP;
	s->key.saddr[0] = 0x0100000a; /* 10.0.0.1 */
	s->key.daddr[0] = 0x0200000a + ((flow >> 16) << 24);
	s->key.sport = 1024 + (flow & 0xffff) % 60000;
	s->key.dport = 5201 + (flow & 0xffff) / 60000;
	s->event = SOCK_EVENT_RTT;
	s->state = 1; /* established */
	s->mrtt_us = 1000 + flow % 500;
	s->srtt_us = 1000 + flow % 500;
	s->rtt_min_us = 900;
	s->snd_cwnd = 10;
	s->mss_cache = 1448;
	s->delivered = (__u32)(seq / nflows) * 10;
	s->bytes_acked = (seq / nflows) * 14480;
	s->cpu = bpf_get_smp_processor_id();
	bpf_ringbuf_submit(s, BPF_RB_NO_WAKEUP);
	produced++;
	return 0;
}
