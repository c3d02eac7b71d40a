/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * reflexd's heartbeat, one design for every program that acts on its decisions:
 * the clamp (sockops), the `reflex` congestion control and the edge router.
 * reflexd writes bpf_ktime_get_ns into `heartbeat`; a program trusts decisions only
 * while the beat is younger than reflex_config.heartbeat_deadline_ns.
 */
#ifndef REFLEX_HEARTBEAT_BPF_H
#define REFLEX_HEARTBEAT_BPF_H

#include "reflex.h"

/* reflexd's last sign of life (bpf_ktime_get_ns clock). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} heartbeat SEC(".maps");

/* Decisions are enforced only while reflexd's heartbeat is younger than the deadline. */
static __always_inline bool heartbeat_fresh_within(__u64 deadline, __u64 now)
{
	__u32 zero = 0;
	__u64 *last = bpf_map_lookup_elem(&heartbeat, &zero);

	return last && *last && now - *last < deadline;
}

static __always_inline bool heartbeat_fresh(const struct reflex_config *cfg, __u64 now)
{
	return heartbeat_fresh_within(cfg && cfg->heartbeat_deadline_ns ? cfg->heartbeat_deadline_ns
									: REFLEX_DEFAULT_HEARTBEAT_DEADLINE_NS,
				      now);
}

#endif /* REFLEX_HEARTBEAT_BPF_H */
