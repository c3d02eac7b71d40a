/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * Maps shared by sockops.bpf.c, tc.bpf.c and router.bpf.c (config, counters,
 * ring wakeup batching). Both objects declare them with
 * LIBBPF_PIN_BY_NAME, so whichever loads first creates and pins them under the
 * pin directory and the other reuses the same map.
 */
#ifndef REFLEX_MAPS_BPF_H
#define REFLEX_MAPS_BPF_H

#include "reflex.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct reflex_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} reflex_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} counters SEC(".maps");

/* Records submitted since the last forced wakeup, per CPU and ring. */
enum ring_id {
	RING_SOCK = 0,
	RING_TC = 1,
	RING_ROUTER = 2,
	RING_MAX = 3,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RING_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ring_pending SEC(".maps");

#endif
