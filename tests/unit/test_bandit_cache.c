// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * bandit_select keeps terms of the decision between calls; over long random
 * sequences of everything that changes a bandit (rewards, path samples,
 * availability, expiry, live flows, new paths) it must pick exactly the path that
 * bandit_select_uncached computes from scratch, in every learning mode.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "router/bandit.h"
#include "rng.h"

static unsigned below(unsigned n)
{
	return (unsigned)(rng_next() % n);
}

static double unit(void)
{
	return rng_uniform(0, 1);
}

static void random_sample(struct bandit *b, int path, uint64_t now_ns)
{
	struct path_sample s = {
		.ts_ns = now_ns,
		.interval_ns = below(4) ? 10000000 : 0,
		.rtt_us = below(3) ? 1000 + 90000 * unit() : 0,
		.sent_packets = below(5) ? below(2000) : 0,
		.retrans_packets = below(20),
		.delivered_bytes = below(4) ? (uint64_t)below(5000000) : 0,
	};

	assert_int_equal(bandit_path_update(b, path, &s), 0);
}

/* One random change; flows[k][p] mirrors the live flows so that ends stay valid. */
static void random_step(struct bandit *b, uint32_t flows[][BANDIT_MAX_PATHS], uint64_t *now_ns)
{
	int n = bandit_path_count(b), p = (int)below((unsigned)n);
	enum traffic_class k = (enum traffic_class)below(TRAFFIC_CLASS_COUNT);

	*now_ns += below(200000000);
	switch (below(16)) {
	case 0:
	case 1:
		random_sample(b, p, *now_ns);
		break;
	case 2:
		assert_int_equal(bandit_path_set_available(b, p, below(4) != 0), 0);
		break;
	case 3:
		bandit_expire(b, *now_ns);
		break;
	case 4:
	case 5:
		assert_int_equal(bandit_flow_start(b, k, p), 0);
		flows[k][p]++;
		break;
	case 6:
		if (flows[k][p]) {
			assert_int_equal(bandit_flow_end(b, k, p), 0);
			flows[k][p]--;
		}
		break;
	case 7:
		if (n < BANDIT_MAX_PATHS) {
			char name[16];

			snprintf(name, sizeof(name), "wan%d", n);
			assert_int_equal(bandit_add_path(b, name), n);
		}
		break;
	default:
		assert_int_equal(bandit_reward(b, k, p, unit()), 0);
		break;
	}
}

static void check_mode(enum bandit_mode mode, double c)
{
	uint32_t flows[TRAFFIC_CLASS_COUNT][BANDIT_MAX_PATHS] = { { 0 } };
	struct bandit_config cfg;
	struct bandit *b;
	uint64_t now_ns = 1;
	unsigned selects = 0, unavailable = 0;

	bandit_config_default(&cfg, mode);
	cfg.c = c;
	if (mode == BANDIT_MODE_SLIDING_WINDOW)
		cfg.window = 50;
	b = bandit_new(&cfg);
	assert_non_null(b);
	assert_int_equal(bandit_add_path(b, "wan0"), 0);
	for (int step = 0; step < 40000; step++) {
		random_step(b, flows, &now_ns);
		/* Several selects between changes too: the cache must also survive reuse. */
		for (unsigned r = below(3); r > 0; r--) {
			enum traffic_class k = (enum traffic_class)below(TRAFFIC_CLASS_COUNT);
			int cached = bandit_select(b, k), uncached = bandit_select_uncached(b, k);

			if (cached != uncached)
				fail_msg("mode %s, step %d, class %d: bandit_select %d, uncached %d",
					 bandit_mode_name(mode), step, k, cached, uncached);
			selects++;
			unavailable += cached == -ENOENT;
		}
	}
	/* The sequence reached both outcomes, so the comparison covered them. */
	assert_true(selects > 10000);
	assert_true(unavailable > 0);
	assert_true(unavailable < selects);
	bandit_free(b);
}

static void test_cached_select_agrees(void **state)
{
	(void)state;
	check_mode(BANDIT_MODE_UCB1, 1.4142135623730951);
	check_mode(BANDIT_MODE_UCB1, 0);
	check_mode(BANDIT_MODE_DISCOUNTED, 0.2);
	check_mode(BANDIT_MODE_SLIDING_WINDOW, 0.2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cached_select_agrees),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
