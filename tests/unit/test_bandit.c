// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* The path selector: UCB index, learning, discounting, availability, anti-herding, reward. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router/bandit.h"

/* cmocka's float assertion goes through float; these indexes need double precision. */
#define assert_double_near(actual, expected, eps)                                          \
	do {                                                                               \
		double a_ = (actual), e_ = (expected);                                     \
		if (!(fabs(a_ - e_) <= (eps)))                                             \
			fail_msg("%s = %.17g, expected %.17g (+-%g)", #actual, a_, e_,     \
				 (double)(eps));                                           \
	} while (0)

/* What a test allocates, freed by the teardown even when an assertion fails. */
struct fixture {
	struct bandit *b;
	char *text;
	char *json;
};

static int setup(void **state)
{
	*state = calloc(1, sizeof(struct fixture));
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	bandit_free(fx->b);
	free(fx->text);
	free(fx->json);
	free(fx);
	return 0;
}

#define MS (1000ULL * 1000)
#define SEC (1000ULL * MS)

/* A bandit of mode with paths "a", "b", ...; the bonus off unless a test wants it. */
static struct bandit *make(enum bandit_mode mode, int n_paths, double c)
{
	static const char *const names[] = { "a", "b", "c", "d" };
	struct bandit_config cfg;
	struct bandit *b;

	bandit_config_default(&cfg, mode);
	cfg.c = c;
	cfg.bonus_scale = 0;
	b = bandit_new(&cfg);
	assert_non_null(b);
	for (int p = 0; p < n_paths; p++)
		assert_int_equal(bandit_add_path(b, names[p]), p);
	return b;
}

static struct bandit *make_cfg(const struct bandit_config *cfg, int n_paths)
{
	static const char *const names[] = { "a", "b", "c", "d" };
	struct bandit *b = bandit_new(cfg);

	assert_non_null(b);
	for (int p = 0; p < n_paths; p++)
		assert_int_equal(bandit_add_path(b, names[p]), p);
	return b;
}

/* A sample that sets a path's first RTT (rtt_var becomes rtt/2) and throughput. */
static void measure(struct bandit *b, int path, uint64_t ts_ns, double rtt_us, double bps)
{
	struct path_sample s = {
		.ts_ns = ts_ns,
		.interval_ns = SEC,
		.rtt_us = rtt_us,
		.sent_packets = 100,
		.delivered_bytes = (uint64_t)(bps / 8),
	};

	assert_int_equal(bandit_path_update(b, path, &s), 0);
}

static void test_ucb1_index_hand_computed(void **state)
{
	struct fixture *fx = *state;
	struct bandit *b = fx->b = make(BANDIT_MODE_UCB1, 3, M_SQRT2);

	assert_int_equal(bandit_reward(b, TRAFFIC_WEB, 0, 0.8), 0);
	assert_int_equal(bandit_reward(b, TRAFFIC_WEB, 0, 0.6), 0);
	assert_int_equal(bandit_reward(b, TRAFFIC_WEB, 1, 0.5), 0);
	/* N = 3: 0.7 + sqrt(2)*sqrt(ln 3 / 2) and 0.5 + sqrt(2)*sqrt(ln 3 / 1) (bc -l). */
	assert_double_near(bandit_index(b, TRAFFIC_WEB, 0), 1.748147073968202, 1e-12);
	assert_double_near(bandit_index(b, TRAFFIC_WEB, 1), 1.982303807367509, 1e-12);
	assert_true(isinf(bandit_index(b, TRAFFIC_WEB, 2)));
	/* Untried first, then the higher index. */
	assert_int_equal(bandit_select(b, TRAFFIC_WEB), 2);
	assert_int_equal(bandit_reward(b, TRAFFIC_WEB, 2, 0.0), 0);
	assert_int_equal(bandit_select(b, TRAFFIC_WEB), 1);
	/* Other classes have their own bandit: still untried. */
	assert_true(isinf(bandit_index(b, TRAFFIC_GAMING, 1)));
}

static void test_ucb1_updates(void **state)
{
	struct fixture *fx = *state;
	struct bandit *b = fx->b = make(BANDIT_MODE_UCB1, 2, M_SQRT2);
	struct bandit_view v;

	for (int i = 0; i < 4; i++)
		assert_int_equal(bandit_reward(b, TRAFFIC_BULK, 1, 0.25 * i), 0);
	assert_int_equal(bandit_reward(b, TRAFFIC_BULK, 1, -0.1), -EINVAL);
	assert_int_equal(bandit_reward(b, TRAFFIC_BULK, 1, 1.1), -EINVAL);
	assert_int_equal(bandit_reward(b, TRAFFIC_BULK, 1, NAN), -EINVAL);
	assert_int_equal(bandit_reward(b, TRAFFIC_BULK, 2, 0.5), -EINVAL);
	assert_int_equal(bandit_reward(b, TRAFFIC_CLASS_COUNT, 1, 0.5), -EINVAL);
	bandit_snapshot(b, 0, &v);
	assert_double_near(v.arm[TRAFFIC_BULK][1].pulls, 4, 0);
	assert_int_equal(v.arm[TRAFFIC_BULK][1].pulls_total, 4);
	assert_double_near(v.arm[TRAFFIC_BULK][1].mean_reward, 0.375, 1e-15);
	assert_true(isnan(v.arm[TRAFFIC_BULK][0].mean_reward));
	assert_int_equal(v.arm[TRAFFIC_BULK][0].pulls_total, 0);
}

static void test_untried_first_tie_break(void **state)
{
	struct fixture *fx = *state;
	struct bandit_config cfg;
	struct bandit *b;

	/* Slack 1 switches the herding rule off: only the bandit's order is seen here. */
	bandit_config_default(&cfg, BANDIT_MODE_UCB1);
	cfg.herd_slack = 1;
	b = fx->b = make_cfg(&cfg, 3);
	assert_int_equal(bandit_select(b, TRAFFIC_VOIP), 0);
	/* Among untried paths, the one with the fewest live flows of the class. */
	assert_int_equal(bandit_flow_start(b, TRAFFIC_VOIP, 0), 0);
	assert_true(bandit_admits(b, 0));
	assert_int_equal(bandit_select(b, TRAFFIC_VOIP), 1);
	assert_int_equal(bandit_flow_start(b, TRAFFIC_WEB, 1), 0); /* another class: not counted */
	assert_int_equal(bandit_reward(b, TRAFFIC_VOIP, 0, 1.0), 0);
	assert_int_equal(bandit_select(b, TRAFFIC_VOIP), 1);
	/* Equal indexes: the lowest path index, whatever the flows. */
	assert_int_equal(bandit_reward(b, TRAFFIC_VOIP, 1, 1.0), 0);
	assert_int_equal(bandit_reward(b, TRAFFIC_VOIP, 2, 1.0), 0);
	assert_double_near(bandit_index(b, TRAFFIC_VOIP, 0), bandit_index(b, TRAFFIC_VOIP, 1), 0);
	assert_double_near(bandit_index(b, TRAFFIC_VOIP, 2), bandit_index(b, TRAFFIC_VOIP, 1), 0);
	assert_int_equal(bandit_select(b, TRAFFIC_VOIP), 0);
	/* With the herding rule on, a's one flow of one is past its 1/3 + 0.1. */
	fx->b = NULL;
	bandit_free(b);
	bandit_config_default(&cfg, BANDIT_MODE_UCB1);
	b = fx->b = make_cfg(&cfg, 3);
	assert_int_equal(bandit_flow_start(b, TRAFFIC_VOIP, 0), 0);
	assert_false(bandit_admits(b, 0));
	assert_int_equal(bandit_select(b, TRAFFIC_GAMING), 1);
}

static void test_discounted_index_hand_computed(void **state)
{
	struct fixture *fx = *state;
	struct bandit_config cfg;
	struct bandit *b;
	struct bandit_view v;

	bandit_config_default(&cfg, BANDIT_MODE_DISCOUNTED);
	cfg.gamma = 0.5;
	cfg.c = 1;
	cfg.bonus_scale = 0;
	b = fx->b = make_cfg(&cfg, 2);
	/* n0: 1 -> 0.5 -> 0.25 + 1 = 1.25, sum0: 1 -> 0.5 -> 0.25 + 0.5 = 0.75;
	 * n1: 1 -> 0.5, sum1: 0. N = 1.75. */
	assert_int_equal(bandit_reward(b, TRAFFIC_GAMING, 0, 1.0), 0);
	assert_int_equal(bandit_reward(b, TRAFFIC_GAMING, 1, 0.0), 0);
	assert_int_equal(bandit_reward(b, TRAFFIC_GAMING, 0, 0.5), 0);
	bandit_snapshot(b, 0, &v);
	assert_double_near(v.arm[TRAFFIC_GAMING][0].pulls, 1.25, 1e-15);
	assert_double_near(v.arm[TRAFFIC_GAMING][1].pulls, 0.5, 1e-15);
	assert_int_equal(v.arm[TRAFFIC_GAMING][0].pulls_total, 2);
	/* 0.6 + sqrt(ln 1.75 / 1.25) and 0 + sqrt(ln 1.75 / 0.5) (bc -l). */
	assert_double_near(bandit_index(b, TRAFFIC_GAMING, 0), 1.269098371204367, 1e-12);
	assert_double_near(bandit_index(b, TRAFFIC_GAMING, 1), 1.057937415857310, 1e-12);
	/* Rewards of another class do not discount this one. */
	assert_int_equal(bandit_reward(b, TRAFFIC_WEB, 0, 1.0), 0);
	assert_double_near(bandit_index(b, TRAFFIC_GAMING, 0), 1.269098371204367, 1e-12);
}

static void test_sliding_window_counts(void **state)
{
	struct fixture *fx = *state;
	struct bandit_config cfg;
	struct bandit *b;
	struct bandit_view v;

	bandit_config_default(&cfg, BANDIT_MODE_SLIDING_WINDOW);
	cfg.window = 3;
	cfg.bonus_scale = 0;
	b = fx->b = make_cfg(&cfg, 2);
	assert_int_equal(bandit_reward(b, TRAFFIC_BULK, 0, 1.0), 0);
	assert_int_equal(bandit_reward(b, TRAFFIC_BULK, 0, 0.5), 0);
	assert_int_equal(bandit_reward(b, TRAFFIC_BULK, 1, 0.25), 0);
	assert_int_equal(bandit_reward(b, TRAFFIC_BULK, 1, 0.75), 0); /* evicts 1.0 of path 0 */
	bandit_snapshot(b, 0, &v);
	assert_double_near(v.arm[TRAFFIC_BULK][0].pulls, 1, 0);
	assert_double_near(v.arm[TRAFFIC_BULK][0].mean_reward, 0.5, 1e-15);
	assert_double_near(v.arm[TRAFFIC_BULK][1].pulls, 2, 0);
	assert_double_near(v.arm[TRAFFIC_BULK][1].mean_reward, 0.5, 1e-15);
	assert_int_equal(bandit_reward(b, TRAFFIC_BULK, 1, 0.0), 0); /* evicts path 0's last */
	bandit_snapshot(b, 0, &v);
	assert_double_near(v.arm[TRAFFIC_BULK][0].pulls, 0, 0);
	assert_int_equal(v.arm[TRAFFIC_BULK][0].pulls_total, 2);
	/* Out of the window = untried again: tried first. */
	assert_int_equal(bandit_select(b, TRAFFIC_BULK), 0);
}

/*
 * Path a pays 0.9 for 2000 rewards, then 0.3; path b always 0.5. Deterministic
 * rewards, c = 0.2, no bonus.
 * discounted, gamma 0.99: nearly all of a's weight is on a, so its mean after
 *   k bad rewards is ~0.3 + 0.6 * 0.99^k, below b's 0.5 from k = ln 3 / -ln 0.99
 *   = 110; b's index then exceeds a's (b's bonus is at least a's: fewer pulls).
 *   Stated: from 200 steps after the change on, b holds >= 90% of the selections.
 * sliding-window, 100 rewards: after 100 steps no 0.9 is left in the window.
 *   Stated: from 100 steps after the change on, b holds >= 90%.
 * ucb1 (the contrast, same c): a's mean stays above 0.5 for ~2000 more rewards;
 *   b holds at most 10% of the steps 200-1000 after the change.
 */
static int share_of_b(struct fixture *fx, enum bandit_mode mode, int from, int to)
{
	struct bandit_config cfg;
	struct bandit *b;
	int on_b = 0;

	bandit_config_default(&cfg, mode);
	cfg.c = 0.2;
	cfg.gamma = 0.99;
	cfg.window = 100;
	cfg.bonus_scale = 0;
	b = fx->b = make_cfg(&cfg, 2);
	for (int t = 0; t < 2000 + to; t++) {
		int p = bandit_select(b, TRAFFIC_WEB);

		assert_true(p == 0 || p == 1);
		if (t >= 2000 + from)
			on_b += p == 1;
		assert_int_equal(bandit_reward(b, TRAFFIC_WEB, p, p == 1 ? 0.5 : t < 2000 ? 0.9 : 0.3),
				 0);
	}
	bandit_free(fx->b);
	fx->b = NULL;
	return on_b;
}

static void test_discounting_forgets_changed_path(void **state)
{
	assert_in_range(share_of_b(*state, BANDIT_MODE_DISCOUNTED, 200, 1000), 720, 800);
	assert_in_range(share_of_b(*state, BANDIT_MODE_SLIDING_WINDOW, 100, 1000), 810, 900);
	assert_in_range(share_of_b(*state, BANDIT_MODE_UCB1, 200, 1000), 0, 80);
}

static void test_forgotten_path_becomes_untried(void **state)
{
	struct fixture *fx = *state;
	struct bandit_config cfg;
	struct bandit *b;
	struct bandit_view v;

	bandit_config_default(&cfg, BANDIT_MODE_DISCOUNTED);
	cfg.gamma = 0.5;
	b = fx->b = make_cfg(&cfg, 2);
	assert_int_equal(bandit_reward(b, TRAFFIC_WEB, 1, 1.0), 0);
	/* 0.5^30 = 9.3e-10 < 1e-9: path b is forgotten on the 30th reward of path a. */
	for (int i = 0; i < 29; i++)
		assert_int_equal(bandit_reward(b, TRAFFIC_WEB, 0, 1.0), 0);
	bandit_snapshot(b, 0, &v);
	assert_true(v.arm[TRAFFIC_WEB][1].pulls > 0);
	assert_int_equal(bandit_reward(b, TRAFFIC_WEB, 0, 1.0), 0);
	bandit_snapshot(b, 0, &v);
	assert_double_near(v.arm[TRAFFIC_WEB][1].pulls, 0, 0);
	assert_true(isinf(v.arm[TRAFFIC_WEB][1].ucb_index));
	assert_int_equal(bandit_select(b, TRAFFIC_WEB), 1);
}

static void test_unavailable_never_selected(void **state)
{
	struct fixture *fx = *state;
	struct bandit *b = fx->b = make(BANDIT_MODE_UCB1, 3, M_SQRT2);

	for (int p = 0; p < 3; p++)
		assert_int_equal(bandit_reward(b, TRAFFIC_GAMING, p, p == 1 ? 1.0 : 0.1), 0);
	assert_int_equal(bandit_select(b, TRAFFIC_GAMING), 1);
	assert_int_equal(bandit_path_set_available(b, 1, false), 0);
	for (int i = 0; i < 200; i++) {
		int p = bandit_select(b, TRAFFIC_GAMING);

		assert_int_not_equal(p, 1);
		assert_int_equal(bandit_reward(b, TRAFFIC_GAMING, p, 0.1), 0);
	}
	/* Untried and unavailable: still never. */
	assert_int_not_equal(bandit_select(b, TRAFFIC_WEB), 1);
	assert_int_equal(bandit_path_set_available(b, 0, false), 0);
	assert_int_equal(bandit_path_set_available(b, 2, false), 0);
	assert_int_equal(bandit_select(b, TRAFFIC_GAMING), -ENOENT);
	assert_int_equal(bandit_path_set_available(b, 3, false), -EINVAL);
	assert_int_equal(bandit_path_set_available(b, 1, true), 0);
	assert_int_equal(bandit_select(b, TRAFFIC_GAMING), 1);
}

static void test_expire_after_silence(void **state)
{
	struct fixture *fx = *state;
	struct bandit *b = fx->b = make(BANDIT_MODE_UCB1, 2, M_SQRT2);
	struct path_sample silent = { .ts_ns = 10 * SEC, .interval_ns = 100 * MS, .sent_packets = 50 };
	struct path_sample delivered = { .ts_ns = 9 * SEC, .interval_ns = 100 * MS,
					 .sent_packets = 50, .delivered_bytes = 60000 };

	assert_int_equal(bandit_path_update(b, 0, &delivered), 0);
	assert_int_equal(bandit_path_update(b, 0, &silent), 0);
	silent.ts_ns = 10 * SEC + 500 * MS; /* still silent: the first silence counts */
	assert_int_equal(bandit_path_update(b, 0, &silent), 0);
	assert_int_equal(bandit_expire(b, 10 * SEC + 999 * MS), 0);
	assert_true(bandit_path_metrics(b, 0)->available);
	assert_int_equal(bandit_expire(b, 11 * SEC), 1u << 0);
	assert_false(bandit_path_metrics(b, 0)->available);
	assert_int_equal(bandit_expire(b, 12 * SEC), 0); /* reported once */
	for (int i = 0; i < 20; i++)
		assert_int_equal(bandit_select(b, TRAFFIC_BULK), 1);
	/* Path b never carried anything: idle is not dead. */
	assert_true(bandit_path_metrics(b, 1)->available);
	/* Delivery brings path a back. */
	delivered.ts_ns = 13 * SEC;
	assert_int_equal(bandit_path_update(b, 0, &delivered), 0);
	assert_true(bandit_path_metrics(b, 0)->available);
	assert_int_equal(bandit_path_metrics(b, 0)->last_delivery_ns, 13 * SEC);
	assert_int_equal(bandit_path_metrics(b, 0)->pending_since_ns, 0);
	assert_int_equal(bandit_select(b, TRAFFIC_BULK), 0);
}

static void test_path_metrics_ewma(void **state)
{
	struct path_metrics m = { .available = true };
	struct path_sample s = { .ts_ns = 1 * SEC, .interval_ns = SEC, .rtt_us = 10000,
				 .sent_packets = 100, .retrans_packets = 10,
				 .delivered_bytes = 1250000 };

	(void)state;
	path_metrics_update(&m, &s);
	assert_double_near(m.rtt_us, 10000, 0);
	assert_double_near(m.rtt_var_us, 5000, 0);        /* first sample: rtt / 2 */
	assert_double_near(m.loss_rate, 0.0125, 1e-15);   /* 0 + (0.1 - 0) / 8 */
	assert_double_near(m.throughput_bps, 1e7, 1e-6);  /* first measurement taken as is */
	assert_int_equal(m.last_update_ns, 1 * SEC);

	s.ts_ns = 2 * SEC;
	s.rtt_us = 18000;
	s.retrans_packets = 0;
	s.delivered_bytes = 2500000;
	path_metrics_update(&m, &s);
	assert_double_near(m.rtt_var_us, 5750, 1e-9);     /* 5000 + (8000 - 5000) / 4 */
	assert_double_near(m.rtt_us, 11000, 1e-9);        /* 10000 + 8000 / 8 */
	assert_double_near(m.loss_rate, 0.0125 * 7 / 8, 1e-15);
	assert_double_near(m.throughput_bps, 1.25e7, 1e-6); /* 1e7 + (2e7 - 1e7) / 4 */

	/* An idle interval keeps the capacity estimate and the loss rate. */
	memset(&s, 0, sizeof(s));
	s.ts_ns = 3 * SEC;
	s.interval_ns = SEC;
	path_metrics_update(&m, &s);
	assert_double_near(m.throughput_bps, 1.25e7, 1e-6);
	assert_double_near(m.loss_rate, 0.0125 * 7 / 8, 1e-15);
	assert_double_near(m.rtt_us, 11000, 1e-9);
	assert_int_equal(m.last_update_ns, 3 * SEC);

	/* More retransmissions than packets counts as loss 1. */
	s.sent_packets = 5;
	s.retrans_packets = 9;
	path_metrics_update(&m, &s);
	assert_double_near(m.loss_rate, 0.0125 * 7 / 8 * 7 / 8 + 1.0 / 8, 1e-15);
}

static void test_contextual_bonus(void **state)
{
	struct fixture *fx = *state;
	struct bandit_config cfg;
	struct bandit *b;

	bandit_config_default(&cfg, BANDIT_MODE_UCB1);
	assert_double_near(cfg.bonus_scale, 0.1, 0);
	b = fx->b = make_cfg(&cfg, 3);
	/* No metrics yet: no bonus. */
	assert_double_near(bandit_bonus(b, TRAFFIC_GAMING, 0), 0, 0);
	measure(b, 0, SEC, 10000, 1e7); /* rtt 10 ms, rtt_var 5 ms, 10 Mbit/s */
	measure(b, 1, SEC, 30000, 4e7); /* rtt 30 ms, rtt_var 15 ms, 40 Mbit/s */
	/* gaming: 0.1 * (0.5 * L + 0.5 * J); L1 = 11000/31000, J1 = 6000/16000. */
	assert_double_near(bandit_bonus(b, TRAFFIC_GAMING, 0), 0.1, 1e-12);
	assert_double_near(bandit_bonus(b, TRAFFIC_GAMING, 1), 0.036491935483870, 1e-12);
	/* bulk: 0.1 * B; B0 = 10/40. */
	assert_double_near(bandit_bonus(b, TRAFFIC_BULK, 0), 0.025, 1e-12);
	assert_double_near(bandit_bonus(b, TRAFFIC_BULK, 1), 0.1, 1e-12);
	/* web: 0.1 * (0.5 * L + 0.5 * B). */
	assert_double_near(bandit_bonus(b, TRAFFIC_WEB, 0), 0.0625, 1e-12);
	assert_double_near(bandit_bonus(b, TRAFFIC_WEB, 1), 0.067741935483870, 1e-12);
	/* Path c has no metrics: nothing. */
	assert_double_near(bandit_bonus(b, TRAFFIC_WEB, 2), 0, 0);
	/* The bonus is part of the index: equal rewards, the bulk class picks the wide path. */
	for (int p = 0; p < 3; p++)
		assert_int_equal(bandit_reward(b, TRAFFIC_BULK, p, 0.5), 0);
	assert_int_equal(bandit_select(b, TRAFFIC_BULK), 1);
	for (int p = 0; p < 3; p++)
		assert_int_equal(bandit_reward(b, TRAFFIC_GAMING, p, 0.5), 0);
	assert_int_equal(bandit_select(b, TRAFFIC_GAMING), 0);
	/* An unavailable path neither gets a bonus nor sets the scale of the others. */
	assert_int_equal(bandit_path_set_available(b, 1, false), 0);
	assert_double_near(bandit_bonus(b, TRAFFIC_BULK, 1), 0, 0);
	assert_double_near(bandit_bonus(b, TRAFFIC_BULK, 0), 0.1, 1e-12);
}

/*
 * Shares 0.75 / 0.25 (30 and 10 Mbit/s), slack 0.1: path b, which the bandit
 * prefers, takes the k-th flow only while (flows_b + 1) / k <= 0.35, so after
 * k flows it holds max(1, floor(0.35 k)): 10 of 30.
 */
static void test_anti_herding(void **state)
{
	struct fixture *fx = *state;
	struct bandit_config cfg;
	struct bandit *b;
	int on[2] = { 0, 0 };

	bandit_config_default(&cfg, BANDIT_MODE_UCB1);
	cfg.herd_slack = 0.1;
	b = fx->b = make_cfg(&cfg, 2);
	measure(b, 0, SEC, 20000, 3e7);
	measure(b, 1, SEC, 20000, 1e7);
	assert_double_near(bandit_capacity_share(b, 0), 0.75, 1e-12);
	assert_double_near(bandit_capacity_share(b, 1), 0.25, 1e-12);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(bandit_reward(b, TRAFFIC_BULK, 0, 0.1), 0);
		assert_int_equal(bandit_reward(b, TRAFFIC_BULK, 1, 0.9), 0);
	}
	assert_true(bandit_index(b, TRAFFIC_BULK, 1) > bandit_index(b, TRAFFIC_BULK, 0));
	for (int k = 1; k <= 30; k++) {
		int p = bandit_select(b, TRAFFIC_BULK);
		int expect_b = (int)floor(0.35 * k + 1e-9);

		assert_true(p == 0 || p == 1);
		assert_int_equal(bandit_flow_start(b, TRAFFIC_BULK, p), 0);
		on[p]++;
		assert_int_equal(on[1], expect_b < 1 ? 1 : expect_b);
	}
	assert_int_equal(on[0], 20);
	assert_int_equal(on[1], 10);
	assert_false(bandit_admits(b, 1));
	/* One of b's flows leaving makes room again: (9 + 1) / (29 + 1) <= 0.35. */
	assert_int_equal(bandit_flow_end(b, TRAFFIC_BULK, 1), 0);
	assert_true(bandit_admits(b, 1));
	assert_int_equal(bandit_select(b, TRAFFIC_BULK), 1);
}

static void test_anti_herding_all_full(void **state)
{
	struct fixture *fx = *state;
	struct bandit_config cfg;
	struct bandit *b;

	bandit_config_default(&cfg, BANDIT_MODE_UCB1);
	cfg.herd_slack = 0.1;
	b = fx->b = make_cfg(&cfg, 2);
	/* No throughput known: equal shares. */
	assert_double_near(bandit_capacity_share(b, 0), 0.5, 0);
	assert_int_equal(bandit_reward(b, TRAFFIC_VOIP, 0, 0.1), 0);
	assert_int_equal(bandit_reward(b, TRAFFIC_VOIP, 1, 0.9), 0);
	/* One flow each: (1 + 1) / 3 = 0.67 > 0.6 on both; equal excess, the bandit decides. */
	assert_int_equal(bandit_flow_start(b, TRAFFIC_VOIP, 0), 0);
	assert_int_equal(bandit_flow_start(b, TRAFFIC_WEB, 1), 0);
	assert_false(bandit_admits(b, 0));
	assert_false(bandit_admits(b, 1));
	assert_int_equal(bandit_select(b, TRAFFIC_VOIP), 1);
	/* b one flow ahead: a is the least over-subscribed (2/4 - 0.5 = 0 <= 0.1 admits). */
	assert_int_equal(bandit_flow_start(b, TRAFFIC_VOIP, 1), 0);
	assert_true(bandit_admits(b, 0));
	assert_int_equal(bandit_select(b, TRAFFIC_VOIP), 0);
	/* Flows on an unavailable path do not count. */
	assert_int_equal(bandit_path_set_available(b, 1, false), 0);
	assert_double_near(bandit_capacity_share(b, 0), 1, 0);
	assert_double_near(bandit_capacity_share(b, 1), 0, 0);
	assert_int_equal(bandit_select(b, TRAFFIC_VOIP), 0);
	assert_int_equal(bandit_flow_end(b, TRAFFIC_GAMING, 0), -EINVAL); /* never started */
}

static void test_round_robin(void **state)
{
	struct fixture *fx = *state;
	struct bandit *b = fx->b = make(BANDIT_MODE_ROUND_ROBIN, 3, M_SQRT2);
	static const int expect_all[] = { 0, 1, 2, 0, 1, 2 };
	static const int expect_no_b[] = { 2, 0, 2, 0 };

	/* Rewards do not matter to the fallback. */
	assert_int_equal(bandit_reward(b, TRAFFIC_WEB, 2, 1.0), 0);
	for (size_t i = 0; i < sizeof(expect_all) / sizeof(expect_all[0]); i++)
		assert_int_equal(bandit_select(b, TRAFFIC_WEB), expect_all[i]);
	assert_int_equal(bandit_select(b, TRAFFIC_GAMING), 0);
	assert_int_equal(bandit_path_set_available(b, 1, false), 0);
	for (size_t i = 0; i < sizeof(expect_no_b) / sizeof(expect_no_b[0]); i++)
		assert_int_equal(bandit_select(b, TRAFFIC_WEB), expect_no_b[i]);
	assert_int_equal(bandit_path_set_available(b, 0, false), 0);
	assert_int_equal(bandit_path_set_available(b, 2, false), 0);
	assert_int_equal(bandit_select(b, TRAFFIC_WEB), -ENOENT);
}

static void test_reward_formula(void **state)
{
	(void)state;
	/* At every class's references, with half its loss_max, each term is 1/2. */
	for (int k = 0; k < TRAFFIC_CLASS_COUNT; k++) {
		const struct bandit_reward_params *p = &bandit_reward_params[k];

		assert_double_near(p->w_rtt + p->w_loss + p->w_throughput, 1, 1e-12);
		assert_double_near(bandit_reward_of(k, p->rtt_ref_us, p->loss_max / 2,
						    p->throughput_ref_bps), 0.5, 1e-12);
	}
	/* gaming: 0.6 / (1 + 10/20) + 0.3 * (1 - 0.01/0.05) + 0.1 * 4/(4 + 1). */
	assert_double_near(bandit_reward_of(TRAFFIC_GAMING, 10000, 0.01, 4e6),
			   0.4 + 0.24 + 0.08, 1e-12);
	/* Bounds and bad input. */
	assert_double_near(bandit_reward_of(TRAFFIC_BULK, 0, 0, INFINITY), 1, 0);
	assert_double_near(bandit_reward_of(TRAFFIC_BULK, INFINITY, 1, 0), 0, 0);
	assert_double_near(bandit_reward_of(TRAFFIC_VOIP, NAN, NAN, NAN), 0, 0);
	assert_double_near(bandit_reward_of(TRAFFIC_VOIP, 0, 5, 0), 0.4, 1e-12);
	assert_double_near(bandit_reward_of(TRAFFIC_CLASS_COUNT, 0, 0, 1e9), 0, 0);
}

static void test_reward_monotonic(void **state)
{
	(void)state;
	for (int k = 0; k < TRAFFIC_CLASS_COUNT; k++) {
		const struct bandit_reward_params *p = &bandit_reward_params[k];
		double prev = INFINITY;

		for (double rtt = 0; rtt <= 1e6; rtt += 1000) {
			double r = bandit_reward_of(k, rtt, 0.01, 1e7);

			assert_true(r >= 0 && r <= 1);
			if (!(r < prev))
				fail_msg("%s: reward %.9f at rtt %.0f not below %.9f",
					 traffic_class_name(k), r, rtt, prev);
			prev = r;
		}
		prev = INFINITY;
		for (double loss = 0; loss < p->loss_max; loss += p->loss_max / 50) {
			double r = bandit_reward_of(k, 20000, loss, 1e7);

			if (!(r < prev))
				fail_msg("%s: reward %.9f at loss %.4f not below %.9f",
					 traffic_class_name(k), r, loss, prev);
			prev = r;
		}
		/* Past loss_max the loss term is 0 and stays there. */
		assert_double_near(bandit_reward_of(k, 20000, p->loss_max, 1e7),
				   bandit_reward_of(k, 20000, 1, 1e7), 1e-15);
		prev = -INFINITY;
		for (double bps = 0; bps <= 1e9; bps += 5e6) {
			double r = bandit_reward_of(k, 20000, 0.01, bps);

			if (!(r > prev))
				fail_msg("%s: reward %.9f at %.0f bit/s not above %.9f",
					 traffic_class_name(k), r, bps, prev);
			prev = r;
		}
	}
}

static void test_reward_class_preferences(void **state)
{
	/* Near and thin (10 ms, 2 Mbit/s) against far and wide (80 ms, 100 Mbit/s). */
	double near_gaming = bandit_reward_of(TRAFFIC_GAMING, 10000, 0, 2e6);
	double far_gaming = bandit_reward_of(TRAFFIC_GAMING, 80000, 0, 1e8);
	double near_bulk = bandit_reward_of(TRAFFIC_BULK, 10000, 0, 2e6);
	double far_bulk = bandit_reward_of(TRAFFIC_BULK, 80000, 0, 1e8);
	/* The voice case: lossy and fast (20 ms, 2%) against clean and slower (60 ms). */
	double lossy_voip = bandit_reward_of(TRAFFIC_VOIP, 20000, 0.02, 1e7);
	double clean_voip = bandit_reward_of(TRAFFIC_VOIP, 60000, 0, 2e6);

	(void)state;
	if (!(near_gaming > far_gaming))
		fail_msg("gaming: near %.4f should beat far %.4f", near_gaming, far_gaming);
	if (!(far_bulk > near_bulk))
		fail_msg("bulk: far %.4f should beat near %.4f", far_bulk, near_bulk);
	if (!(clean_voip > lossy_voip))
		fail_msg("voip: clean %.4f should beat lossy %.4f", clean_voip, lossy_voip);
}

static void test_config_and_paths(void **state)
{
	struct fixture *fx = *state;
	struct bandit_config cfg;
	struct bandit *b;
	char err[128];

	for (int m = 0; m < BANDIT_MODE_COUNT; m++) {
		bandit_config_default(&cfg, (enum bandit_mode)m);
		assert_int_equal(bandit_config_check(&cfg, err, sizeof(err)), 0);
		assert_int_equal(bandit_mode_from_name(bandit_mode_name(m)), m);
	}
	assert_int_equal(bandit_mode_from_name("thompson"), -1);
	assert_double_near(cfg.c, M_SQRT2, 0);
	bandit_config_default(&cfg, BANDIT_MODE_DISCOUNTED);
	assert_double_near(cfg.c, 0.2, 0);

	cfg.gamma = 1.0;
	assert_int_equal(bandit_config_check(&cfg, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "bandit config: gamma: must be in (0, 1)");
	errno = 0;
	assert_null(bandit_new(&cfg));
	assert_int_equal(errno, EINVAL);
	bandit_config_default(&cfg, BANDIT_MODE_SLIDING_WINDOW);
	cfg.window = BANDIT_MAX_WINDOW + 1;
	assert_int_equal(bandit_config_check(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "window"));
	bandit_config_default(&cfg, BANDIT_MODE_UCB1);
	cfg.herd_slack = -0.5;
	assert_int_equal(bandit_config_check(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "herd_slack"));
	cfg.herd_slack = 0.1;
	cfg.c = NAN;
	assert_int_equal(bandit_config_check(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "c:"));

	bandit_config_default(&cfg, BANDIT_MODE_UCB1);
	b = fx->b = bandit_new(&cfg);
	assert_non_null(b);
	assert_int_equal(bandit_select(b, TRAFFIC_WEB), -ENOENT); /* no paths */
	assert_int_equal(bandit_add_path(b, ""), -EINVAL);
	assert_int_equal(bandit_add_path(b, "wan:0"), -EINVAL);
	assert_int_equal(bandit_add_path(b, "a-name-of-16chr"), 0); /* 15 characters */
	assert_int_equal(bandit_add_path(b, "a-name-of-16chrs"), -EINVAL);
	assert_int_equal(bandit_add_path(b, "a-name-of-16chr"), -EEXIST);
	assert_int_equal(bandit_add_path(b, "wan1"), 1);
	assert_int_equal(bandit_add_path(b, "wan2"), 2);
	assert_int_equal(bandit_add_path(b, "wan3"), 3);
	assert_int_equal(bandit_add_path(b, "wan4"), -ENOSPC);
	assert_int_equal(bandit_path_count(b), 4);
	assert_string_equal(bandit_path_name(b, 1), "wan1");
	assert_null(bandit_path_name(b, 4));
	assert_null(bandit_path_metrics(b, -1));
	assert_int_equal(bandit_select(b, TRAFFIC_CLASS_COUNT), -EINVAL);
}

static char *render(const struct bandit_view *v, bool json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	if (json)
		assert_int_equal(bandit_view_print_json(v, f), 0);
	else
		assert_int_equal(bandit_view_print_text(v, f), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void test_view_and_printers(void **state)
{
	struct fixture *fx = *state;
	struct bandit_config cfg;
	struct bandit *b;
	struct bandit_view v;
	const char *text, *json;

	bandit_config_default(&cfg, BANDIT_MODE_DISCOUNTED);
	b = fx->b = make_cfg(&cfg, 2);
	measure(b, 0, 2 * SEC, 20000, 1e7);
	assert_int_equal(bandit_reward(b, TRAFFIC_VOIP, 0, 0.75), 0);
	assert_int_equal(bandit_flow_start(b, TRAFFIC_VOIP, 0), 0);
	bandit_snapshot(b, 2 * SEC + 250 * MS, &v);
	assert_int_equal(v.n_paths, 2);
	assert_string_equal(v.path[0].name, "a");
	assert_int_equal(v.path[0].flows, 1);
	assert_double_near(v.path[0].metrics.rtt_us, 20000, 0);
	assert_double_near(v.arm[TRAFFIC_VOIP][0].mean_reward, 0.75, 1e-15);
	assert_double_near(v.arm[TRAFFIC_VOIP][0].ucb_index, bandit_index(b, TRAFFIC_VOIP, 0), 0);
	assert_int_equal(v.arm[TRAFFIC_VOIP][0].flows, 1);

	text = fx->text = render(&v, false);
	assert_non_null(strstr(text, "mode discounted  c 0.200  gamma 0.9980"));
	assert_non_null(strstr(text, "THROUGHPUT_BPS"));
	assert_non_null(strstr(text, "UCB_INDEX"));
	/* path a: 20 ms, 10 ms var, 10 Mbit/s, one flow, age 250 ms. */
	assert_non_null(strstr(text, "20000       10000"));
	assert_non_null(strstr(text, "     250\n"));
	assert_non_null(strstr(text, "untried"));
	json = fx->json = render(&v, true);
	assert_non_null(strstr(json, "{\"mode\":\"discounted\",\"c\":0.20000000000000001,"));
	assert_non_null(strstr(json, "{\"path\":\"a\",\"available\":true,\"rtt_us\":20000,"
				     "\"rtt_var_us\":10000,\"loss_rate\":0,\"throughput_bps\":10000000,"));
	assert_non_null(strstr(json, "{\"class\":\"voip\",\"arms\":[{\"path\":\"a\",\"pulls\":1,"
				     "\"pulls_total\":1,\"mean_reward\":0.75,"));
	/* Untried arms: JSON has no infinity. */
	assert_non_null(strstr(json, "\"mean_reward\":null,\"bonus\":0,\"ucb_index\":null"));
	assert_null(strstr(json, "inf"));
	assert_null(strstr(json, "nan"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ucb1_index_hand_computed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ucb1_updates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_untried_first_tie_break, setup, teardown),
		cmocka_unit_test_setup_teardown(test_discounted_index_hand_computed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sliding_window_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_discounting_forgets_changed_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forgotten_path_becomes_untried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unavailable_never_selected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expire_after_silence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path_metrics_ewma, setup, teardown),
		cmocka_unit_test_setup_teardown(test_contextual_bonus, setup, teardown),
		cmocka_unit_test_setup_teardown(test_anti_herding, setup, teardown),
		cmocka_unit_test_setup_teardown(test_anti_herding_all_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_robin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reward_formula, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reward_monotonic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reward_class_preferences, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_and_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_view_and_printers, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
