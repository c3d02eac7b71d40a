// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* bpf/router.bpf.c loaded for BPF_PROG_TEST_RUN (tests/unit/test_router_bpf.c,
 * test_router_window.c): private maps, nothing pinned, nothing shared with a running
 * reflexd; with its counters and reflexd's heartbeat. Include after <cmocka.h>. */
#ifndef REFLEX_TEST_ROUTER_SKEL_H
#define REFLEX_TEST_ROUTER_SKEL_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "reflex_router.h"
#include "router.skel.h"

static inline uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* NULL (and the reason printed) when it cannot be loaded. */
static inline struct router_bpf *router_skel_load(uint32_t lan_ifindex)
{
	struct router_bpf *skel = router_bpf__open();
	struct bpf_map *map;

	if (!skel) {
		print_error("router_bpf__open: %s\n", strerror(errno));
		return NULL;
	}
	bpf_object__for_each_map(map, skel->obj)
		bpf_map__set_pin_path(map, NULL);
	skel->rodata->lan_ifindex = lan_ifindex;
	if (router_bpf__load(skel)) {
		print_error("router_bpf__load: %s (root and BPF needed)\n", strerror(errno));
		router_bpf__destroy(skel);
		return NULL;
	}
	return skel;
}

static inline void router_heartbeat(struct router_bpf *skel, uint64_t when)
{
	uint32_t zero = 0;

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(skel->maps.heartbeat), &zero, &when, BPF_ANY), 0);
}

/* The per-CPU counter summed over CPUs. */
static inline uint64_t router_counter(struct router_bpf *skel, enum router_counter idx)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t values[512] = { 0 }, sum = 0;
	uint32_t key = idx;

	assert_true(ncpu > 0 && ncpu <= 512);
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.router_counters), &key, values), 0);
	for (int c = 0; c < ncpu; c++)
		sum += values[c];
	return sum;
}

#endif
