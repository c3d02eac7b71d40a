// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* On-line fine-tuning of the DQN in a background thread, and the lock-free
 * publication of its int8 models (dqn_learn.h has the design). */
#include "dqn/dqn_learn.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dqn/train_internal.h"
#include "model/model.h"

/* Publication quantizes without equalization and checks no agreement (that needs the
 * float net on held-out states: reflex-forge's dqn_build_best_model does it). On the
 * shipped model's dequantized net, plain and equalized quantization agree with the
 * float argmax equally often (98.98 % and 99.02 % over 5 x 1000 simulator states),
 * and plain requantizes the source's own int8 weights onto the same grid. */
#define PUBLISH_EQUALIZE false

#ifndef REFLEX_GIT_DESCRIBE
#define REFLEX_GIT_DESCRIBE "unknown"
#endif

struct dqn_learn {
	struct dqn_learn_opts opts;
	uint32_t n_in;

	/* The ring: the producer owns tail, the learner owns head. */
	struct dqn_transition *queue;
	uint64_t queue_mask;
	_Atomic uint64_t queue_head;
	_Atomic uint64_t queue_tail;
	_Atomic uint64_t dropped;
	sem_t wake;           /* one post per queued transition */
	_Atomic bool stop;
	pthread_t thread;
	bool running;

	/* Publication. */
	struct dqn_learn_model *_Atomic current;
	struct dqn_learn_model *_Atomic hazard[DQN_LEARN_READERS];
	struct dqn_learn_model *retired[DQN_LEARN_READERS + 1]; /* learner only */
	unsigned n_retired;

	/* The learner thread's own. */
	struct dqn_trainer *trainer;
	struct model *source;  /* a copy: the metadata of what it started from */
	double *calib;        /* ring of raw states [DQN_LEARN_CALIB_STATES][DQN_FEATURES] */
	uint32_t calib_len, calib_next;
	uint64_t published_updates;

	_Atomic uint64_t processed;
	_Atomic uint64_t updates;
	_Atomic uint64_t generation;
	_Atomic uint64_t publish_errors;
};

void dqn_learn_opts_default(struct dqn_learn_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->seed = 1;
	opts->queue_capacity = 1024;
	opts->replay_capacity = 10000;
	opts->replay_warmup = 64;
	opts->batch = 64;
	opts->target_sync = 200;
	opts->publish_every = 50;
	opts->lr = 1e-6f;
}

/* --- the source model ----------------------------------------------------------- */

static int check_source(const struct model *m, struct reflex_err *err)
{
	if (m->kind != MODEL_KIND_MLP || m->layer_count != 2) {
		reflex_err_set(err, "not a DQN model: an MLP with one hidden layer is needed");
		return -EINVAL;
	}
	if (m->feature_count != DQN_FEATURES && m->feature_count != DQN_SEED_FEATURES) {
		reflex_err_set(err, "not a DQN model: %u features, %d or %d are needed", m->feature_count,
			DQN_SEED_FEATURES, DQN_FEATURES);
		return -EINVAL;
	}
	/* The learner normalizes with dqn_features: the model must quantize the same way. */
	for (unsigned i = 0; i < m->feature_count; i++)
		if (strcmp(m->features[i].name, dqn_features[i].name) || m->features[i].min != dqn_features[i].min ||
		    m->features[i].max != dqn_features[i].max) {
			reflex_err_set(err, "not a DQN model: feature %u is '%s' [%g, %g], '%s' [%g, %g] is needed", i,
				m->features[i].name, m->features[i].min, m->features[i].max, dqn_features[i].name,
				dqn_features[i].min, dqn_features[i].max);
			return -EINVAL;
		}
	if (m->output_count != DQN_ACTIONS) {
		reflex_err_set(err, "not a DQN model: %u outputs, %d are needed", m->output_count, DQN_ACTIONS);
		return -EINVAL;
	}
	for (unsigned a = 0; a < DQN_ACTIONS; a++)
		if (strcmp(m->outputs[a].name, dqn_action_names[a])) {
			reflex_err_set(err, "not a DQN model: output %u is '%s', '%s' is needed", a,
				m->outputs[a].name, dqn_action_names[a]);
			return -EINVAL;
		}
	if (m->layers[0].out_count > MLP_MAX_UNITS || !m->layers[0].requant_mult) {
		reflex_err_set(err, "not a DQN model: hidden layer of %u units, requant x%u", m->layers[0].out_count,
			m->layers[0].requant_mult);
		return -EINVAL;
	}
	return 0;
}

/*
 * Layer 0 accumulates at weight_scale0 / 127 (the inputs are at 1/127); the int8
 * hidden activation is that accumulator times mult / 2^shift, so one hidden step is
 * (weight_scale0 / 127) * 2^shift / mult; layer 1's biases are at weight_scale1
 * times that step.
 */
int dqn_learn_dequantize(const struct model *m, struct mlp *net, struct reflex_err *err)
{
	const struct model_layer *l0 = &m->layers[0], *l1 = &m->layers[1];
	double acc0, hidden_step;
	int ret = check_source(m, err);

	if (ret)
		return ret;
	ret = mlp_init(net, m->feature_count, l0->out_count, DQN_ACTIONS, NULL);
	if (ret) {
		reflex_err_set(err, "dequantize: %s", strerror(-ret));
		return ret;
	}
	acc0 = l0->weight_scale / 127.0;
	hidden_step = ldexp(acc0, l0->requant_shift) / l0->requant_mult;
	for (size_t k = 0; k < (size_t)l0->out_count * l0->in_count; k++)
		net->w1[k] = (float)(l0->weights[k] * l0->weight_scale);
	for (unsigned h = 0; h < l0->out_count; h++)
		net->b1[h] = (float)(l0->biases[h] * acc0);
	for (size_t k = 0; k < (size_t)l1->out_count * l1->in_count; k++)
		net->w2[k] = (float)(l1->weights[k] * l1->weight_scale);
	for (unsigned a = 0; a < DQN_ACTIONS; a++)
		net->b2[a] = (float)(l1->biases[a] * l1->weight_scale * hidden_step);
	return 0;
}

/* A deep copy, through the file image: the learner's generation 0. */
static int model_copy(const struct model *m, struct model **out, struct reflex_err *err)
{
	struct reflex_err merr = { 0 };
	uint8_t *image = NULL;
	size_t len;
	int ret = model_serialize(m, &image, &len, &merr);

	if (!ret)
		ret = model_load_buffer(image, len, 0, out, &merr);
	if (ret)
		reflex_err_set(err, "copying the source model: %s", merr.msg);
	free(image);
	return ret;
}

static float max_abs_weight(const struct mlp *net)
{
	size_t n1 = (size_t)net->n_hidden * net->n_in, n2 = (size_t)net->n_out * net->n_hidden;
	float max = 0;

	for (size_t k = 0; k < n1; k++)
		max = fmaxf(max, fabsf(net->w1[k]));
	for (size_t k = 0; k < n2; k++)
		max = fmaxf(max, fabsf(net->w2[k]));
	return max;
}

/* The trainer that fine-tunes net: dqn_train_opts' defaults for everything the
 * learner options do not set; weights stay within the range the source's int8
 * scales were chosen for. */
static int trainer_for(struct dqn_learn *l, const struct mlp *net, struct reflex_err *err)
{
	const struct dqn_learn_opts *lo = &l->opts;
	struct dqn_train_opts o;
	int ret;

	dqn_train_opts_default(&o);
	o.seed = lo->seed;
	o.hidden = net->n_hidden;
	o.seed_features_only = net->n_in == DQN_SEED_FEATURES;
	o.batch = lo->batch;
	o.replay_capacity = lo->replay_capacity;
	o.replay_warmup = lo->replay_warmup;
	o.target_sync = lo->target_sync;
	o.lr = lo->lr;
	o.weight_clip = max_abs_weight(net);
	o.validate_every = 0;
	o.eval_scenarios = 0;
	o.eval_steps = 0;
	ret = dqn_trainer_new(&o, &l->trainer, err);
	if (!ret)
		ret = dqn_trainer_set_net(l->trainer, net);
	return ret;
}

static struct dqn_learn_model *published_new(struct model *m, uint64_t generation, uint64_t updates)
{
	struct dqn_learn_model *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->model = m;
	p->generation = generation;
	p->updates = updates;
	return p;
}

static void published_free(struct dqn_learn_model *p)
{
	if (!p)
		return;
	model_free(p->model);
	free(p);
}

/* --- lifecycle -------------------------------------------------------------------- */

static int check_opts(const struct dqn_learn_opts *o, struct reflex_err *err)
{
	uint32_t q = o->queue_capacity;

	if (q < 2 || q > DQN_LEARN_MAX_QUEUE || (q & (q - 1))) {
		reflex_err_set(err, "learn: queue_capacity %u must be a power of 2 in [2, %u]", q,
			DQN_LEARN_MAX_QUEUE);
		return -EINVAL;
	}
	if (!o->publish_every) {
		reflex_err_set(err, "learn: publish_every must be >= 1");
		return -EINVAL;
	}
	return 0;
}

static int learner_alloc(struct dqn_learn *l)
{
	l->queue = calloc(l->opts.queue_capacity, sizeof(*l->queue));
	l->calib = calloc((size_t)DQN_LEARN_CALIB_STATES * DQN_FEATURES, sizeof(double));
	return l->queue && l->calib ? 0 : -ENOMEM;
}

int dqn_learn_new(const struct model *source, const struct dqn_learn_opts *opts, struct dqn_learn **out,
		  struct reflex_err *err)
{
	struct dqn_learn *l = NULL;
	struct model *copy = NULL;
	struct dqn_learn_model *gen0;
	struct mlp net = { 0 };
	int ret;

	*out = NULL;
	ret = check_opts(opts, err);
	if (ret)
		return ret;
	ret = dqn_learn_dequantize(source, &net, err);
	if (ret)
		return ret;
	/* From the semaphore on, dqn_learn_free undoes whatever was done. */
	l = calloc(1, sizeof(*l));
	if (!l || sem_init(&l->wake, 0, 0)) {
		free(l);
		mlp_free(&net);
		reflex_err_set(err, "learn: out of memory");
		return -ENOMEM;
	}
	l->opts = *opts;
	l->n_in = net.n_in;
	l->queue_mask = opts->queue_capacity - 1;
	ret = learner_alloc(l);
	if (ret) {
		reflex_err_set(err, "learn: out of memory");
		goto fail;
	}
	ret = trainer_for(l, &net, err);
	if (!ret)
		ret = model_copy(source, &l->source, err);
	if (!ret)
		ret = model_copy(source, &copy, err);
	if (ret)
		goto fail;
	gen0 = published_new(copy, 0, 0);
	if (!gen0) {
		model_free(copy);
		ret = -ENOMEM;
		reflex_err_set(err, "learn: out of memory");
		goto fail;
	}
	atomic_store(&l->current, gen0);
	mlp_free(&net);
	*out = l;
	return 0;
fail:
	mlp_free(&net);
	dqn_learn_free(l);
	return ret;
}

static void *learner_main(void *arg);

int dqn_learn_start(struct dqn_learn *l, struct reflex_err *err)
{
	struct sched_param normal = { .sched_priority = 0 };
	pthread_attr_t attr;
	int ret;

	if (l->running) {
		reflex_err_set(err, "learn: the learner thread already runs");
		return -EBUSY;
	}
	/* Training is minutes of CPU: it never inherits a real-time priority of the thread
	 * that starts it (reflexd --rt-priority), which would starve the host's tasks. */
	ret = pthread_attr_init(&attr);
	if (!ret) {
		ret = pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
		if (!ret)
			ret = pthread_attr_setschedpolicy(&attr, SCHED_OTHER);
		if (!ret)
			ret = pthread_attr_setschedparam(&attr, &normal);
		if (!ret)
			ret = pthread_create(&l->thread, &attr, learner_main, l);
		pthread_attr_destroy(&attr);
	}
	if (ret) {
		reflex_err_set(err, "learn: cannot start the learner thread: %s", strerror(ret));
		return -ret;
	}
	l->running = true;
	return 0;
}

void dqn_learn_stop(struct dqn_learn *l)
{
	if (!l->running)
		return;
	atomic_store(&l->stop, true);
	sem_post(&l->wake);
	pthread_join(l->thread, NULL);
	l->running = false;
}

void dqn_learn_free(struct dqn_learn *l)
{
	if (!l)
		return;
	dqn_learn_stop(l);
	published_free(atomic_load(&l->current));
	for (unsigned i = 0; i < l->n_retired; i++)
		published_free(l->retired[i]);
	dqn_trainer_free(l->trainer);
	model_free(l->source);
	sem_destroy(&l->wake);
	free(l->queue);
	free(l->calib);
	free(l);
}

const struct mlp *dqn_learn_net(const struct dqn_learn *l)
{
	return dqn_trainer_net(l->trainer);
}

void dqn_learn_stats(struct dqn_learn *l, struct dqn_learn_stats *st)
{
	st->queued = atomic_load_explicit(&l->queue_tail, memory_order_relaxed);
	st->dropped = atomic_load_explicit(&l->dropped, memory_order_relaxed);
	st->processed = atomic_load_explicit(&l->processed, memory_order_relaxed);
	st->updates = atomic_load_explicit(&l->updates, memory_order_relaxed);
	st->generation = atomic_load_explicit(&l->generation, memory_order_relaxed);
	st->publish_errors = atomic_load_explicit(&l->publish_errors, memory_order_relaxed);
}

/* --- the ring ----------------------------------------------------------------------- */

bool dqn_learn_push(struct dqn_learn *l, const struct dqn_transition *t)
{
	uint64_t tail = atomic_load_explicit(&l->queue_tail, memory_order_relaxed);
	uint64_t head = atomic_load_explicit(&l->queue_head, memory_order_acquire);

	if (t->action >= DQN_ACTIONS || tail - head > l->queue_mask) {
		atomic_fetch_add_explicit(&l->dropped, 1, memory_order_relaxed);
		return false;
	}
	l->queue[tail & l->queue_mask] = *t;
	atomic_store_explicit(&l->queue_tail, tail + 1, memory_order_release);
	sem_post(&l->wake);
	return true;
}

static bool queue_pop(struct dqn_learn *l, struct dqn_transition *t)
{
	uint64_t head = atomic_load_explicit(&l->queue_head, memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&l->queue_tail, memory_order_acquire);

	if (head == tail)
		return false;
	*t = l->queue[head & l->queue_mask];
	atomic_store_explicit(&l->queue_head, head + 1, memory_order_release);
	return true;
}

/* --- publication -------------------------------------------------------------------- */

const struct dqn_learn_model *dqn_learn_acquire(struct dqn_learn *l, unsigned reader)
{
	struct dqn_learn_model *p = atomic_load(&l->current), *again;

	/* Once the slot holds p and current still is p, the learner's scan (which
	 * follows its exchange) sees the slot: p is not freed before the release. */
	for (;;) {
		atomic_store(&l->hazard[reader], p);
		again = atomic_load(&l->current);
		if (again == p)
			return p;
		p = again;
	}
}

void dqn_learn_release(struct dqn_learn *l, unsigned reader)
{
	atomic_store(&l->hazard[reader], NULL);
}

static bool hazardous(struct dqn_learn *l, const struct dqn_learn_model *p)
{
	for (unsigned r = 0; r < DQN_LEARN_READERS; r++)
		if (atomic_load(&l->hazard[r]) == p)
			return true;
	return false;
}

/* Each reader holds at most one model, so at most DQN_LEARN_READERS stay retired. */
static void retire(struct dqn_learn *l, struct dqn_learn_model *old)
{
	unsigned keep = 0;

	l->retired[l->n_retired++] = old;
	for (unsigned i = 0; i < l->n_retired; i++) {
		if (hazardous(l, l->retired[i]))
			l->retired[keep++] = l->retired[i];
		else
			published_free(l->retired[i]);
	}
	l->n_retired = keep;
}

int dqn_learn_write(struct dqn_learn *l, unsigned reader, const char *path, struct reflex_err *err)
{
	const struct dqn_learn_model *p = dqn_learn_acquire(l, reader);
	struct reflex_err merr = { 0 };
	int ret = model_write_file(p->model, path, &merr);

	dqn_learn_release(l, reader);
	if (ret)
		reflex_err_set_file(err, path, "%s", merr.msg);
	return ret;
}

/* Metadata keys of the source that hold for its fine-tuned models too. */
static const char *const kept_keys[] = {
	"policy", "actuator", "decision_interval", "reward", "gamma", "hidden", "outputs",
};

/* Keys that describe the source itself: kept as source_KEY. */
static const char *const source_keys[] = {
	"trainer", "trainer_commit", "created_at", "seed", "episodes", "decisions", "lr", "best_episode",
	"int8_agreement", "agreement_states",
};

static int copy_key(struct model *m, const struct model *source, const char *key, const char *prefix,
		    struct reflex_err *merr)
{
	char value[512], name[64];

	if (model_meta_get(source, key, value, sizeof(value)))
		return 0; /* absent (or too long to be one of ours) */
	snprintf(name, sizeof(name), "%s%s", prefix, key);
	return model_meta_set(m, name, value, merr);
}

/* What the model is and where it came from: the source's lasting keys, its
 * origin as source_*, and this fine-tuning. */
static int set_metadata(struct dqn_learn *l, struct model *m, const struct dqn_learn_model *p)
{
	struct reflex_err merr = { 0 };
	char created[32];
	time_t now = time(NULL);
	struct tm tm;
	int ret = 0;

	for (size_t i = 0; i < sizeof(kept_keys) / sizeof(kept_keys[0]) && !ret; i++)
		ret = copy_key(m, l->source, kept_keys[i], "", &merr);
	for (size_t i = 0; i < sizeof(source_keys) / sizeof(source_keys[0]) && !ret; i++)
		ret = copy_key(m, l->source, source_keys[i], "source_", &merr);
	gmtime_r(&now, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	ret = ret ?: model_meta_set(m, "created_at", created, &merr);
	ret = ret ?: model_meta_set(m, "trainer", "reflexd --learn", &merr);
	ret = ret ?: model_meta_set(m, "trainer_commit", REFLEX_GIT_DESCRIBE, &merr);
	ret = ret ?: model_meta_set(m, "fine_tuned", "on-line by reflexd --learn", &merr);
	ret = ret ?: model_meta_setf(m, "lr", &merr, "%g", l->opts.lr);
	ret = ret ?: model_meta_setf(m, "learn_generation", &merr, "%llu", (unsigned long long)p->generation);
	ret = ret ?: model_meta_setf(m, "learn_updates", &merr, "%llu", (unsigned long long)p->updates);
	ret = ret ?: model_meta_setf(m, "learn_transitions", &merr, "%llu",
			       (unsigned long long)atomic_load_explicit(&l->processed, memory_order_relaxed));
	ret = ret ?: model_meta_setf(m, "calibration_states", &merr, "%zu", p->calibration_states);
	return ret;
}

/* Quantize the float net on the recent states and make it the current model. */
static void publish(struct dqn_learn *l)
{
	const struct mlp *net = dqn_trainer_net(l->trainer);
	uint64_t updates = atomic_load_explicit(&l->updates, memory_order_relaxed);
	uint64_t generation = atomic_load_explicit(&l->generation, memory_order_relaxed) + 1;
	struct dqn_learn_model *p = NULL;
	struct model *m = NULL;

	l->published_updates = updates;
	if (dqn_build_model_raw(net, l->calib, l->calib_len, PUBLISH_EQUALIZE, &m, NULL))
		goto fail;
	p = published_new(m, generation, updates);
	if (!p)
		goto fail;
	p->calibration_states = l->calib_len;
	if (set_metadata(l, m, p))
		goto fail;
	retire(l, atomic_exchange(&l->current, p));
	atomic_store_explicit(&l->generation, generation, memory_order_relaxed);
	return;
fail:
	if (p)
		published_free(p);
	else
		model_free(m);
	atomic_fetch_add_explicit(&l->publish_errors, 1, memory_order_relaxed);
}

/* --- learning ----------------------------------------------------------------------- */

static void calib_add(struct dqn_learn *l, const double *raw)
{
	memcpy(l->calib + (size_t)l->calib_next * DQN_FEATURES, raw, DQN_FEATURES * sizeof(double));
	l->calib_next = (l->calib_next + 1) % DQN_LEARN_CALIB_STATES;
	if (l->calib_len < DQN_LEARN_CALIB_STATES)
		l->calib_len++;
}

static void learn_one(struct dqn_learn *l, const struct dqn_transition *t)
{
	float s[DQN_FEATURES], s2[DQN_FEATURES];
	enum dqn_action a = (enum dqn_action)t->action;
	uint64_t updates;

	dqn_normalize(t->state, l->n_in, s);
	dqn_normalize(t->next_state, l->n_in, s2);
	calib_add(l, t->next_state);
	if (dqn_trainer_observe(l->trainer, s, a, (float)t->reward, s2)) {
		updates = atomic_fetch_add_explicit(&l->updates, 1, memory_order_relaxed) + 1;
		if (updates % l->opts.publish_every == 0)
			publish(l);
	}
	atomic_fetch_add_explicit(&l->processed, 1, memory_order_release);
}

static void *learner_main(void *arg)
{
	struct dqn_learn *l = arg;
	struct dqn_transition t;

	while (!atomic_load(&l->stop)) {
		if (sem_wait(&l->wake) && errno == EINTR)
			continue;
		/* Absorb the other posts: every transition queued before them is visible
		 * now, and one queued later posts again. */
		while (sem_trywait(&l->wake) == 0)
			;
		while (!atomic_load(&l->stop) && queue_pop(l, &t))
			learn_one(l, &t);
	}
	if (atomic_load_explicit(&l->updates, memory_order_relaxed) != l->published_updates)
		publish(l);
	return NULL;
}
