/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * What the two cwnd actuators share: reflexd's decisions and its heartbeat
 * (heartbeat.bpf.h, which the router's program includes on its own). Only
 * sockops.bpf.c (the clamp) and cc.bpf.c (the `reflex` congestion control) include
 * this file, so tc-only and router loads neither create nor pin cwnd_decisions.
 */
#ifndef REFLEX_CONTROL_BPF_H
#define REFLEX_CONTROL_BPF_H

#include "reflex.h"
#include "heartbeat.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, REFLEX_MAX_FLOWS);
	__type(key, struct flow_key);
	__type(value, struct cwnd_decision);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cwnd_decisions SEC(".maps");

/*
 * Bumped by reflexd after every write to cwnd_decisions (mmapped, no syscall), so
 * that sockops looks a flow's decision up only when some decision changed, not on
 * every RTT callback.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} decision_gen SEC(".maps");

static __always_inline __u64 decision_gen_read(void)
{
	__u32 zero = 0;
	__u64 *gen = bpf_map_lookup_elem(&decision_gen, &zero);

	return gen ? *gen : 0;
}

#endif /* REFLEX_CONTROL_BPF_H */
