// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* The bottleneck simulator on cases computed by hand. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/bdp.h"
#include "lib/trace.h"
#include "sim/bottleneck_sim.h"

/* 10 Mbit/s, 20 ms, 1500 B: one packet takes 1.2 ms on the link, the BDP is
 * 25000 B = 16.67 packets, and a 100 us tick divides both, so the sim is exact. */
static void small_link(struct bsim_config *c)
{
	bsim_config_default(c);
	c->link_bps = 10000000;
	c->base_rtt_us = 20000;
	c->mss = 1500;
	c->buffer_bytes = 1000000;
	c->tick_us = 100;
	c->cc = BSIM_CC_RENO;
}

static void test_bdp_math(void **state)
{
	struct bsim_config c;

	(void)state;
	bsim_config_default(&c); /* 100 Mbit/s, 20 ms, 1500 B */
	assert_true(fabs(bsim_bdp_bytes(&c) - 250000.0) < 1e-9);
	assert_true(fabs(bsim_bdp_packets(&c) - 250000.0 / 1500) < 1e-9);
	/* Caps as reflexd sets them: ceil over the least RTT, 20.12 ms (167.67 packets). */
	assert_int_equal(bsim_clamp_for_bdp(&c, 1.0), 168);
	assert_int_equal(bsim_clamp_for_bdp(&c, 0.5), 84);   /* ceil(83.83) */
	assert_int_equal(bsim_clamp_for_bdp(&c, 4.0), 671);  /* ceil(670.67) */
	assert_int_equal(bsim_clamp_for_bdp(&c, 0.0), 0);    /* no clamp */
	assert_int_equal(bsim_clamp_for_bdp(&c, -1.0), 0);
	assert_int_equal(bsim_clamp_for_bdp(&c, 0.001), BDP_MIN_CAP_PACKETS);
	assert_true(fabs(bsim_min_rtt_us(&c) - 20120.0) < 1e-9); /* 20 ms + 120 us serialization */
	assert_int_equal(c.buffer_bytes, 250000);            /* default buffer: one BDP */
}

static void test_config_errors(void **state)
{
	struct bsim_config c;
	struct bsim *sim = (struct bsim *)&c; /* must be reset to NULL on failure */
	char err[128];

	(void)state;
	small_link(&c);
	assert_int_equal(bsim_config_check(&c, err, sizeof(err)), 0);
	assert_string_equal(err, "");

	c.link_bps = 0;
	assert_int_equal(bsim_config_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "link_bps"));
	assert_int_equal(bsim_new(&c, &sim), -EINVAL);
	assert_null(sim);

	small_link(&c);
	c.loss_rate = 1.0;
	assert_int_equal(bsim_config_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "loss_rate"));

	small_link(&c);
	c.loss_rate = NAN;
	assert_int_equal(bsim_config_check(&c, err, sizeof(err)), -EINVAL);

	small_link(&c);
	c.buffer_bytes = 1499;
	assert_int_equal(bsim_config_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "buffer_bytes"));

	small_link(&c);
	c.flows = BSIM_MAX_FLOWS + 1;
	assert_int_equal(bsim_config_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "flows"));

	small_link(&c);
	c.rate_change_at_us = 1000;
	assert_int_equal(bsim_config_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "rate_change_bps"));
}

/*
 * A window of 50 packets over a 16.67-packet BDP keeps the link busy and 33.3
 * packets queued: every RTT is 50 * 1.2 ms = 60 ms (Little's law), the queue
 * 50 * 1500 - 25000 = 50000 B (+- the packet in service), throughput the link rate.
 */
static void test_constant_window_queueing_delay(void **state)
{
	struct bsim_config c;
	struct bsim_eval ev;

	(void)state;
	small_link(&c);
	c.cwnd_clamp = 50;
	assert_int_equal(bsim_eval_clamp(&c, 0, 2000000, 5000000, &ev), 0);
	assert_int_equal(ev.cwnd_clamp, 50);
	assert_int_equal(ev.rtt_p50_us, 60000);
	assert_int_equal(ev.rtt_p95_us, 60000);
	assert_true(fabs(ev.min_rtt_us - 21200.0) < 1e-9);
	assert_true(fabs(ev.rtt_ratio - 60000.0 / 21200.0) < 1e-9);
	assert_in_range(ev.queue_bytes_max, 49500, 51000);
	/* 5 s at 10 Mbit/s is 4166.7 packets: the interval cuts at most one. */
	assert_in_range((uint64_t)ev.throughput_bps, 10000000 - 1500 * 8 / 5, 10000000);
	assert_true(ev.shortfall <= 1500.0 * 8 / (1e7 * 5) + 1e-12);
	assert_int_equal(ev.lost_pkts, 0);
	assert_true(fabs(ev.capacity_bps - 1e7) < 1.0);
}

/* A clamp below the BDP leaves the link idle: throughput = clamp * mss / RTT, no queue. */
static void test_clamp_below_bdp_shortfall(void **state)
{
	struct bsim_config c;
	struct bsim_eval ev;
	double expect;

	(void)state;
	small_link(&c);
	c.cwnd_clamp = 10;
	assert_int_equal(bsim_eval_clamp(&c, 0, 1000000, 4000000, &ev), 0);
	assert_int_equal(ev.rtt_p95_us, 21200); /* no packet ever waits */
	expect = 10 * 1500 * 8 / 0.0212;        /* 5.66 Mbit/s */
	assert_true(fabs(ev.throughput_bps - expect) / expect < 0.01);
	assert_true(fabs(ev.shortfall - (1 - expect / 1e7)) < 0.01);
}

/*
 * Constant overload: a fixed window of 60 packets against 16.67 in flight on the
 * path and a 20-packet buffer keeps the buffer full, so every accepted packet waits
 * behind 18-19 packets plus its own serialization: RTT in
 * (20 + 21.6 + 1.2, 20 + 22.8 + 1.2] ms; the excess is dropped at the tail.
 */
static void test_constant_overload(void **state)
{
	struct bsim_config c;
	struct bsim_link_stats l0, ln;
	struct bsim_flow_stats fl;
	struct bsim *sim;
	uint32_t p5, p95;

	(void)state;
	small_link(&c);
	c.buffer_bytes = 20 * 1500;
	c.cc = BSIM_CC_EXTERNAL;
	c.init_cwnd = 60;
	c.record_rtt = 1;
	assert_int_equal(bsim_new(&c, &sim), 0);
	bsim_run_until(sim, 1000000);
	bsim_rtt_clear(sim);
	bsim_link_stats(sim, &l0);
	bsim_run_until(sim, 5000000);
	assert_int_equal(bsim_rtt_percentile(sim, 0.05, &p5), 0);
	assert_int_equal(bsim_rtt_percentile(sim, 0.95, &p95), 0);
	assert_in_range(p5, 42801, 44000);
	assert_in_range(p95, 42801, 44000);
	bsim_link_stats(sim, &ln);
	bsim_flow_stats(sim, 0, &fl);
	assert_true(fl.tail_drops > 0);
	assert_int_equal(fl.lost_pkts, fl.tail_drops);
	assert_int_equal(ln.random_losses, 0);
	assert_in_range(ln.queue_bytes, 18 * 1500, 20 * 1500);
	/* The link never idles: 4 s at 10 Mbit/s, within one packet. */
	assert_in_range(ln.flow_delivered_bytes - l0.flow_delivered_bytes, 5000000 - 1500, 5000000 + 1500);
	bsim_free(sim);
}

/* Unresponsive traffic at twice the link rate: the link delivers its rate of it,
 * the buffer stays full and the other half is dropped at the tail. */
static void test_cross_traffic_overload(void **state)
{
	struct bsim_config c;
	struct bsim_link_stats l0, ln;
	struct bsim_flow_stats fl0, fl;
	struct bsim *sim;
	uint64_t sent, dropped, delivered;

	(void)state;
	small_link(&c);
	c.buffer_bytes = 20 * 1500;
	c.cross_bps = 20000000;
	c.cc = BSIM_CC_EXTERNAL;
	c.init_cwnd = 1;
	assert_int_equal(bsim_new(&c, &sim), 0);
	bsim_run_until(sim, 1000000);
	bsim_link_stats(sim, &l0);
	bsim_flow_stats(sim, 0, &fl0);
	bsim_run_until(sim, 5000000);
	bsim_link_stats(sim, &ln);
	sent = ln.cross_sent_pkts - l0.cross_sent_pkts;
	bsim_flow_stats(sim, 0, &fl);
	dropped = ln.tail_drops - l0.tail_drops - (fl.tail_drops - fl0.tail_drops);
	delivered = ln.cross_delivered_bytes - l0.cross_delivered_bytes;
	assert_in_range(sent, 6666, 6667);                /* 4 s at 20 Mbit/s */
	assert_in_range(delivered, 5000000 - 3000, 5000000); /* 4 s at 10 Mbit/s */
	assert_in_range(dropped, 3333 - 3, 3333 + 3);
	assert_in_range(ln.queue_bytes, 19 * 1500, 20 * 1500);
	bsim_free(sim);
}

/* The clamp bounds cwnd and inflight at every tick, sets ssthresh, and can be
 * lowered and removed mid-run. */
static void test_clamp_respected(void **state)
{
	struct bsim_config c;
	struct bsim_flow_stats fl;
	struct bsim *sim;

	(void)state;
	small_link(&c);
	c.cc = BSIM_CC_CUBIC;
	c.cwnd_clamp = 30;
	assert_int_equal(bsim_new(&c, &sim), 0);
	bsim_flow_stats(sim, 0, &fl);
	assert_int_equal(fl.ssthresh, 30);
	assert_int_equal(fl.cwnd_clamp, 30);
	for (int t = 0; t < 20000; t++) {
		bsim_tick(sim);
		bsim_flow_stats(sim, 0, &fl);
		assert_in_range(fl.cwnd, 1, 30);
		assert_in_range(fl.inflight, 0, 30);
	}
	assert_int_equal(fl.cwnd, 30); /* reached: no loss with a 1 MB buffer */

	assert_int_equal(bsim_set_cwnd_clamp(sim, 0, 10), 0);
	bsim_flow_stats(sim, 0, &fl);
	assert_int_equal(fl.cwnd, 10);
	assert_int_equal(fl.ssthresh, 10);
	bsim_run_until(sim, bsim_now_us(sim) + 500000);
	bsim_flow_stats(sim, 0, &fl);
	assert_int_equal(fl.cwnd, 10);
	assert_in_range(fl.inflight, 0, 10);

	assert_int_equal(bsim_set_cwnd_clamp(sim, 0, 0), 0);
	bsim_run_until(sim, bsim_now_us(sim) + 3000000);
	bsim_flow_stats(sim, 0, &fl);
	assert_true(fl.cwnd > 30);
	assert_int_equal(fl.cwnd_clamp, 0);

	assert_int_equal(bsim_set_cwnd_clamp(sim, 1, 10), -EINVAL); /* one flow only */
	bsim_free(sim);
}

/* Reno into a 10-packet buffer: losses are all tail drops, the queue never holds
 * more than the buffer, and each loss round halves the window once. */
static void test_droptail_losses(void **state)
{
	struct bsim_config c;
	struct bsim_flow_stats fl;
	struct bsim_link_stats ln;
	struct bsim *sim;
	uint32_t max_cwnd = 0;

	(void)state;
	small_link(&c);
	c.buffer_bytes = 10 * 1500;
	assert_int_equal(bsim_new(&c, &sim), 0);
	while (bsim_now_us(sim) < 10000000) {
		bsim_tick(sim);
		bsim_link_stats(sim, &ln);
		assert_in_range(ln.queue_bytes, 0, 10 * 1500);
		bsim_flow_stats(sim, 0, &fl);
		if (fl.cwnd > max_cwnd)
			max_cwnd = fl.cwnd;
	}
	assert_true(fl.lost_pkts > 0);
	assert_int_equal(fl.lost_pkts, fl.tail_drops);
	assert_int_equal(ln.random_losses, 0);
	assert_int_equal(fl.retrans_pkts, fl.lost_pkts); /* every loss is sent again (none pending at a quiet point) */
	assert_true(fl.ssthresh < UINT32_MAX);
	/* Steady state Reno saws between (BDP + buffer) / 2 and BDP + buffer + 1 packets. */
	assert_true(max_cwnd <= 16.67 + 10 + 2 + 60); /* slow-start overshoot bounded by one RTT of doubling */
	assert_in_range(fl.cwnd, 2, 29);
	/* The link stays mostly busy: Reno with a buffer of 0.6 BDP. */
	assert_true(ln.flow_delivered_bytes > 0.8 * 1.25e6 * 10);
	bsim_free(sim);
}

/* Random loss: the fraction of lost packets matches loss_rate within 5 sigma, no
 * queue is involved (a clamp below the BDP). */
static void test_random_loss_rate(void **state)
{
	struct bsim_config c;
	struct bsim_link_stats ln;
	struct bsim_flow_stats fl;
	struct bsim *sim;
	double n, p = 0.01, sigma;

	(void)state;
	small_link(&c);
	c.cc = BSIM_CC_EXTERNAL;
	c.init_cwnd = 12;
	c.loss_rate = p;
	c.seed = 42;
	assert_int_equal(bsim_new(&c, &sim), 0);
	bsim_run_until(sim, 60000000);
	bsim_link_stats(sim, &ln);
	bsim_flow_stats(sim, 0, &fl);
	assert_int_equal(ln.tail_drops, 0);
	assert_int_equal(fl.cwnd, 12); /* external: losses do not move cwnd */
	n = (double)fl.sent_pkts;
	sigma = sqrt(n * p * (1 - p));
	assert_true(fabs((double)ln.random_losses - n * p) < 5 * sigma);
	assert_true(ln.random_losses > 0);
	bsim_free(sim);
}

static void run_and_snapshot(uint64_t seed, struct bsim_flow_stats *fl, struct bsim_link_stats *ln,
			     uint32_t *p95)
{
	struct bsim_config c;
	struct bsim *sim;

	bsim_config_default(&c);
	c.flows = 3;
	c.flow_start_gap_us = 100000;
	c.loss_rate = 0.002;
	c.cross_bps = 10000000;
	c.rate_change_at_us = 1500000;
	c.rate_change_bps = 50000000;
	c.seed = seed;
	c.record_rtt = 1;
	assert_int_equal(bsim_new(&c, &sim), 0);
	bsim_run_until(sim, 3000000);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(bsim_flow_stats(sim, i, &fl[i]), 0);
	bsim_link_stats(sim, ln);
	assert_int_equal(bsim_rtt_percentile(sim, 0.95, p95), 0);
	bsim_free(sim);
}

static void test_determinism(void **state)
{
	struct bsim_flow_stats a[3], b[3], d[3];
	struct bsim_link_stats la, lb, ld;
	uint32_t pa, pb, pd;

	(void)state;
	run_and_snapshot(7, a, &la, &pa);
	run_and_snapshot(7, b, &lb, &pb);
	assert_memory_equal(a, b, sizeof(a));
	assert_memory_equal(&la, &lb, sizeof(la));
	assert_int_equal(pa, pb);
	run_and_snapshot(8, d, &ld, &pd); /* another loss stream */
	assert_true(memcmp(a, d, sizeof(a)) != 0);
	/* All three flows started and moved data; the rate change shows in the link. */
	for (int i = 0; i < 3; i++)
		assert_true(a[i].delivered_bytes > 0);
	assert_int_equal(la.link_bps, 50000000);
}

/* Halving the link rate halves what a saturating flow delivers. */
static void test_rate_change(void **state)
{
	struct bsim_config c;
	struct bsim_link_stats l0, l1, l2;
	struct bsim *sim;
	double before, after;

	(void)state;
	small_link(&c);
	c.cwnd_clamp = 60; /* well above both BDPs, no loss with a 1 MB buffer */
	c.rate_change_at_us = 3000000;
	c.rate_change_bps = 5000000;
	assert_int_equal(bsim_new(&c, &sim), 0);
	bsim_run_until(sim, 1000000);
	bsim_link_stats(sim, &l0);
	bsim_run_until(sim, 3000000);
	bsim_link_stats(sim, &l1);
	bsim_run_until(sim, 6000000);
	bsim_run_until(sim, 8000000);
	bsim_link_stats(sim, &l2);
	before = (double)(l1.flow_delivered_bytes - l0.flow_delivered_bytes) * 8 / 2.0;
	assert_true(fabs(before - 1e7) / 1e7 < 0.01);
	bsim_link_stats(sim, &l1);
	bsim_run_until(sim, 10000000);
	bsim_link_stats(sim, &l2);
	after = (double)(l2.flow_delivered_bytes - l1.flow_delivered_bytes) * 8 / 2.0;
	assert_true(fabs(after - 5e6) / 5e6 < 0.01);
	assert_int_equal(l2.link_bps, 5000000);
	bsim_free(sim);
}

/* A trace's capacity as a schedule: a trace of 1 packet per ms for 500 ms, then 3 per ms
 * for 500 ms gives 12 and 36 Mbit/s steps (and a step without opportunities one packet
 * per step); a saturating flow over it delivers each step's rate, looping. */
static void test_rate_schedule_from_trace(void **state)
{
	char text[16384];
	size_t len = 0;
	struct trace t = { 0 };
	struct reflex_err err;
	uint64_t rates[3];
	struct bsim_config c;
	struct bsim_link_stats l0, l1;
	struct bsim *sim;
	char why[160];

	(void)state;
	for (int ms = 1; ms <= 1000; ms++)
		for (int k = 0; k < (ms <= 500 ? 1 : 3); k++)
			len += (size_t)snprintf(text + len, sizeof(text) - len, "%d\n", ms);
	assert_int_equal(trace_parse("t", text, len, &t, &err), 0);
	assert_int_equal(bsim_schedule_from_trace(&t, 1, 500, 2, rates), 0);
	assert_int_equal(rates[0], 12000000);
	assert_int_equal(rates[1], 36000000);
	trace_free(&t);
	assert_int_equal(trace_parse("t", "1000\n", 5, &t, &err), 0);
	assert_int_equal(bsim_schedule_from_trace(&t, 0, 100, 1, rates), 0);
	assert_int_equal(rates[0], 120000); /* no opportunity: one packet per 100 ms */
	assert_int_equal(bsim_schedule_from_trace(&t, 0, 0, 1, rates), -EINVAL);
	trace_free(&t);

	small_link(&c);
	c.rate_schedule_bps = rates;
	c.rate_schedule_len = 2;
	c.rate_schedule_step_us = 0;
	assert_int_equal(bsim_config_check(&c, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "rate_schedule_step_us"));
	c.rate_schedule_step_us = 2000000;
	c.rate_change_at_us = 1000;
	c.rate_change_bps = 1000000;
	assert_int_equal(bsim_config_check(&c, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "exclude"));
	c.rate_change_at_us = 0;
	rates[0] = 12000000;
	rates[1] = 0;
	assert_int_equal(bsim_config_check(&c, why, sizeof(why)), -EINVAL);
	rates[1] = 36000000;
	/* Above the 36 Mbit/s BDP (60 packets at 20 ms), a small queue: no loss. */
	c.cwnd_clamp = 100;
	assert_int_equal(bsim_new(&c, &sim), 0);
	/* Steps of 2 s: [1 s, 2 s) is in the first, 12 Mbit/s; [6.5 s, 7.5 s) in the
	 * second loop's second, 36 Mbit/s. */
	bsim_run_until(sim, 1000000);
	bsim_link_stats(sim, &l0);
	bsim_run_until(sim, 2000000);
	bsim_link_stats(sim, &l1);
	assert_true(fabs((double)(l1.flow_delivered_bytes - l0.flow_delivered_bytes) * 8 - 12e6) / 12e6 < 0.02);
	bsim_run_until(sim, 6500000);
	bsim_link_stats(sim, &l0);
	assert_int_equal(l0.link_bps, 36000000);
	bsim_run_until(sim, 7500000);
	bsim_link_stats(sim, &l1);
	assert_true(fabs((double)(l1.flow_delivered_bytes - l0.flow_delivered_bytes) * 8 - 36e6) / 36e6 < 0.02);
	bsim_free(sim);
}

/* Packets queued while a schedule's rate is low leave at the new rate once it rises
 * (a trace's outage must not hold the link idle afterwards): 200 packets queued at
 * 1 Mbit/s (2.4 s of it) drain within ~25 ms of a switch to 100 Mbit/s. */
static void test_schedule_queue_follows_rate(void **state)
{
	static const uint64_t rates[2] = { 1000000, 100000000 };
	struct bsim_flow_stats f0, f1;
	struct bsim_config c;
	struct bsim *sim;

	(void)state;
	small_link(&c);
	c.rate_schedule_bps = rates;
	c.rate_schedule_len = 2;
	c.rate_schedule_step_us = 1000000;
	c.cc = BSIM_CC_EXTERNAL;
	assert_int_equal(bsim_new(&c, &sim), 0);
	assert_int_equal(bsim_set_cwnd(sim, 0, 200), 0);
	bsim_run_until(sim, 1000000);
	bsim_flow_stats(sim, 0, &f0);
	bsim_run_until(sim, 1100000);
	bsim_flow_stats(sim, 0, &f1);
	/* By 1.1 s the backlog (and each later window) has crossed the link and been
	 * acked 20 ms later; at the old rate only ~8 packets would have. */
	if (f1.delivered_pkts - f0.delivered_pkts < 190)
		fail_msg("delivered %llu packets in the 100 ms after the rise, want >= 190",
			 (unsigned long long)(f1.delivered_pkts - f0.delivered_pkts));
	assert_true(f1.last_rtt_us < 100000);
	bsim_free(sim);
}

/* A directly controlled window stays where it is set, in packets in flight too. */
static void test_external_cwnd(void **state)
{
	struct bsim_config c;
	struct bsim_flow_stats fl;
	struct bsim *sim;

	(void)state;
	small_link(&c);
	c.cc = BSIM_CC_EXTERNAL;
	assert_int_equal(bsim_new(&c, &sim), 0);
	bsim_run_until(sim, 500000);
	bsim_flow_stats(sim, 0, &fl);
	assert_int_equal(fl.cwnd, BSIM_DEFAULT_INIT_CWND);
	assert_int_equal(bsim_set_cwnd(sim, 0, 40), 0);
	bsim_run_until(sim, 1500000);
	bsim_flow_stats(sim, 0, &fl);
	assert_int_equal(fl.cwnd, 40);
	assert_int_equal(fl.inflight, 40);
	/* 40 packets over 16.67 BDP: RTT = 40 * 1.2 ms. */
	assert_int_equal(fl.last_rtt_us, 48000);
	assert_int_equal(bsim_set_cwnd(sim, 0, 0), -EINVAL);
	bsim_free(sim);
}

static void test_rtt_percentile_errors(void **state)
{
	struct bsim_config c;
	struct bsim *sim;
	uint32_t v = 0;

	(void)state;
	small_link(&c);
	assert_int_equal(bsim_new(&c, &sim), 0);
	bsim_run_until(sim, 100000);
	assert_int_equal(bsim_rtt_percentile(sim, 0.5, &v), -EINVAL); /* recording off */
	bsim_free(sim);

	c.record_rtt = 1;
	assert_int_equal(bsim_new(&c, &sim), 0);
	assert_int_equal(bsim_rtt_percentile(sim, 0.5, &v), -ENODATA);
	bsim_run_until(sim, 100000);
	assert_true(bsim_rtt_count(sim) > 0);
	assert_int_equal(bsim_rtt_percentile(sim, 1.5, &v), -EINVAL);
	assert_int_equal(bsim_rtt_percentile(sim, 0.0, &v), 0);
	assert_int_equal(v, 21200); /* the first packets see an empty queue */
	bsim_rtt_clear(sim);
	assert_int_equal(bsim_rtt_count(sim), 0);
	bsim_free(sim);
}

/* The oracle's question over the cwnd candidates: below the BDP costs throughput,
 * above it costs delay in proportion (RTT = clamp * mss * 8 / rate). */
static void test_eval_clamp_candidates(void **state)
{
	struct bsim_config c;
	struct bsim_eval half, two, none;

	(void)state;
	bsim_config_default(&c);
	c.buffer_bytes = 3 * 250000;
	assert_int_equal(bsim_eval_clamp(&c, 0.5, 2000000, 5000000, &half), 0);
	assert_int_equal(bsim_eval_clamp(&c, 2.0, 2000000, 5000000, &two), 0);
	assert_int_equal(bsim_eval_clamp(&c, 0, 2000000, 5000000, &none), 0);
	assert_int_equal(half.cwnd_clamp, 84);
	assert_true(fabs(half.shortfall - (1 - 84 * 12000 / 0.02012 / 1e8)) < 0.01);
	assert_true(half.rtt_ratio < 1.02);
	assert_int_equal(two.cwnd_clamp, 336);
	assert_true(two.shortfall < 0.001);
	assert_in_range(two.rtt_p95_us, 40320 - 120, 40320); /* 336 * 120 us */
	assert_int_equal(none.cwnd_clamp, 0);
	assert_true(none.rtt_ratio > two.rtt_ratio); /* CUBIC fills the 3-BDP buffer */
	assert_int_equal(bsim_eval_clamp(&c, 1.0, 0, 0, &none), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bdp_math),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_constant_window_queueing_delay),
		cmocka_unit_test(test_clamp_below_bdp_shortfall),
		cmocka_unit_test(test_constant_overload),
		cmocka_unit_test(test_cross_traffic_overload),
		cmocka_unit_test(test_clamp_respected),
		cmocka_unit_test(test_droptail_losses),
		cmocka_unit_test(test_random_loss_rate),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_rate_change),
		cmocka_unit_test(test_rate_schedule_from_trace),
		cmocka_unit_test(test_schedule_queue_follows_rate),
		cmocka_unit_test(test_external_cwnd),
		cmocka_unit_test(test_rtt_percentile_errors),
		cmocka_unit_test(test_eval_clamp_candidates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
