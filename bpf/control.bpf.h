/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * What the two cwnd actuators share: reflexd's decisions and its heartbeat. Only
 * sockops.bpf.c (the clamp) and cc.bpf.c (the `reflex` congestion control) include
 * it, so tc-only and router loads neither create nor pin these maps.
 */
#ifndef REFLEX_CONTROL_BPF_H
#define REFLEX_CONTROL_BPF_H

#include "reflex.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, REFLEX_MAX_FLOWS);
	__type(key, struct flow_key);
	__type(value, struct cwnd_decision);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cwnd_decisions SEC(".maps");

/* reflexd's last sign of life (bpf_ktime_get_ns clock). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} heartbeat SEC(".maps");

/* Decisions are enforced only while reflexd's heartbeat is younger than the deadline. */
static __always_inline bool heartbeat_fresh(const struct reflex_config *cfg, __u64 now)
{
	__u32 zero = 0;
	__u64 *last = bpf_map_lookup_elem(&heartbeat, &zero);
	__u64 deadline = cfg && cfg->heartbeat_deadline_ns ? cfg->heartbeat_deadline_ns
							   : REFLEX_DEFAULT_HEARTBEAT_DEADLINE_NS;

	return last && *last && now - *last < deadline;
}

#endif /* REFLEX_CONTROL_BPF_H */
