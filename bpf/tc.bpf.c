// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * Per-flow traffic telemetry on clsact ingress and egress of an interface: packet,
 * byte, payload and packet-size counters for TCP and UDP over IPv4 and IPv6, in an
 * LRU per-CPU hash, with at most one tc_sample per flow and CPU per sample interval
 * into the `tc_events` ring buffer. Never drops or alters a packet.
 *
 * A packet's flow is counted in a per-CPU cache of the flows this CPU saw last
 * (struct tc_flow_cache), not in tc_flows itself: a lookup in tc_flows touches the
 * hash bucket, the element and its per-CPU value, three pages, each a TLB miss on
 * hosts whose kernel entries flush the TLB (about half of this program's cost per
 * packet in real traffic), where the cache is one. tc_flows gets a cached flow's
 * counters back at each of its samples and when another flow takes its slot, so it
 * shows every flow as of its last sample at least, as the ring does.
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

/* Not pinned: only this object's two programs use it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tc_flow_cache);
} tc_flow_cache SEC(".maps");

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
static __always_inline bool flow_key_equal(const struct flow_key *a, const struct flow_key *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

#pragma unroll
	for (int i = 0; i < (int)(sizeof(*a) / sizeof(__u32)); i++)
		if (x[i] != y[i])
			return false;
	return true;
}

/* The slot's flow back into tc_flows. An entry the LRU pushed out while its flow was
 * cached goes back in as an insert, so reflexd's count of evictions (inserts minus
 * live entries) stays exact. */
static __always_inline void slot_write_back(struct tc_flow_slot *slot)
{
	struct tc_flow *stored = bpf_map_lookup_elem(&tc_flows, &slot->key);

	if (!stored) {
		if (!bpf_map_update_elem(&tc_flows, &slot->key, &slot->flow, BPF_NOEXIST)) {
			counter_add(CNT_TC_FLOW_NEW, 1);
			return;
		}
		/* -EEXIST: another CPU's insert of the same flow came between. */
		stored = bpf_map_lookup_elem(&tc_flows, &slot->key);
		if (!stored) {
			counter_add(CNT_TC_FLOW_FAIL, 1);
			return;
		}
	}
	*stored = slot->flow;
}

/* The flow's slot on this CPU, holding the flow: its occupant is written back first
 * if it is another flow. NULL when tc_flows has no room for the flow. */
static __always_inline struct tc_flow_slot *slot_of(const struct flow_key *key, __u32 ifindex)
{
	/* The mask is already in the hash; it is here for the verifier's bounds. */
	__u32 zero = 0, index = tc_flow_cache_slot(key) & (TC_FLOW_CACHE_SLOTS - 1);
	struct tc_flow_cache *cache = bpf_map_lookup_elem(&tc_flow_cache, &zero);
	struct tc_flow_slot *slot;
	struct tc_flow *stored;

	if (!cache)
		return NULL;
	slot = &cache->slot[index];
	if (slot->key.family && flow_key_equal(&slot->key, key))
		return slot;
	if (slot->key.family)
		slot_write_back(slot);
	stored = tc_flow_get(key, ifindex);
	if (!stored) {
		slot->key.family = 0;
		return NULL;
	}
	slot->flow = *stored;
	slot->key = *key;
	return slot;
}

static __always_inline void maybe_emit(struct tc_flow_slot *slot, __u32 ifindex)
{
	struct tc_flow *flow = &slot->flow;
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
	} else {
		s->ts_ns = now;
		s->key = slot->key;
		counters_diff(&s->delta, &flow->total, &flow->emitted);
		s->ifindex = ifindex;
		s->cpu = bpf_get_smp_processor_id();
		flow->emitted = flow->total;
		counter_add(CNT_TC_SAMPLES, 1);
		bpf_ringbuf_submit(s, ring_submit_flags(RING_TC, cfg));
	}
	slot_write_back(slot);
}

static __always_inline int account(struct __sk_buff *skb, enum flow_dir dir)
{
	struct packet_info pi;
	struct tc_flow_slot *slot;
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

	slot = slot_of(&pi.key, skb->ifindex);
	if (!slot)
		return TC_ACT_UNSPEC;
	flow = &slot->flow;
	flow->total.packets[dir] += segs;
	flow->total.bytes[dir] += wire_bytes;
	flow->total.payload_bytes[dir] += payload;
	flow->total.size_sum += wire_bytes;
	flow->total.size_sq_sum += segs * seg_size * seg_size;
	maybe_emit(slot, skb->ifindex);
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
