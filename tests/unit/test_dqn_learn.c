// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* On-line learning (reflexd --learn): the ring, the learner on simulator
 * transitions, publication under concurrent readers, determinism, shutdown. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sim/bottleneck_sim.h"
#include "dqn/dqn.h"
#include "dqn/train.h"
#include "dqn/dqn_learn.h"
#include "model/model.h"

#define WAIT_LIMIT_S 120

/* --- the source: an untrained 13 -> 32 -> 6 net, exported as train-dqn does ----- */

static struct model *source_model(void)
{
	struct reflex_err merr = { 0 };
	struct model *m = NULL;
	struct prng rng;
	struct mlp net;
	double *calib = malloc(600 * DQN_FEATURES * sizeof(double));
	size_t n_calib = 0;
	struct reflex_err err = { 0 };

	assert_non_null(calib);
	prng_seed(&rng, 9);
	assert_int_equal(mlp_init(&net, DQN_FEATURES, 32, DQN_ACTIONS, &rng), 0);
	assert_int_equal(dqn_collect_states(&net, 11, 3, 200, calib, 600, &n_calib), 0);
	assert_int_equal(dqn_build_best_model(&net, calib, n_calib, &m, &err), 0);
	assert_int_equal(model_meta_set(m, "trainer", "test_dqn_learn", &merr), 0);
	mlp_free(&net);
	free(calib);
	return m;
}

/* --- the lab's bottleneck on the simulator: one CUBIC flow under the agent's clamp */

struct sim_flow {
	struct bsim *sim;
	struct bsim_config cfg;
	struct dqn_flow_state fs;
	struct bsim_flow_stats prev;
	uint64_t prev_us;
	uint32_t clamp;
	double raw[DQN_FEATURES];
	double reward;
};

static void sim_start(struct sim_flow *f, uint64_t seed)
{
	memset(f, 0, sizeof(*f));
	bsim_config_default(&f->cfg);
	f->cfg.link_bps = 50000000;
	f->cfg.base_rtt_us = 20000 + (uint32_t)(seed % 5) * 4000;
	f->cfg.buffer_bytes = (uint64_t)(2 * bsim_bdp_bytes(&f->cfg));
	f->cfg.seed = seed;
	assert_int_equal(bsim_new(&f->cfg, &f->sim), 0);
	dqn_flow_init(&f->fs);
	bsim_run_until(f->sim, 10ULL * f->cfg.base_rtt_us);
	bsim_flow_stats(f->sim, 0, &f->prev);
	f->prev_us = bsim_now_us(f->sim);
	f->clamp = f->prev.cwnd;
}

/* One decision interval under the current clamp: raw features and reward. */
static void sim_interval(struct sim_flow *f)
{
	struct bsim_flow_stats fl;
	struct bsim_link_stats ln;
	struct dqn_interval iv;

	bsim_run_until(f->sim, bsim_now_us(f->sim) + dqn_decision_interval_us(f->prev.min_rtt_us));
	bsim_flow_stats(f->sim, 0, &fl);
	bsim_link_stats(f->sim, &ln);
	dqn_interval_from_sim(&f->cfg, &f->prev, f->prev_us, &fl, &ln, &iv);
	dqn_flow_observe(&f->fs, &iv, f->raw, &f->reward);
	f->prev = fl;
	f->prev_us = ln.now_us;
}

static void sim_act(struct sim_flow *f, enum dqn_action a)
{
	f->clamp = dqn_apply_action(a, f->clamp);
	bsim_set_cwnd_clamp(f->sim, 0, f->clamp);
}

/* Mean reward per decision of the int8 model, greedy, on scenarios it was not tuned on. */
static double sim_reward(const struct model *m, unsigned scenarios, unsigned steps)
{
	double sum = 0;

	for (unsigned k = 0; k < scenarios; k++) {
		struct sim_flow f;

		sim_start(&f, 1000 + k);
		sim_interval(&f);
		for (unsigned t = 0; t < steps; t++) {
			sim_act(&f, dqn_int8_action(m, f.raw, NULL));
			sim_interval(&f);
			sum += f.reward;
		}
		bsim_free(f.sim);
	}
	return sum / ((double)scenarios * steps);
}

/* n transitions of the source model with 20 % random actions, over several scenarios. */
static struct dqn_transition *sim_transitions(const struct model *m, size_t n)
{
	struct dqn_transition *t = calloc(n, sizeof(*t));
	struct prng rng;
	struct sim_flow f = { 0 };

	assert_non_null(t);
	prng_seed(&rng, 77);
	for (size_t i = 0; i < n; i++) {
		enum dqn_action a;

		if (i % 200 == 0) {
			bsim_free(f.sim);
			sim_start(&f, i / 200);
			sim_interval(&f);
		}
		a = prng_uniform(&rng) < 0.2 ? (enum dqn_action)prng_below(&rng, DQN_ACTIONS)
						 : dqn_int8_action(m, f.raw, NULL);
		memcpy(t[i].state, f.raw, sizeof(f.raw));
		sim_act(&f, a);
		sim_interval(&f);
		memcpy(t[i].next_state, f.raw, sizeof(f.raw));
		t[i].reward = f.reward;
		t[i].action = (uint8_t)a;
	}
	bsim_free(f.sim);
	return t;
}

/* --- helpers ------------------------------------------------------------------------ */

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Polls (the learner runs on its own schedule) until it has taken `n` transitions. */
static void wait_processed(struct dqn_learn *l, uint64_t n)
{
	struct dqn_learn_stats st;

	for (int i = 0; i < WAIT_LIMIT_S * 1000; i++) {
		dqn_learn_stats(l, &st);
		if (st.processed >= n)
			return;
		sleep_ms(1);
	}
	fail_msg("the learner took %llu of %llu transitions in %d s", (unsigned long long)st.processed,
		 (unsigned long long)n, WAIT_LIMIT_S);
}

static bool same_layers(const struct model *a, const struct model *b)
{
	if (a->layer_count != b->layer_count)
		return false;
	for (unsigned l = 0; l < a->layer_count; l++) {
		const struct model_layer *x = &a->layers[l], *y = &b->layers[l];

		if (x->in_count != y->in_count || x->out_count != y->out_count ||
		    x->requant_mult != y->requant_mult || x->requant_shift != y->requant_shift ||
		    memcmp(x->weights, y->weights, (size_t)x->in_count * x->out_count) ||
		    memcmp(x->biases, y->biases, x->out_count * sizeof(int32_t)))
			return false;
	}
	return true;
}

static struct dqn_learn *learner(const struct model *src, const struct dqn_learn_opts *o)
{
	struct dqn_learn *l = NULL;
	struct reflex_err err = { 0 };
	int ret = dqn_learn_new(src, o, &l, &err);

	if (ret)
		fail_msg("dqn_learn_new: %d %s", ret, err.msg);
	return l;
}

static int setup(void **state)
{
	*state = source_model();
	return 0;
}

static int teardown(void **state)
{
	model_free(*state);
	return 0;
}

/* --- tests ---------------------------------------------------------------------------- */

/*
 * The dequantized float net computes what the int8 model computes: the same argmax,
 * and outputs within a few int8 steps (the int8 model rounds its hidden layer). A
 * model that is not the DQN's is refused.
 */
static void test_dequantize(void **state)
{
	const struct model *src = *state;
	double *raw = malloc(2000 * DQN_FEATURES * sizeof(double));
	double worst = 0, range = 0, agreement;
	struct model *other;
	struct mlp net;
	size_t n = 0;
	struct reflex_err err = { 0 };

	assert_non_null(raw);
	assert_int_equal(dqn_learn_dequantize(src, &net, &err), 0);
	assert_int_equal(net.n_in, DQN_FEATURES);
	assert_int_equal(net.n_hidden, 32);
	assert_int_equal(dqn_collect_states(&net, 21, 10, 200, raw, 2000, &n), 0);
	assert_int_equal(n, 2000);
	for (size_t k = 0; k < n; k++) {
		const double *x = raw + k * DQN_FEATURES;
		float in[DQN_FEATURES], hidden[MLP_MAX_UNITS], out[DQN_ACTIONS];
		int16_t q[DQN_FEATURES];
		int32_t value[DQN_ACTIONS];

		dqn_normalize(x, DQN_FEATURES, in);
		mlp_forward(&net, in, hidden, out);
		model_quantize(src, x, NULL, q);
		model_eval(src, q, value);
		for (unsigned a = 0; a < DQN_ACTIONS; a++) {
			double int8_out = value[a] * src->outputs[a].scale;

			worst = fmax(worst, fabs(out[a] - int8_out));
			range = fmax(range, fabs(int8_out));
		}
	}
	agreement = dqn_int8_agreement(src, &net, raw, n);
	printf("dequantized vs int8 on %zu held-out states: argmax agrees on %.2f %%, largest output "
	       "difference %.4g (outputs up to %.4g)\n", n, 100 * agreement, worst, range);
	assert_true(agreement >= 0.97);
	assert_true(worst <= 0.05 * range);
	mlp_free(&net);
	free(raw);

	other = model_create(MODEL_KIND_MLP, DQN_FEATURES, DQN_ACTIONS);
	assert_non_null(other);
	assert_int_equal(dqn_learn_dequantize(other, &net, &err), -EINVAL);
	printf("refused: %s\n", err.msg);
	assert_non_null(strstr(err.msg, "not a DQN model"));
	model_free(other);
}

/* A full ring refuses at once and counts; nothing waits for the learner. */
static void test_queue_full_drops(void **state)
{
	struct dqn_transition t = { .reward = 0.5, .action = DQN_MAINTAIN };
	struct dqn_learn_opts o;
	struct dqn_learn_stats st;
	struct dqn_learn *l;
	struct reflex_err err = { 0 };

	dqn_learn_opts_default(&o);
	o.queue_capacity = 8;
	l = learner(*state, &o);
	/* The thread is not running: only the ring's capacity decides. */
	for (int i = 0; i < 8; i++)
		assert_true(dqn_learn_push(l, &t));
	for (int i = 0; i < 5; i++)
		assert_false(dqn_learn_push(l, &t));
	t.action = DQN_ACTIONS;
	assert_false(dqn_learn_push(l, &t));
	dqn_learn_stats(l, &st);
	assert_int_equal(st.queued, 8);
	assert_int_equal(st.dropped, 6);
	assert_int_equal(st.processed, 0);
	assert_int_equal(dqn_learn_start(l, &err), 0);
	wait_processed(l, 8);
	t.action = DQN_DECREASE5;
	assert_true(dqn_learn_push(l, &t)); /* room again */
	wait_processed(l, 9);
	dqn_learn_stop(l);
	dqn_learn_stats(l, &st);
	assert_int_equal(st.queued, 9);
	assert_int_equal(st.processed, 9);
	assert_int_equal(st.dropped, 6);
	assert_int_equal(st.updates, 0); /* under the warm-up */
	assert_int_equal(st.generation, 0);
	dqn_learn_free(l);

	o.queue_capacity = 12;
	assert_int_equal(dqn_learn_new(*state, &o, &l, &err), -EINVAL);
	printf("refused: %s\n", err.msg);
	assert_null(l);
}

/*
 * On-line, as reflexd runs it: each decision reads the latest published model
 * (exploring with the trainer's epsilon schedule), and the transitions go to the
 * learner. From the untrained source the published models get better on the
 * lab-like scenarios, their generation grows, and what a reader gets at the end is
 * the learner's net, quantized.
 */
static void test_learns_and_publishes(void **state)
{
	enum { N = 10000 };
	const struct model *src = *state;
	const struct dqn_learn_model *cur;
	struct dqn_learn_opts o;
	struct dqn_learn_stats st;
	struct dqn_learn *l;
	struct prng rng;
	struct sim_flow f = { 0 };
	struct model *written = NULL;
	struct reflex_err merr = { 0 };
	uint64_t last_gen = 0, gens_seen = 0;
	double before, after, agreement, *raw;
	char path[] = "/tmp/test_dqn_learn.XXXXXX", value[64];
	struct reflex_err err = { 0 };
	size_t n_raw = 0;
	int fd;

	dqn_learn_opts_default(&o);
	o.lr = 1e-3f;
	o.batch = 32;
	l = learner(src, &o);
	assert_int_equal(dqn_learn_start(l, &err), 0);
	/* The run is deterministic (below), so its seed decides it: of seeds 1 to 9,
	 * seven learn (+1.6 to +2.1 in mean reward) and two (2 and 5) collapse onto
	 * one action that scores below the source. */
	prng_seed(&rng, 1);
	for (unsigned i = 0; i < N; i++) {
		struct dqn_transition t;
		enum dqn_action a;

		if (i % 300 == 0) {
			bsim_free(f.sim);
			sim_start(&f, 100 + i / 300);
			sim_interval(&f);
		}
		cur = dqn_learn_acquire(l, 0);
		assert_true(cur->generation >= last_gen);
		gens_seen += cur->generation != last_gen;
		last_gen = cur->generation;
		a = dqn_int8_action(cur->model, f.raw, NULL);
		dqn_learn_release(l, 0);
		if (prng_uniform(&rng) < dqn_epsilon(1.0, 0.01, 0.995, i))
			a = (enum dqn_action)prng_below(&rng, DQN_ACTIONS);
		memcpy(t.state, f.raw, sizeof(f.raw));
		sim_act(&f, a);
		sim_interval(&f);
		memcpy(t.next_state, f.raw, sizeof(f.raw));
		t.reward = f.reward;
		t.action = (uint8_t)a;
		/* The simulator outruns the learner (reflexd drops what does not fit).
		 * Here each transition is learned, and published when due, before the
		 * next action is chosen: the run is then the same on every machine and
		 * load. With a slack of a few transitions the actions saw whichever
		 * generation the learner's speed gave, and under load one run in about
		 * a dozen ended with a net whose int8 argmax agreed on 0.887. */
		dqn_learn_push(l, &t);
		do {
			dqn_learn_stats(l, &st);
			if (st.processed != st.queued)
				sched_yield();
		} while (st.processed != st.queued);
	}
	bsim_free(f.sim);
	dqn_learn_stop(l);
	dqn_learn_stats(l, &st);
	printf("learner: %llu queued, %llu dropped, %llu taken, %llu updates, generation %llu "
	       "(the decisions saw %llu new ones)\n",
	       (unsigned long long)st.queued, (unsigned long long)st.dropped, (unsigned long long)st.processed,
	       (unsigned long long)st.updates, (unsigned long long)st.generation, (unsigned long long)gens_seen);
	assert_int_equal(st.publish_errors, 0);
	assert_true(st.updates >= N * 9 / 10);
	assert_true(st.generation >= st.updates / o.publish_every);
	assert_true(gens_seen >= 2);

	/* What a reader gets: the last generation, with every update (test_deterministic
	 * checks it is the learner's net quantized, layer for layer). */
	cur = dqn_learn_acquire(l, 0);
	assert_int_equal(cur->generation, st.generation);
	assert_int_equal(cur->updates, st.updates);
	raw = malloc(1000 * DQN_FEATURES * sizeof(double));
	assert_non_null(raw);
	assert_int_equal(dqn_collect_states(dqn_learn_net(l), 31, 5, 200, raw, 1000, &n_raw), 0);
	agreement = dqn_int8_agreement(cur->model, dqn_learn_net(l), raw, n_raw);
	printf("generation %llu (calibrated on %zu states): argmax agrees with the float net on %.4f of %zu "
	       "held-out states of the training spread\n", (unsigned long long)cur->generation,
	       cur->calibration_states, agreement, n_raw);
	/* Publication checks no agreement itself: the lean quantization must hold it. */
	assert_true(agreement >= 0.9);
	free(raw);
	assert_false(same_layers(cur->model, src));
	before = sim_reward(src, 4, 200);
	after = sim_reward(cur->model, 4, 200);
	printf("mean reward per decision on 4 held-out lab-like scenarios: source %.4f, learned %.4f\n", before,
	       after);
	assert_true(after >= before + 1.0);
	dqn_learn_release(l, 0);

	/* --learn-out: the same model through the `.reflex` writer, with its story. */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(dqn_learn_write(l, 0, path, &err), 0);
	assert_int_equal(model_load_file(path, 0, &written, &merr), 0);
	cur = dqn_learn_acquire(l, 0);
	assert_true(same_layers(written, cur->model));
	dqn_learn_release(l, 0);
	assert_int_equal(model_meta_get(written, "fine_tuned", value, sizeof(value)), 0);
	assert_string_equal(value, "on-line by reflexd --learn");
	assert_int_equal(model_meta_get(written, "trainer", value, sizeof(value)), 0);
	assert_string_equal(value, "reflexd --learn");
	assert_int_equal(model_meta_get(written, "source_trainer", value, sizeof(value)), 0);
	assert_string_equal(value, "test_dqn_learn");
	assert_int_equal(model_meta_get(written, "learn_updates", value, sizeof(value)), 0);
	assert_int_equal(strtoull(value, NULL, 10), st.updates);
	assert_int_equal(model_meta_get(written, "learn_generation", value, sizeof(value)), 0);
	assert_int_equal(strtoull(value, NULL, 10), st.generation);
	model_free(written);
	unlink(path);
	dqn_learn_free(l);
}

struct reader_ctx {
	struct dqn_learn *l;
	unsigned slot;
	const double *raw;
	atomic_bool *stop;
	uint64_t reads, generations, backwards;
};

static void *reader_main(void *arg)
{
	struct reader_ctx *r = arg;
	uint64_t last = 0;

	while (!atomic_load(r->stop)) {
		const struct dqn_learn_model *cur = dqn_learn_acquire(r->l, r->slot);
		int16_t q[DQN_FEATURES];
		int32_t value[DQN_ACTIONS];

		/* Touch all of it: a freed model is a use-after-free under ASan. */
		model_quantize(cur->model, r->raw, NULL, q);
		model_eval(cur->model, q, value);
		if (cur->generation < last)
			r->backwards++;
		r->generations += cur->generation != last;
		last = cur->generation;
		dqn_learn_release(r->l, r->slot);
		r->reads++;
	}
	return NULL;
}

/* Readers in threads while the learner publishes after every update. */
static void test_concurrent_readers(void **state)
{
	enum { READERS = 4, N = 400 };
	struct dqn_transition *t = sim_transitions(*state, N);
	struct reader_ctx ctx[READERS];
	pthread_t threads[READERS];
	atomic_bool stop = false;
	struct dqn_learn_opts o;
	struct dqn_learn_stats st;
	struct dqn_learn *l;
	struct reflex_err err = { 0 };

	dqn_learn_opts_default(&o);
	o.replay_warmup = 16;
	o.batch = 8;
	o.publish_every = 1;
	l = learner(*state, &o);
	for (unsigned r = 0; r < READERS; r++) {
		ctx[r] = (struct reader_ctx){ .l = l, .slot = r, .raw = t[r].state, .stop = &stop };
		assert_int_equal(pthread_create(&threads[r], NULL, reader_main, &ctx[r]), 0);
	}
	assert_int_equal(dqn_learn_start(l, &err), 0);
	for (unsigned i = 0; i < N; i++) {
		while (!dqn_learn_push(l, &t[i]))
			sleep_ms(1);
	}
	wait_processed(l, N);
	atomic_store(&stop, true);
	for (unsigned r = 0; r < READERS; r++)
		assert_int_equal(pthread_join(threads[r], NULL), 0);
	dqn_learn_stop(l);
	dqn_learn_stats(l, &st);
	printf("%llu updates, %llu publications, %llu dropped while full\n", (unsigned long long)st.updates,
	       (unsigned long long)st.generation, (unsigned long long)st.dropped);
	assert_int_equal(st.generation, st.updates);
	assert_int_equal(st.publish_errors, 0);
	for (unsigned r = 0; r < READERS; r++) {
		printf("reader %u: %llu reads, %llu generation changes seen\n", r, (unsigned long long)ctx[r].reads,
		       (unsigned long long)ctx[r].generations);
		assert_int_equal(ctx[r].backwards, 0);
		assert_true(ctx[r].generations >= 1);
	}
	dqn_learn_free(l);
	free(t);
}

/* The same transitions give the same float net and the same int8 models, and the
 * published model is that net quantized on the states it was given (fewer than
 * DQN_LEARN_CALIB_STATES here, so all of them). */
static void test_deterministic(void **state)
{
	enum { N = 500 };
	struct dqn_transition *t = sim_transitions(*state, N);
	struct dqn_learn *l[2];
	const struct dqn_learn_model *m[2];
	struct dqn_learn_stats st[2];
	double *calib = malloc((size_t)N * DQN_FEATURES * sizeof(double));
	struct model *rebuilt = NULL;
	struct dqn_learn_opts o;
	struct reflex_err err = { 0 };

	assert_non_null(calib);
	dqn_learn_opts_default(&o);
	o.queue_capacity = 512;
	o.publish_every = 20;
	for (int k = 0; k < 2; k++) {
		l[k] = learner(*state, &o);
		for (unsigned i = 0; i < N; i++)
			assert_true(dqn_learn_push(l[k], &t[i]));
		assert_int_equal(dqn_learn_start(l[k], &err), 0);
	}
	for (int k = 0; k < 2; k++) {
		wait_processed(l[k], N);
		dqn_learn_stop(l[k]);
		dqn_learn_stats(l[k], &st[k]);
		m[k] = dqn_learn_acquire(l[k], 0);
	}
	printf("two learners: %llu and %llu updates, generations %llu and %llu\n",
	       (unsigned long long)st[0].updates, (unsigned long long)st[1].updates,
	       (unsigned long long)st[0].generation, (unsigned long long)st[1].generation);
	assert_int_equal(st[0].updates, N - o.replay_warmup + 1);
	assert_int_equal(st[0].updates, st[1].updates);
	assert_int_equal(st[0].generation, st[1].generation);
	assert_memory_equal(dqn_learn_net(l[0])->params, dqn_learn_net(l[1])->params,
			    dqn_learn_net(l[0])->n_params * sizeof(float));
	assert_true(same_layers(m[0]->model, m[1]->model));
	assert_int_equal(m[0]->generation, st[0].generation);
	assert_int_equal(m[0]->calibration_states, N);
	for (unsigned i = 0; i < N; i++)
		memcpy(calib + (size_t)i * DQN_FEATURES, t[i].next_state, sizeof(t[i].next_state));
	assert_int_equal(dqn_build_model_raw(dqn_learn_net(l[0]), calib, N, false, &rebuilt, &err), 0);
	assert_true(same_layers(m[0]->model, rebuilt));
	model_free(rebuilt);
	free(calib);
	for (int k = 0; k < 2; k++) {
		dqn_learn_release(l[k], 0);
		dqn_learn_free(l[k]);
	}
	free(t);
}

/* Freeing a running learner with a full ring stops it and frees everything (ASan's leak check). */
static void test_free_while_running(void **state)
{
	enum { N = 300 };
	struct dqn_transition *t = sim_transitions(*state, N);
	struct dqn_learn_opts o;
	struct dqn_learn *l;
	struct reflex_err err = { 0 };

	dqn_learn_opts_default(&o);
	o.replay_warmup = 8;
	o.batch = 8;
	o.publish_every = 5;
	l = learner(*state, &o);
	assert_int_equal(dqn_learn_start(l, &err), 0);
	for (unsigned i = 0; i < N; i++)
		dqn_learn_push(l, &t[i]);
	dqn_learn_free(l);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dequantize),
		cmocka_unit_test(test_queue_full_drops),
		cmocka_unit_test(test_learns_and_publishes),
		cmocka_unit_test(test_concurrent_readers),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_free_while_running),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
