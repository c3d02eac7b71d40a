// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * Per-flow traffic telemetry on clsact ingress and egress of an interface: packet,
 * byte, payload and packet-size counters for TCP and UDP over IPv4 and IPv6, in an
 * LRU per-CPU hash, with at most one tc_sample per flow and CPU per sample interval
 * into the `tc_events` ring buffer. Never drops or alters a packet.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "reflex.h"
#include "maps.bpf.h"
#include "helpers.bpf.h"
#include "parsing.bpf.h"

#define TC_ACT_UNSPEC (-1)

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, REFLEX_RINGBUF_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tc_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, REFLEX_MAX_FLOWS);
	__type(key, struct flow_key);
	__type(value, struct tc_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tc_flows SEC(".maps");

static __always_inline struct tc_flow *tc_flow_get(const struct flow_key *key, __u32 ifindex)
{
	struct tc_flow *flow = bpf_map_lookup_elem(&tc_flows, key);
	struct tc_flow fresh = {};

	if (flow)
		return flow;
	fresh.ifindex = ifindex;
	/* An LRU insert into a full map evicts silently: reflexd tells evictions from
	 * inserts minus live entries. -EEXIST is another CPU's insert of the same flow. */
	switch (bpf_map_update_elem(&tc_flows, key, &fresh, BPF_NOEXIST)) {
	case 0:
		counter_add(CNT_TC_FLOW_NEW, 1);
		break;
	case -17: /* EEXIST */
		break;
	default:
		counter_add(CNT_TC_FLOW_FAIL, 1);
		return NULL;
	}
	return bpf_map_lookup_elem(&tc_flows, key);
}

static __always_inline void counters_diff(struct tc_counters *out, const struct tc_counters *total,
					  const struct tc_counters *emitted)
{
	for (int dir = 0; dir < FLOW_DIR_MAX; dir++) {
		out->packets[dir] = total->packets[dir] - emitted->packets[dir];
		out->bytes[dir] = total->bytes[dir] - emitted->bytes[dir];
		out->payload_bytes[dir] = total->payload_bytes[dir] - emitted->payload_bytes[dir];
	}
	out->size_sum = total->size_sum - emitted->size_sum;
	out->size_sq_sum = total->size_sq_sum - emitted->size_sq_sum;
}

/*
 * A sample when the last one is a sample interval old. After a read that found none
 * due, the clock is not read again in the same jiffy for this flow and CPU: on a
 * virtual machine (kvm-clock) a read costs ~20 ns, 40 % of this program's cost per
 * packet over an empty program, where bpf_jiffies64 is a load. A sample thus comes
 * up to a jiffy after it is due (an interval shorter than a jiffy: about once a
 * jiffy); its time stays the clock's.
 */
static __always_inline void maybe_emit(struct tc_flow *flow, const struct flow_key *key, __u32 ifindex)
{
	const struct reflex_config *cfg;
	struct tc_sample *s;
	__u32 jiffies = bpf_jiffies64();
	__u64 now;

	if (jiffies == flow->clock_jiffies)
		return;
	now = bpf_ktime_get_ns();
	cfg = config_get();
	if (now - flow->last_sample_ns < sample_interval_ns(cfg)) {
		flow->clock_jiffies = jiffies;
		return;
	}
	flow->last_sample_ns = now;
	s = bpf_ringbuf_reserve(&tc_events, sizeof(*s), 0);
	if (!s) {
		/* The growth stays in total - emitted and goes out with the next sample. */
		counter_add(CNT_TC_RESERVE_FAIL, 1);
		return;
	}
	s->ts_ns = now;
	s->key = *key;
	counters_diff(&s->delta, &flow->total, &flow->emitted);
	s->ifindex = ifindex;
	s->cpu = bpf_get_smp_processor_id();
	flow->emitted = flow->total;
	counter_add(CNT_TC_SAMPLES, 1);
	bpf_ringbuf_submit(s, ring_submit_flags(RING_TC, cfg));
}

static __always_inline int account(struct __sk_buff *skb, enum flow_dir dir)
{
	struct packet_info pi;
	struct tc_flow *flow;
	__u64 segs, wire_bytes, payload, seg_size;

	counter_add(CNT_TC_PACKETS, 1);
	if (parse_packet(skb, &pi) < 0) {
		counter_add(CNT_TC_PARSE_SKIP, 1);
		return TC_ACT_UNSPEC;
	}
	if (dir == FLOW_DIR_INGRESS)
		flow_key_swap(&pi.key);

	/* A GSO/GRO super-packet carries its headers once but goes on the wire as
	 * gso_segs segments, each with its own headers. */
	segs = skb->gso_segs > 1 ? skb->gso_segs : 1;
	payload = skb->len > pi.headers_len ? skb->len - pi.headers_len : 0;
	wire_bytes = skb->len + (segs - 1) * pi.headers_len;
	seg_size = wire_bytes / segs;

	flow = tc_flow_get(&pi.key, skb->ifindex);
	if (!flow)
		return TC_ACT_UNSPEC;
	flow->total.packets[dir] += segs;
	flow->total.bytes[dir] += wire_bytes;
	flow->total.payload_bytes[dir] += payload;
	flow->total.size_sum += wire_bytes;
	flow->total.size_sq_sum += segs * seg_size * seg_size;
	maybe_emit(flow, &pi.key, skb->ifindex);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int reflex_tc_ingress(struct __sk_buff *skb)
{
	return account(skb, FLOW_DIR_INGRESS);
}

SEC("tc")
int reflex_tc_egress(struct __sk_buff *skb)
{
	return account(skb, FLOW_DIR_EGRESS);
}
