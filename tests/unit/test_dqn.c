// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* The DQN agent: MLP and Adam by hand, replay, schedule, features, training
 * determinism, checkpoints, the int8 export. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dqn/train.h"
#include "model/model.h"

static void assert_close(double got, double want, double tol)
{
	if (fabs(got - want) > tol)
		fail_msg("got %.9g, want %.9g (tolerance %g)", got, want, tol);
}

/* 2 -> 2 -> 2 by hand: h = relu([1 - 2, 0.5 + 1 - 1]) = [0, 0.5];
 * out = [0.5 + 1 * 0 + 2 * 0.5, 0.25 - 1 * 0 + 3 * 0.5] = [1.5, 1.75]. */
static void test_forward_by_hand(void **state)
{
	const float w1[] = { 1, -1, 0.5f, 0.5f }, b1[] = { 0, -1 };
	const float w2[] = { 1, 2, -1, 3 }, b2[] = { 0.5f, 0.25f };
	const float x[] = { 1, 2 };
	float hidden[2], out[2];
	struct mlp net;

	(void)state;
	assert_int_equal(mlp_init(&net, 2, 2, 2, NULL), 0);
	assert_int_equal(net.n_params, 4 + 2 + 4 + 2);
	memcpy(net.w1, w1, sizeof(w1));
	memcpy(net.b1, b1, sizeof(b1));
	memcpy(net.w2, w2, sizeof(w2));
	memcpy(net.b2, b2, sizeof(b2));
	mlp_forward(&net, x, hidden, out);
	assert_close(hidden[0], 0.0, 0);
	assert_close(hidden[1], 0.5, 1e-7);
	assert_close(out[0], 1.5, 1e-6);
	assert_close(out[1], 1.75, 1e-6);
	mlp_free(&net);
	assert_int_equal(mlp_init(&net, 0, 2, 2, NULL), -EINVAL);
}

/* mlp_backward against central differences of L = sum_o c_o * out_o. */
static void test_backward_matches_finite_differences(void **state)
{
	const float x[] = { 0.3f, 0.9f, 0.1f };
	const float c[] = { 0.7f, -1.3f };
	float hidden[8], out[2], *grad;
	struct prng rng;
	struct mlp net;

	(void)state;
	prng_seed(&rng, 5);
	assert_int_equal(mlp_init(&net, 3, 8, 2, &rng), 0);
	for (uint32_t h = 0; h < 8; h++)
		net.b1[h] = 0.1f; /* keep units away from the ReLU kink */
	grad = calloc(net.n_params, sizeof(float));
	assert_non_null(grad);
	mlp_forward(&net, x, hidden, out);
	mlp_backward(&net, x, hidden, c, grad);
	for (size_t k = 0; k < net.n_params; k++) {
		float keep = net.params[k], lp, lm, eps = 1e-2f;

		net.params[k] = keep + eps;
		mlp_forward(&net, x, hidden, out);
		lp = c[0] * out[0] + c[1] * out[1];
		net.params[k] = keep - eps;
		mlp_forward(&net, x, hidden, out);
		lm = c[0] * out[0] + c[1] * out[1];
		net.params[k] = keep;
		assert_close(grad[k], (lp - lm) / (2 * eps), 2e-3);
	}
	free(grad);
	mlp_free(&net);
}

/* Adam's first steps move each parameter by lr * sign(g) (bias correction makes
 * m_hat = g, v_hat = g^2), whatever |g| is. */
static void test_adam_known_gradient(void **state)
{
	float params[] = { 1.0f, -1.0f, 0.5f };
	const float grad[] = { 0.5f, -2.0f, 0.0f };
	struct adam opt;

	(void)state;
	assert_int_equal(adam_init(&opt, 3, 0.1f), 0);
	adam_step(&opt, params, grad);
	assert_close(params[0], 0.9, 1e-6);
	assert_close(params[1], -0.9, 1e-6);
	assert_close(params[2], 0.5, 0);
	adam_step(&opt, params, grad);
	assert_close(params[0], 0.8, 1e-6);
	assert_close(params[1], -0.8, 1e-6);
	assert_int_equal(opt.t, 2);
	adam_free(&opt);
}

static void test_replay_wraparound_and_sampling(void **state)
{
	struct dqn_replay rb;
	struct prng r1, r2;
	uint32_t a[64], b[64];

	(void)state;
	assert_int_equal(dqn_replay_init(&rb, 3, 2), 0);
	for (int i = 0; i < 5; i++) {
		float s[2] = { (float)i, (float)-i }, s2[2] = { (float)i + 0.5f, 0 };

		dqn_replay_push(&rb, s, (enum dqn_action)(i % DQN_ACTIONS), (float)i * 10, s2);
	}
	assert_int_equal(rb.len, 3);
	assert_int_equal(rb.next, 2);
	/* slots: 0 <- push 3, 1 <- push 4, 2 <- push 2 */
	assert_close(rb.state[0], 3, 0);
	assert_close(rb.state[1], -3, 0);
	assert_close(rb.state[2], 4, 0);
	assert_close(rb.state[4], 2, 0);
	assert_close(rb.reward[1], 40, 0);
	assert_int_equal(rb.action[2], 2);
	assert_close(rb.next_state[2], 4.5, 0);

	prng_seed(&r1, 9);
	prng_seed(&r2, 9);
	dqn_replay_sample(&rb, &r1, a, 64);
	dqn_replay_sample(&rb, &r2, b, 64);
	assert_memory_equal(a, b, sizeof(a));
	for (int i = 0; i < 64; i++)
		assert_in_range(a[i], 0, 2);
	dqn_replay_free(&rb);
	assert_int_equal(dqn_replay_init(&rb, 0, 2), -EINVAL);
}

static void test_epsilon_schedule(void **state)
{
	(void)state;
	assert_close(dqn_epsilon(1.0, 0.01, 0.995, 0), 1.0, 0);
	assert_close(dqn_epsilon(1.0, 0.01, 0.995, 1), 0.995, 1e-12);
	assert_close(dqn_epsilon(1.0, 0.01, 0.995, 100), 0.605770436, 1e-9); /* exp(100 ln 0.995) */
	assert_close(dqn_epsilon(1.0, 0.01, 0.995, 918), 0.01, 0.0001); /* ln(0.01)/ln(0.995) = 918.7 */
	assert_close(dqn_epsilon(1.0, 0.01, 0.995, 100000), 0.01, 0);
}

static void test_actions(void **state)
{
	(void)state;
	assert_int_equal(dqn_apply_action(DQN_INCREASE5, 100), 105);
	assert_int_equal(dqn_apply_action(DQN_INCREASE10, 100), 110);
	assert_int_equal(dqn_apply_action(DQN_MAINTAIN, 100), 100);
	assert_int_equal(dqn_apply_action(DQN_DECREASE5, 100), 95);
	assert_int_equal(dqn_apply_action(DQN_DECREASE10, 100), 90);
	assert_int_equal(dqn_apply_action(DQN_SLOW_START, 100), DQN_INIT_CWND);
	assert_int_equal(dqn_apply_action(DQN_INCREASE5, 3), 4);   /* at least one packet */
	assert_int_equal(dqn_apply_action(DQN_DECREASE5, 3), 2);
	assert_int_equal(dqn_apply_action(DQN_DECREASE10, 2), 2);  /* never below 2 */
	assert_int_equal(dqn_apply_action(DQN_INCREASE10, BSIM_MAX_CWND), BSIM_MAX_CWND);
	assert_string_equal(dqn_action_names[DQN_SLOW_START], "slow_start");
	assert_int_equal(dqn_decision_interval_us(20000), 20000);
	assert_int_equal(dqn_decision_interval_us(1000), DQN_MIN_INTERVAL_US);
	assert_int_equal(dqn_decision_interval_us(2e6), DQN_MAX_INTERVAL_US);
	assert_int_equal(dqn_decision_interval_us(NAN), DQN_MIN_INTERVAL_US);
}

/*
 * 100 ms at 100 Mbit/s (1.25 MB), 10 retransmissions on 990 deliveries (1 %),
 * srtt 30 ms on a 20 ms path (queueing 0.5), cwnd 200 x 1500 B on a
 * 100 Mbit/s x 20 ms = 250 kB BDP (1.2). First interval: delivery_ratio 1, so
 * reward = 1 - 0.5 * 0.5 - 10 * 0.01 = 0.65. A second interval at half the rate:
 * ratio 0.5, history [1, 0], loss trend -0.01.
 */
static void test_features_and_reward(void **state)
{
	struct dqn_interval iv = {
		.interval_us = 100000, .delivered_bytes = 1250000, .delivered_pkts = 990,
		.retrans_pkts = 10, .srtt_us = 30000, .rttvar_us = 2000, .min_rtt_us = 20000,
		.inflight_pkts = 180, .cwnd_pkts = 200, .mss = 1500, .buffer_occupancy = 0.25,
	};
	struct dqn_flow_state fs;
	double raw[DQN_FEATURES], reward;

	(void)state;
	dqn_flow_init(&fs);
	dqn_flow_observe(&fs, &iv, raw, &reward);
	assert_close(raw[0], 30000, 0);
	assert_close(raw[1], 2000, 0);
	assert_close(raw[2], 1e8, 1e-3);
	assert_close(raw[3], 0.01, 1e-12);
	assert_close(raw[4], 0.01, 1e-12);
	assert_close(raw[5], 180, 0);
	assert_close(raw[6], 300000, 0);
	assert_close(raw[7], 0.25, 0);
	assert_close(raw[8], 1.0, 0);
	assert_close(raw[9], 0, 0);
	assert_close(raw[10], 0, 0);
	assert_close(raw[11], 20000.0 / 30000, 1e-12);
	assert_close(raw[12], 1.2, 1e-12);
	assert_close(reward, 0.65, 1e-12);

	iv.delivered_bytes = 625000;
	iv.retrans_pkts = 0;
	iv.srtt_us = 20000;
	dqn_flow_observe(&fs, &iv, raw, &reward);
	assert_close(raw[3], 0, 0);
	assert_close(raw[4], -0.01, 1e-12);
	assert_close(raw[8], 0.5, 1e-12);
	assert_close(raw[9], 1.0, 0);
	assert_close(raw[10], 0, 0);
	assert_close(reward, 0.5, 1e-12);
	assert_string_equal(dqn_features[8].name, "delivery_ratio");
}

/* The float net's input is exactly the int8 input the `.reflex` MLP computes from
 * model_quantize() (model.h: a = (q * 127 + 16383) / 32767). */
static void test_normalize_matches_model_grid(void **state)
{
	struct model *m = model_create(MODEL_KIND_MLP, DQN_FEATURES, DQN_ACTIONS);
	struct reflex_err err;
	struct prng rng;

	(void)state;
	assert_non_null(m);
	for (unsigned i = 0; i < DQN_FEATURES; i++)
		assert_int_equal(model_set_feature(m, i, dqn_features[i].name, dqn_features[i].min,
						   dqn_features[i].max, &err), 0);
	prng_seed(&rng, 77);
	for (int k = 0; k < 2000; k++) {
		double raw[DQN_FEATURES];
		int16_t q[DQN_FEATURES];
		float x[DQN_FEATURES];

		for (unsigned i = 0; i < DQN_FEATURES; i++) {
			double span = dqn_features[i].max - dqn_features[i].min;

			raw[i] = dqn_features[i].min + span * (1.2 * prng_uniform(&rng) - 0.1);
		}
		model_quantize(m, raw, NULL, q);
		dqn_normalize(raw, DQN_FEATURES, x);
		for (unsigned i = 0; i < DQN_FEATURES; i++)
			assert_close(x[i] * 127.0f, (double)((q[i] * 127 + 16383) / 32767), 1e-4);
	}
	model_free(m);
}

static void small_opts(struct dqn_train_opts *o)
{
	dqn_train_opts_default(o);
	o->seed = 11;
	o->episodes = 4;
	o->steps_per_episode = 25;
	o->hidden = 16;
	o->batch = 8;
	o->replay_capacity = 64; /* wraps within the run */
	o->replay_warmup = 20;
	o->target_sync = 10;
	o->validate_every = 2;
	o->validate_scenarios = 1;
	o->eval_scenarios = 2;
	o->eval_steps = 20;
}

static struct dqn_trainer *train_small(const struct dqn_train_opts *o, uint32_t episodes)
{
	struct dqn_trainer *tr = NULL;
	struct reflex_err err = { 0 };

	if (dqn_trainer_new(o, &tr, &err) || dqn_trainer_run(tr, episodes, &err))
		fail_msg("training failed: %s", err.msg);
	return tr;
}

static void assert_same_net(const struct mlp *a, const struct mlp *b)
{
	assert_int_equal(a->n_params, b->n_params);
	assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
}

static void test_training_deterministic(void **state)
{
	struct dqn_train_opts o;
	struct dqn_trainer *a, *b, *c;
	struct dqn_report ra, rb;

	(void)state;
	small_opts(&o);
	a = train_small(&o, 4);
	b = train_small(&o, 4);
	assert_same_net(dqn_trainer_net(a), dqn_trainer_net(b));
	assert_same_net(dqn_trainer_policy(a), dqn_trainer_policy(b));
	dqn_trainer_report(a, &ra);
	dqn_trainer_report(b, &rb);
	assert_int_equal(ra.decisions, 100);
	assert_int_equal(ra.updates, 100 - 20 + 1);
	assert_int_equal(ra.episodes, 4);
	assert_true(ra.train_reward == rb.train_reward);
	assert_true(ra.best_episode == 2 || ra.best_episode == 4);
	o.seed = 12;
	c = train_small(&o, 4);
	assert_true(memcmp(dqn_trainer_net(a)->params, dqn_trainer_net(c)->params,
			   dqn_trainer_net(a)->n_params * sizeof(float)) != 0);
	dqn_trainer_free(a);
	dqn_trainer_free(b);
	dqn_trainer_free(c);
}

struct tmpdir {
	char dir[64];
	char ck[128];
	char model[128];
};

static void tmpdir_make(struct tmpdir *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/test_dqn.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->ck, sizeof(t->ck), "%s/dqn.ckpt", t->dir);
	snprintf(t->model, sizeof(t->model), "%s/dqn.reflex", t->dir);
}

static void tmpdir_remove(struct tmpdir *t)
{
	unlink(t->ck);
	unlink(t->model);
	assert_int_equal(rmdir(t->dir), 0); /* nothing else (no temp file) left behind */
}

/* Two episodes, checkpoint, load, two more == four straight: bit for bit. */
static void test_checkpoint_resume_equivalence(void **state)
{
	struct dqn_train_opts o;
	struct dqn_trainer *straight, *half, *resumed = NULL;
	struct dqn_report r1, r2;
	struct tmpdir t;
	struct reflex_err err = { 0 };

	(void)state;
	tmpdir_make(&t);
	small_opts(&o);
	straight = train_small(&o, 4);
	half = train_small(&o, 2);
	assert_int_equal(dqn_checkpoint_save(half, t.ck, &err), 0);
	assert_int_equal(dqn_checkpoint_load(t.ck, &o, &resumed, &err), 0);
	assert_same_net(dqn_trainer_net(half), dqn_trainer_net(resumed));
	assert_int_equal(dqn_trainer_run(resumed, 4, &err), 0);
	assert_same_net(dqn_trainer_net(straight), dqn_trainer_net(resumed));
	assert_same_net(dqn_trainer_policy(straight), dqn_trainer_policy(resumed));
	dqn_trainer_report(straight, &r1);
	dqn_trainer_report(resumed, &r2);
	assert_int_equal(r1.decisions, r2.decisions);
	assert_int_equal(r1.updates, r2.updates);
	assert_int_equal(r1.best_episode, r2.best_episode);
	assert_true(r1.train_reward == r2.train_reward);
	dqn_trainer_free(straight);
	dqn_trainer_free(half);
	dqn_trainer_free(resumed);
	tmpdir_remove(&t);
}

static uint8_t *read_all(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static void expect_load_error(const uint8_t *buf, size_t len, const char *needle)
{
	struct dqn_trainer *tr = (struct dqn_trainer *)buf; /* must come back NULL */
	struct reflex_err err = { 0 };

	assert_int_equal(dqn_checkpoint_load_buffer(buf, len, NULL, &tr, &err), -EINVAL);
	assert_null(tr);
	if (!strstr(err.msg, needle))
		fail_msg("error \"%s\" does not mention \"%s\"", err.msg, needle);
}

static void test_checkpoint_corrupt_rejected(void **state)
{
	struct dqn_train_opts o;
	struct dqn_trainer *tr, *back = NULL;
	struct tmpdir t;
	struct reflex_err err = { 0 };
	uint8_t *buf, *bad;
	size_t len;

	(void)state;
	tmpdir_make(&t);
	small_opts(&o);
	tr = train_small(&o, 2);
	assert_int_equal(dqn_checkpoint_save(tr, t.ck, &err), 0);
	buf = read_all(t.ck, &len);
	assert_int_equal(dqn_checkpoint_load_buffer(buf, len, NULL, &back, &err), 0);
	assert_same_net(dqn_trainer_net(tr), dqn_trainer_net(back));
	dqn_trainer_free(back);

	bad = malloc(len);
	assert_non_null(bad);
	memcpy(bad, buf, len);
	bad[len / 2] ^= 0x40;
	expect_load_error(bad, len, "CRC mismatch");
	expect_load_error(buf, len - 1, "CRC mismatch");
	expect_load_error(buf, 8, "too short");
	memcpy(bad, buf, len);
	bad[0] = 'X';
	expect_load_error(bad, len, "bad magic");
	memcpy(bad, buf, len);
	bad[4] = 99;
	expect_load_error(bad, len, "version 99");
	free(bad);
	free(buf);

	assert_int_equal(dqn_checkpoint_load("/nonexistent/dqn.ckpt", NULL, &back, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent/dqn.ckpt"));
	dqn_trainer_free(tr);
	tmpdir_remove(&t);
}

static void test_bad_options(void **state)
{
	struct dqn_train_opts o;
	struct dqn_trainer *tr = NULL;
	struct reflex_err err = { 0 };

	(void)state;
	small_opts(&o);
	o.gamma = 1.0f;
	assert_int_equal(dqn_trainer_new(&o, &tr, &err), -EINVAL);
	assert_null(tr);
	assert_non_null(strstr(err.msg, "gamma"));
	small_opts(&o);
	o.replay_warmup = o.replay_capacity + 1;
	assert_int_equal(dqn_trainer_new(&o, &tr, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "replay_warmup"));
	small_opts(&o);
	o.eps_end = 0.5;
	o.eps_start = 0.1;
	assert_int_equal(dqn_trainer_new(&o, &tr, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "eps"));
}

/*
 * Centering and equalization preserve the argmax: a net whose action a prefers
 * states where feature a is the largest of features 0-5 (plus small random
 * weights, and a large value shared by all actions, as trained Q-values have)
 * exports to an int8 model that agrees with it on random states.
 */
static void test_export_preserves_argmax(void **state)
{
	struct prng rng;
	struct mlp net;
	struct model *plain = NULL, *eq = NULL;
	double *raw;
	float *calib;
	struct reflex_err err = { 0 };
	const size_t n = 3000;
	size_t wins[DQN_ACTIONS] = { 0 };

	(void)state;
	prng_seed(&rng, 3);
	assert_int_equal(mlp_init(&net, DQN_FEATURES, 128, DQN_ACTIONS, &rng), 0);
	for (size_t k = 0; k < net.n_params; k++)
		net.params[k] *= 0.02f;
	for (unsigned a = 0; a < DQN_ACTIONS; a++) {
		net.w1[a * DQN_FEATURES + a] = 1.0f;
		net.w2[a * 128 + a] = 1.0f;
		net.b2[a] = 5.0f;
	}
	raw = malloc(n * DQN_FEATURES * sizeof(double));
	calib = malloc(n * DQN_FEATURES * sizeof(float));
	assert_non_null(raw);
	assert_non_null(calib);
	for (size_t k = 0; k < n; k++) {
		for (unsigned i = 0; i < DQN_FEATURES; i++)
			raw[k * DQN_FEATURES + i] = dqn_features[i].min +
				(dqn_features[i].max - dqn_features[i].min) * prng_uniform(&rng);
		dqn_normalize(raw + k * DQN_FEATURES, DQN_FEATURES, calib + k * DQN_FEATURES);
	}
	for (size_t k = 0; k < n; k++)
		wins[dqn_greedy(&net, calib + k * DQN_FEATURES)]++;
	for (unsigned a = 0; a < DQN_ACTIONS; a++)
		assert_true(wins[a] > n / 20); /* every action is the argmax somewhere */
	assert_int_equal(dqn_build_model(&net, calib, n, false, &plain, &err), 0);
	assert_int_equal(dqn_build_model(&net, calib, n, true, &eq, &err), 0);
	assert_true(dqn_int8_agreement(plain, &net, raw, n) >= 0.97);
	assert_true(dqn_int8_agreement(eq, &net, raw, n) >= 0.97);
	assert_int_equal(plain->feature_count, DQN_FEATURES);
	assert_string_equal(plain->features[11].name, "rtt_ratio");
	assert_close(plain->features[4].min, -1, 0);
	assert_string_equal(plain->outputs[DQN_INCREASE10].name, "increase10");
	assert_int_equal(plain->layer_count, 2);
	model_free(plain);
	model_free(eq);

	net.n_in = 5; /* not a DQN input width */
	assert_int_equal(dqn_build_model(&net, calib, n, false, &plain, &err), -EINVAL);
	assert_null(plain);
	net.n_in = DQN_FEATURES;
	free(raw);
	free(calib);
	mlp_free(&net);
}

/* The whole train-dqn path on a small run: checkpoint and `.reflex` written, the
 * model loads and carries its figures, a resume continues from the checkpoint. */
static void test_train_end_to_end(void **state)
{
	struct dqn_train_opts o;
	struct dqn_report rep;
	struct model *m = NULL;
	struct reflex_err merr;
	struct tmpdir t;
	char value[64];

	(void)state;
	tmpdir_make(&t);
	small_opts(&o);
	o.checkpoint_path = t.ck;
	o.model_path = t.model;
	assert_int_equal(dqn_train(&o, &rep), 0);
	assert_int_equal(rep.episodes, 4);
	assert_int_equal(rep.decisions, 100);
	assert_int_equal(rep.eval_scenarios, 2);
	assert_int_equal(rep.agreement_states, 2 * 20);
	assert_true(rep.int8_agreement >= 0 && rep.int8_agreement <= 1);
	for (int p = 0; p < DQN_POLICY_COUNT; p++) {
		assert_true(isfinite(rep.eval[p].reward));
		assert_true(rep.eval[p].utilization > 0);
		assert_true(rep.eval[p].rtt_ratio >= 1.0);
	}
	assert_int_equal(model_load_file(t.model, 0, &m, &merr), 0);
	assert_int_equal(m->kind, MODEL_KIND_MLP);
	assert_int_equal(m->feature_count, DQN_FEATURES);
	assert_int_equal(m->output_count, DQN_ACTIONS);
	assert_int_equal(model_meta_get(m, "seed", value, sizeof(value)), 0);
	assert_string_equal(value, "11");
	assert_int_equal(model_meta_get(m, "actuator", value, sizeof(value)), 0);
	assert_string_equal(value, "cwnd_clamp");
	assert_int_equal(model_meta_get(m, "int8_agreement", value, sizeof(value)), 0);
	assert_int_equal(model_meta_get(m, "eval_reward_heuristic", value, sizeof(value)), 0);
	model_free(m);

	o.episodes = 6;
	o.resume = true;
	o.model_path = NULL;
	o.eval_scenarios = 0;
	assert_int_equal(dqn_train(&o, &rep), 0);
	assert_int_equal(rep.episodes, 6);
	assert_int_equal(rep.decisions, 150);

	o.checkpoint_path = NULL;
	assert_int_equal(dqn_train(&o, &rep), -EINVAL);
	assert_non_null(strstr(rep.err.msg, "checkpoint"));
	tmpdir_remove(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forward_by_hand),
		cmocka_unit_test(test_backward_matches_finite_differences),
		cmocka_unit_test(test_adam_known_gradient),
		cmocka_unit_test(test_replay_wraparound_and_sampling),
		cmocka_unit_test(test_epsilon_schedule),
		cmocka_unit_test(test_actions),
		cmocka_unit_test(test_features_and_reward),
		cmocka_unit_test(test_normalize_matches_model_grid),
		cmocka_unit_test(test_training_deterministic),
		cmocka_unit_test(test_checkpoint_resume_equivalence),
		cmocka_unit_test(test_checkpoint_corrupt_rejected),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_export_preserves_argmax),
		cmocka_unit_test(test_train_end_to_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
