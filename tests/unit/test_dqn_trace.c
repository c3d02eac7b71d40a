// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* The DQN's trace-driven links: a scenario from a trace segment, the episode mix,
 * repeatable training by seed, and the held-out trace evaluation. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dqn/train_internal.h"

/* A 10 s trace: 1 opportunity per ms (12 Mbit/s) for 5 s, then 3 per ms (36 Mbit/s). */
static void write_step_trace(char *path, size_t len)
{
	FILE *f;
	int fd;

	snprintf(path, len, "/tmp/test_dqn_trace.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	for (int ms = 1; ms <= 10000; ms++)
		for (int k = 0; k < (ms <= 5000 ? 1 : 3); k++)
			fprintf(f, "%d\n", ms);
	assert_int_equal(fclose(f), 0);
}

static void load_one(const char *path, struct dqn_trace_set *set)
{
	const char *paths[] = { path };
	struct reflex_err err = { 0 };

	if (dqn_trace_set_load(set, paths, 1, &err))
		fail_msg("loading %s: %s", path, err.msg);
	assert_int_equal(set->n, 1);
}

/* A segment across the trace's step: the schedule is each 100 ms's capacity, the
 * link rate their mean, the RTT and buffer within the documented spread. */
static void test_scenario_from_segment(void **state)
{
	struct dqn_scenario *sc = calloc(1, sizeof(*sc));
	struct dqn_trace_set set;
	struct prng rng;
	char path[64], why[160];

	(void)state;
	assert_non_null(sc);
	write_step_trace(path, sizeof(path));
	load_one(path, &set);
	prng_seed(&rng, 5);
	/* From 4501 ms (a step counts from <= t < to, and ms 5000 is the last at one
	 * per ms): 5 steps at 12 Mbit/s, then 5 at 36. */
	dqn_trace_scenario(&set.traces[0], 4501, 1000, &rng, sc);
	assert_true(sc->trace);
	assert_int_equal(sc->cfg.rate_schedule_len, 10);
	assert_int_equal(sc->cfg.rate_schedule_step_us, DQN_TRACE_STEP_MS * 1000);
	assert_ptr_equal(sc->cfg.rate_schedule_bps, sc->schedule);
	for (int i = 0; i < 10; i++)
		assert_int_equal(sc->schedule[i], i < 5 ? 12000000 : 36000000);
	assert_int_equal(sc->cfg.link_bps, 24000000);
	assert_in_range(sc->cfg.base_rtt_us, 10000, 150000);
	assert_in_range(sc->cfg.buffer_bytes, 100000, 2000000);
	assert_int_equal(bsim_config_check(&sc->cfg, why, sizeof(why)), 0);
	dqn_trace_set_free(&set);
	unlink(path);
	free(sc);
}

/* share 0 never draws a trace, 1 always, 0.5 about half; the same seed draws the
 * same segments, with the source's reward weight. */
static void test_source_mix_by_seed(void **state)
{
	struct dqn_scenario *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct dqn_scenario_source src = { .share = 0, .segment_ms = 2000, .delay_weight = 0.3 };
	struct dqn_trace_set set;
	struct prng ra, rb;
	int traces = 0;
	char path[64];

	(void)state;
	assert_true(a && b);
	write_step_trace(path, sizeof(path));
	load_one(path, &set);
	src.set = &set;
	prng_seed(&ra, 1);
	for (int i = 0; i < 50; i++) {
		dqn_source_sample(&src, &ra, 200, a);
		assert_false(a->trace);
		assert_null(a->cfg.rate_schedule_bps);
	}
	src.share = 1;
	for (int i = 0; i < 50; i++) {
		dqn_source_sample(&src, &ra, 200, a);
		assert_true(a->trace);
		assert_true(a->trace_delay_weight == 0.3);
		assert_int_equal(a->cfg.rate_schedule_len, 20);
	}
	src.share = 0.5;
	prng_seed(&ra, 9);
	prng_seed(&rb, 9);
	for (int i = 0; i < 400; i++) {
		dqn_source_sample(&src, &ra, 200, a);
		dqn_source_sample(&src, &rb, 200, b);
		assert_int_equal(a->trace, b->trace);
		assert_int_equal(a->cfg.base_rtt_us, b->cfg.base_rtt_us);
		assert_int_equal(a->cfg.seed, b->cfg.seed);
		if (a->trace)
			assert_memory_equal(a->schedule, b->schedule, 20 * sizeof(a->schedule[0]));
		traces += a->trace;
	}
	assert_in_range(traces, 150, 250);
	dqn_trace_set_free(&set);
	unlink(path);
	free(a);
	free(b);
}

static struct dqn_trainer *train_on(const struct dqn_train_opts *o, const struct dqn_trace_set *set)
{
	struct dqn_trainer *tr = NULL;
	struct reflex_err err = { 0 };

	if (dqn_trainer_new(o, &tr, &err))
		fail_msg("trainer: %s", err.msg);
	dqn_trainer_use_traces(tr, set);
	if (dqn_trainer_run(tr, o->episodes, &err))
		fail_msg("training: %s", err.msg);
	return tr;
}

static bool same_net(const struct dqn_trainer *a, const struct dqn_trainer *b)
{
	const struct mlp *x = dqn_trainer_net(a), *y = dqn_trainer_net(b);

	return x->n_params == y->n_params && !memcmp(x->params, y->params, x->n_params * sizeof(float));
}

/* Training with trace episodes is repeatable from the seed, and the traces change it. */
static void test_training_repeatable(void **state)
{
	struct dqn_trainer *a, *b, *c, *d;
	struct dqn_train_opts o;
	struct dqn_trace_set set, none = { 0 };
	char path[64];

	(void)state;
	write_step_trace(path, sizeof(path));
	load_one(path, &set);
	dqn_train_opts_default(&o);
	o.seed = 3;
	o.episodes = 4;
	o.steps_per_episode = 25;
	o.hidden = 16;
	o.batch = 8;
	o.replay_capacity = 64;
	o.replay_warmup = 20;
	o.validate_every = 2;
	o.validate_scenarios = 1;
	o.trace_share = 1;
	o.trace_segment_ms = 3000;
	a = train_on(&o, &set);
	b = train_on(&o, &set);
	assert_true(same_net(a, b));
	c = train_on(&o, &none);
	assert_false(same_net(a, c));
	o.seed = 4;
	d = train_on(&o, &set);
	assert_false(same_net(a, d));
	dqn_trainer_free(a);
	dqn_trainer_free(b);
	dqn_trainer_free(c);
	dqn_trainer_free(d);
	dqn_trace_set_free(&set);
	unlink(path);
}

/* On the step trace plain CUBIC fills the capacity and the 1 MB buffer; the
 * heuristic's clamp keeps the queue far shorter. Bad options and a missing file
 * are named. */
static void test_eval_traces(void **state)
{
	struct dqn_trace_eval_row rows[2];
	struct reflex_err err = { 0 };
	char path[64];
	const char *paths[1] = { path };
	struct dqn_trace_eval_opts o = {
		.trace_paths = paths, .n_trace_paths = 1, .segments = 3, .segment_ms = 8000,
		.base_rtt_us = 40000, .buffer_bytes = 1000000, .seed = 2,
	};

	(void)state;
	write_step_trace(path, sizeof(path));
	assert_int_equal(dqn_eval_traces(&o, rows, &err), 0);
	if (!(rows[1].utilization_median > 0.95 && rows[1].qdelay_p95_median_ms > 150))
		fail_msg("cubic: utilization %.3f, queueing p95 %.1f ms", rows[1].utilization_median,
			 rows[1].qdelay_p95_median_ms);
	if (!(rows[0].utilization_median > 0.8 &&
	      rows[0].qdelay_p95_median_ms < rows[1].qdelay_p95_median_ms / 2))
		fail_msg("heuristic: utilization %.3f, queueing p95 %.1f ms (cubic %.1f)", rows[0].utilization_median,
			 rows[0].qdelay_p95_median_ms, rows[1].qdelay_p95_median_ms);
	assert_true(rows[0].utilization_min <= rows[0].utilization_median);
	assert_true(rows[0].qdelay_p95_max_ms >= rows[0].qdelay_p95_median_ms);
	o.segments = 0;
	assert_int_equal(dqn_eval_traces(&o, rows, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "segments"));
	o.segments = 1;
	unlink(path);
	assert_true(dqn_eval_traces(&o, rows, &err) < 0);
	assert_non_null(strstr(err.msg, path));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scenario_from_segment),
		cmocka_unit_test(test_source_mix_by_seed),
		cmocka_unit_test(test_training_repeatable),
		cmocka_unit_test(test_eval_traces),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
