/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/* Small helpers shared by the reflex BPF programs: config access, counters and
 * batched ring-buffer wakeups. */
#ifndef REFLEX_HELPERS_BPF_H
#define REFLEX_HELPERS_BPF_H

#include "maps.bpf.h"

static __always_inline const struct reflex_config *config_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&reflex_config, &zero);
}

/* One more for a per-CPU counter array (the host's `counters`, the router's). */
static __always_inline void percpu_counter_add(void *map, __u32 idx, __u64 n)
{
	__u64 *value = bpf_map_lookup_elem(map, &idx);

	if (value)
		*value += n;
}

static __always_inline void counter_add(enum reflex_counter idx, __u64 n)
{
	percpu_counter_add(&counters, idx, n);
}

/*
 * Submit flags for one more record on `ring`: a wakeup per record costs far more
 * than the record itself, so userspace is woken every flush_threshold records and
 * otherwise picks records up when its poll times out (max_batch_delay_us); a
 * record userspace must act on at once (urgent) wakes it at once.
 */
static __always_inline __u64 ring_submit_flags_now(enum ring_id ring, const struct reflex_config *cfg, bool urgent)
{
	__u32 key = ring;
	__u64 *pending = bpf_map_lookup_elem(&ring_pending, &key);
	__u32 threshold = cfg && cfg->flush_threshold ? cfg->flush_threshold : REFLEX_DEFAULT_FLUSH_THRESHOLD;

	if (!pending)
		return 0;
	*pending += 1;
	if (!urgent && *pending < threshold)
		return BPF_RB_NO_WAKEUP;
	*pending = 0;
	counter_add(CNT_WAKEUPS, 1);
	return BPF_RB_FORCE_WAKEUP;
}

static __always_inline __u64 ring_submit_flags(enum ring_id ring, const struct reflex_config *cfg)
{
	return ring_submit_flags_now(ring, cfg, false);
}

/* A value reflexd wrote into this very instruction at load (REFLEX_IMM_MARK in
 * reflex.h): no page to touch but the program's own. Only in a program's own
 * function: its subprograms are not rewritten. */
#define load_imm(id)                                                                 \
	({                                                                           \
		__u64 __imm;                                                         \
		asm volatile("%0 = %1 ll" : "=r"(__imm) : "i"(REFLEX_IMM_MARK(id))); \
		__imm;                                                               \
	})

static __always_inline __u64 sample_interval_ns(const struct reflex_config *cfg)
{
	return cfg && cfg->sample_interval_ns ? cfg->sample_interval_ns : REFLEX_DEFAULT_SAMPLE_INTERVAL_NS;
}

#endif
