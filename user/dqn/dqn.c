// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* The DQN congestion agent: features, reward, replay, training on the bottleneck
 * simulator, evaluation against the heuristic and fixed caps, checkpoints. */
#include "dqn/dqn.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "model/model.h"
#include "model/model_fast.h"

#define Q_MAX 32767 /* the `.reflex` int16 feature grid */
#define EVAL_STREAM 0x5eed0e7a1ULL   /* held-out scenarios: never drawn by training */
#define CALIB_STREAM 0xca11b0a7eULL  /* quantization calibration: neither training nor evaluation */
#define VALID_STREAM 0x7a11d0a7eULL  /* model selection during training */
#define CHECKPOINT_MAGIC "RXDQ"
#define MAX_REPLAY_CAPACITY (1u << 20)
#define MAX_EPISODES 10000000u
#define MAX_STEPS 1000000u
#define MAX_CALIB_ROWS 4096
#define MAX_AGREEMENT_STATES 20000
#define AGREEMENT_SCENARIOS 20

#ifndef REFLEX_GIT_DESCRIBE
#define REFLEX_GIT_DESCRIBE "unknown"
#endif

const char *const dqn_action_names[DQN_ACTIONS] = {
	"increase5", "increase10", "maintain", "decrease5", "decrease10", "slow_start",
};

const struct dqn_feature_def dqn_features[DQN_FEATURES] = {
	{ "rtt_us", 0, 1e6 },
	{ "rtt_var_us", 0, 5e5 },
	{ "bandwidth_bps", 0, 1e10 },
	{ "loss_rate", 0, 1 },
	{ "loss_trend", -1, 1 },
	{ "inflight", 0, 1e4 },
	{ "cwnd", 0, 1e6 },
	{ "buffer_occupancy", 0, 1 },
	{ "delivery_ratio", 0, 1 },
	{ "delivery_ratio_1", 0, 1 },
	{ "delivery_ratio_2", 0, 1 },
	{ "rtt_ratio", 0, 1 },
	{ "cwnd_bdp", 0, 4 },
};

const char *const dqn_policy_names[DQN_POLICY_COUNT] = {
	"dqn", "dqn_int8", "heuristic", "fixed", "cubic",
};

static void set_err(char *err, size_t err_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !err_len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

/* --- actions, features, reward ------------------------------------------------ */

uint32_t dqn_apply_action(enum dqn_action action, uint32_t cwnd_pkts)
{
	double c = cwnd_pkts, next;

	switch (action) {
	case DQN_INCREASE5:
		next = fmax(c + 1, round(c * 1.05));
		break;
	case DQN_INCREASE10:
		next = fmax(c + 1, round(c * 1.10));
		break;
	case DQN_DECREASE5:
		next = fmin(c - 1, round(c * 0.95));
		break;
	case DQN_DECREASE10:
		next = fmin(c - 1, round(c * 0.90));
		break;
	case DQN_SLOW_START:
		next = DQN_INIT_CWND;
		break;
	case DQN_MAINTAIN:
	default:
		next = c;
		break;
	}
	if (next < DQN_MIN_CWND)
		next = DQN_MIN_CWND;
	if (next > BSIM_MAX_CWND)
		next = BSIM_MAX_CWND;
	return (uint32_t)next;
}

uint32_t dqn_decision_interval_us(double min_rtt_us)
{
	if (!(min_rtt_us > DQN_MIN_INTERVAL_US))
		return DQN_MIN_INTERVAL_US;
	if (min_rtt_us > DQN_MAX_INTERVAL_US)
		return DQN_MAX_INTERVAL_US;
	return (uint32_t)min_rtt_us;
}

void dqn_flow_init(struct dqn_flow_state *fs)
{
	memset(fs, 0, sizeof(*fs));
}

static double flow_max_rate(const struct dqn_flow_state *fs)
{
	double max = 0;

	for (uint32_t i = 0; i < fs->rate_count; i++)
		if (fs->rate_window[i] > max)
			max = fs->rate_window[i];
	return max;
}

static double positive_or_zero(double x)
{
	return x > 0 ? x : 0; /* also maps NaN to 0 */
}

void dqn_flow_observe(struct dqn_flow_state *fs, const struct dqn_interval *iv, double *raw,
		      double *reward)
{
	double rate = iv->interval_us > 0 ? positive_or_zero(iv->delivered_bytes) * 8e6 / iv->interval_us : 0;
	double sent = positive_or_zero(iv->delivered_pkts) + positive_or_zero(iv->retrans_pkts);
	double loss = sent > 0 ? positive_or_zero(iv->retrans_pkts) / sent : 0;
	double cwnd_bytes = positive_or_zero(iv->cwnd_pkts) * positive_or_zero(iv->mss);
	double max_rate, ratio, rtt_ratio, bdp, cwnd_bdp, queueing;

	fs->rate_window[fs->rate_next] = rate;
	fs->rate_next = (fs->rate_next + 1) % DQN_MAX_FILTER_STEPS;
	if (fs->rate_count < DQN_MAX_FILTER_STEPS)
		fs->rate_count++;
	max_rate = flow_max_rate(fs);
	ratio = max_rate > 0 ? rate / max_rate : 0;
	rtt_ratio = iv->srtt_us > 0 && iv->min_rtt_us > 0 ? fmin(1.0, iv->min_rtt_us / iv->srtt_us) : 1.0;
	bdp = max_rate * positive_or_zero(iv->min_rtt_us) / 8e6;
	cwnd_bdp = bdp > 0 ? cwnd_bytes / bdp : dqn_features[12].max;
	queueing = iv->min_rtt_us > 0 ? positive_or_zero(iv->srtt_us / iv->min_rtt_us - 1.0) : 0;

	raw[0] = positive_or_zero(iv->srtt_us);
	raw[1] = positive_or_zero(iv->rttvar_us);
	raw[2] = rate;
	raw[3] = loss;
	raw[4] = loss - fs->prev_loss_rate;
	raw[5] = positive_or_zero(iv->inflight_pkts);
	raw[6] = cwnd_bytes;
	raw[7] = positive_or_zero(iv->buffer_occupancy);
	raw[8] = ratio;
	raw[9] = fs->ratio_hist[0];
	raw[10] = fs->ratio_hist[1];
	raw[11] = rtt_ratio;
	raw[12] = cwnd_bdp;
	if (reward)
		*reward = ratio - DQN_REWARD_DELAY_WEIGHT * queueing - DQN_REWARD_LOSS_WEIGHT * loss;

	fs->ratio_hist[1] = fs->ratio_hist[0];
	fs->ratio_hist[0] = ratio;
	fs->prev_loss_rate = loss;
}

void dqn_normalize(const double *raw, unsigned n, float *x)
{
	for (unsigned i = 0; i < n; i++) {
		const struct dqn_feature_def *f = &dqn_features[i];
		double norm = (raw[i] - f->min) / (f->max - f->min);
		int32_t q, a;

		/* Same steps as model_feature_normalize + model_quantize_norm and the
		 * MLP's first-layer input (model.h): int16 grid, then int8 grid. */
		if (!(norm > 0))
			q = 0;
		else if (norm >= 1)
			q = Q_MAX;
		else
			q = (int32_t)floor(norm * Q_MAX + 0.5);
		a = (q * 127 + Q_MAX / 2) / Q_MAX;
		x[i] = (float)a / 127.0f;
	}
}

enum dqn_action dqn_greedy(const struct mlp *net, const float *x)
{
	float hidden[MLP_MAX_UNITS], q[DQN_ACTIONS];
	unsigned best = 0;

	mlp_forward(net, x, hidden, q);
	for (unsigned a = 1; a < DQN_ACTIONS; a++)
		if (q[a] > q[best])
			best = a;
	return (enum dqn_action)best;
}

double dqn_epsilon(double start, double end, double decay, uint64_t decision)
{
	double eps = start * pow(decay, (double)decision);

	return eps > end ? eps : end;
}

/* --- replay buffer ---------------------------------------------------------------- */

int dqn_replay_init(struct dqn_replay *rb, uint32_t capacity, uint32_t n_in)
{
	memset(rb, 0, sizeof(*rb));
	if (!capacity || !n_in)
		return -EINVAL;
	rb->state = calloc((size_t)capacity * n_in, sizeof(float));
	rb->next_state = calloc((size_t)capacity * n_in, sizeof(float));
	rb->reward = calloc(capacity, sizeof(float));
	rb->action = calloc(capacity, 1);
	if (!rb->state || !rb->next_state || !rb->reward || !rb->action) {
		dqn_replay_free(rb);
		return -ENOMEM;
	}
	rb->capacity = capacity;
	rb->n_in = n_in;
	return 0;
}

void dqn_replay_free(struct dqn_replay *rb)
{
	free(rb->state);
	free(rb->next_state);
	free(rb->reward);
	free(rb->action);
	memset(rb, 0, sizeof(*rb));
}

void dqn_replay_push(struct dqn_replay *rb, const float *state, enum dqn_action action, float reward,
		     const float *next_state)
{
	size_t off = (size_t)rb->next * rb->n_in;

	memcpy(rb->state + off, state, rb->n_in * sizeof(float));
	memcpy(rb->next_state + off, next_state, rb->n_in * sizeof(float));
	rb->reward[rb->next] = reward;
	rb->action[rb->next] = (uint8_t)action;
	rb->next = (rb->next + 1) % rb->capacity;
	if (rb->len < rb->capacity)
		rb->len++;
}

void dqn_replay_sample(const struct dqn_replay *rb, struct bsim_rng *rng, uint32_t *idx, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		idx[i] = (uint32_t)bsim_rng_below(rng, rb->len);
}

/* --- scenarios and the environment ----------------------------------------------------- */

struct scenario {
	struct bsim_config cfg;
	uint32_t warmup_rtts;   /* plain CUBIC before the policy takes over */
};

static double log_uniform(struct bsim_rng *rng, double lo, double hi)
{
	return exp(log(lo) + (log(hi) - log(lo)) * bsim_rng_uniform(rng));
}

/*
 * The training and evaluation spread: 5 Mbit/s - 1 Gbit/s, 5 - 200 ms, 0.5 - 4 BDP of
 * buffer (at least 10 packets), random loss 0 or 1e-4 - 2e-2, a quarter with 10-50 %
 * constant-rate cross traffic, a quarter with a rate change (x0.5 - x2) mid-episode.
 */
static void sample_scenario(struct bsim_rng *rng, uint32_t steps, struct scenario *sc)
{
	struct bsim_config *c = &sc->cfg;
	double bdp_pkts, interval_us;

	bsim_config_default(c);
	c->cc = BSIM_CC_CUBIC;
	c->link_bps = (uint64_t)log_uniform(rng, 5e6, 1e9);
	c->base_rtt_us = (uint32_t)log_uniform(rng, 5000, 200000);
	bdp_pkts = bsim_bdp_packets(c) * log_uniform(rng, 0.5, 4.0);
	c->buffer_bytes = (uint64_t)fmax(10.0, round(bdp_pkts)) * c->mss;
	c->loss_rate = bsim_rng_uniform(rng) < 0.5 ? 0.0 : log_uniform(rng, 1e-4, 2e-2);
	if (bsim_rng_uniform(rng) < 0.25)
		c->cross_bps = (uint64_t)(c->link_bps * (0.1 + 0.4 * bsim_rng_uniform(rng)));
	sc->warmup_rtts = 2 + (uint32_t)bsim_rng_below(rng, 40);
	interval_us = dqn_decision_interval_us(bsim_min_rtt_us(c));
	if (bsim_rng_uniform(rng) < 0.25) {
		double at = sc->warmup_rtts * (double)c->base_rtt_us +
			    interval_us * steps * (0.2 + 0.6 * bsim_rng_uniform(rng));

		c->rate_change_at_us = (uint64_t)at;
		c->rate_change_bps = (uint64_t)(c->link_bps * log_uniform(rng, 0.5, 2.0));
	}
	c->seed = bsim_rng_next(rng);
}

struct env {
	struct bsim *sim;
	const struct scenario *sc;
	struct dqn_flow_state fs;
	struct bsim_flow_stats prev_flow;
	struct bsim_link_stats prev_link;
	uint32_t clamp;             /* the policy's current value, packets */
	double raw[DQN_FEATURES];   /* features of the last interval */
	double reward;              /* of the last interval */
	double utilization;
	double rtt_ratio;
	double loss_rate;
};

void dqn_interval_from_sim(const struct bsim_config *cfg, const struct bsim_flow_stats *prev, uint64_t prev_us,
			   const struct bsim_flow_stats *now, const struct bsim_link_stats *link,
			   struct dqn_interval *iv)
{
	*iv = (struct dqn_interval){
		.interval_us = (double)(link->now_us - prev_us),
		.delivered_bytes = (double)(now->delivered_bytes - prev->delivered_bytes),
		.delivered_pkts = (double)(now->delivered_pkts - prev->delivered_pkts),
		.retrans_pkts = (double)(now->retrans_pkts - prev->retrans_pkts),
		.srtt_us = now->srtt_us,
		.rttvar_us = now->rttvar_us,
		.min_rtt_us = now->min_rtt_us,
		.inflight_pkts = now->inflight,
		.cwnd_pkts = now->cwnd,
		.mss = cfg->mss ? cfg->mss : BSIM_DEFAULT_MSS,
		.buffer_occupancy = (double)link->queue_bytes / (double)cfg->buffer_bytes,
	};
}

/* Runs one decision interval and observes it. */
static void env_interval(struct env *e)
{
	struct bsim_flow_stats fl;
	struct bsim_link_stats ln;
	struct dqn_interval iv;
	double avail;
	uint32_t len = dqn_decision_interval_us(e->prev_flow.min_rtt_us);

	bsim_run_until(e->sim, bsim_now_us(e->sim) + len);
	bsim_flow_stats(e->sim, 0, &fl);
	bsim_link_stats(e->sim, &ln);
	dqn_interval_from_sim(&e->sc->cfg, &e->prev_flow, e->prev_link.now_us, &fl, &ln, &iv);
	dqn_flow_observe(&e->fs, &iv, e->raw, &e->reward);
	avail = (double)(ln.capacity_bytes - e->prev_link.capacity_bytes) -
		(double)(ln.cross_delivered_bytes - e->prev_link.cross_delivered_bytes);
	e->utilization = avail > 0 ? fmin(1.0, iv.delivered_bytes / avail) : 1.0;
	e->rtt_ratio = fl.min_rtt_us ? (double)fl.srtt_us / fl.min_rtt_us : 1.0;
	e->loss_rate = e->raw[3];
	e->prev_flow = fl;
	e->prev_link = ln;
}

/* Plain CUBIC for the warm-up, then one interval so there is a first state. */
static int env_start(struct env *e, const struct scenario *sc)
{
	int err;

	memset(e, 0, sizeof(*e));
	e->sc = sc;
	err = bsim_new(&sc->cfg, &e->sim);
	if (err)
		return err;
	dqn_flow_init(&e->fs);
	bsim_run_until(e->sim, (uint64_t)sc->warmup_rtts * sc->cfg.base_rtt_us);
	bsim_flow_stats(e->sim, 0, &e->prev_flow);
	bsim_link_stats(e->sim, &e->prev_link);
	env_interval(e);
	e->clamp = e->prev_flow.cwnd > DQN_MIN_CWND ? e->prev_flow.cwnd : DQN_MIN_CWND;
	return 0;
}

static void env_stop(struct env *e)
{
	bsim_free(e->sim);
	e->sim = NULL;
}

/* The actuator reflexd uses: the policy's cwnd becomes the flow's
 * TCP_BPF_SNDCWND_CLAMP (0 = none), CUBIC runs beneath it. Only a change is
 * written: every write also sets ssthresh, so rewriting an unchanged clamp each
 * step would undo CUBIC's reaction to loss. */
static void env_actuate(struct env *e, uint32_t clamp)
{
	struct bsim_flow_stats fl;

	e->clamp = clamp;
	bsim_flow_stats(e->sim, 0, &fl);
	if (fl.cwnd_clamp != clamp)
		bsim_set_cwnd_clamp(e->sim, 0, clamp);
}

static uint32_t heuristic_clamp(const struct env *e)
{
	double bdp_bytes = flow_max_rate(&e->fs) * e->prev_flow.min_rtt_us / 8e6;
	double pkts = round(DQN_HEURISTIC_BDP_MULTIPLE * bdp_bytes / e->sc->cfg.mss);

	if (pkts < DQN_MIN_CWND)
		return DQN_MIN_CWND;
	return pkts > BSIM_MAX_CWND ? BSIM_MAX_CWND : (uint32_t)pkts;
}

/* What a policy decides with: the float net and/or its int8 model. */
struct policy_nets {
	const struct mlp *net;
	const struct model *model;
};

/* --- the trainer ------------------------------------------------------------------ */

struct dqn_trainer {
	struct dqn_train_opts opts;
	uint32_t n_in;
	struct bsim_rng rng;
	struct mlp online, target;
	struct adam adam;
	struct dqn_replay replay;
	uint32_t episodes_done;
	uint64_t decisions, updates;
	double *episode_reward;   /* mean reward per decision of each episode */
	uint32_t episode_reward_cap;
	double act_max;           /* running max of hidden activations: the int8 step to imitate */
	struct mlp best;          /* the online net at its best validation */
	bool has_best;
	uint32_t best_episode;
	double best_reward;       /* its mean validation reward */
	/* scratch for a training step */
	float *grad;
	uint32_t *batch_idx;
};

void dqn_train_opts_default(struct dqn_train_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->seed = 1;
	opts->episodes = 1000;
	opts->steps_per_episode = 200;
	opts->hidden = 128;
	opts->batch = 64;
	opts->replay_capacity = 50000;
	opts->replay_warmup = 1000;
	opts->target_sync = 500;
	opts->lr = 1e-3f;
	opts->gamma = 0.9f;
	opts->huber_delta = 1.0f;
	opts->advantage_alpha = 0.9f;
	opts->reward_floor = -1.0f;
	opts->weight_clip = 0.3f;
	opts->act_noise = 2.0f;
	opts->validate_every = 50;
	opts->validate_scenarios = 10;
	opts->eps_start = 1.0;
	opts->eps_end = 0.01;
	opts->eps_decay = 0.995;
	opts->eval_scenarios = 40;
	opts->eval_steps = 200;
}

static int check_opts(const struct dqn_train_opts *o, char *err, size_t err_len)
{
	const char *what = NULL;

	if (o->episodes > MAX_EPISODES)
		what = "episodes exceeds 10000000";
	else if (!o->steps_per_episode || o->steps_per_episode > MAX_STEPS)
		what = "steps_per_episode must be in [1, 1000000]";
	else if (!o->hidden || o->hidden > MLP_MAX_UNITS)
		what = "hidden must be in [1, 1024]";
	else if (!o->batch || o->batch > 4096)
		what = "batch must be in [1, 4096]";
	else if (!o->replay_capacity || o->replay_capacity > MAX_REPLAY_CAPACITY)
		what = "replay_capacity must be in [1, 1048576]";
	else if (o->replay_warmup > o->replay_capacity)
		what = "replay_warmup must be <= replay_capacity";
	else if (!o->target_sync)
		what = "target_sync must be >= 1";
	else if (!(o->lr > 0 && o->lr < 1))
		what = "lr must be in (0, 1)";
	else if (!(o->gamma >= 0 && o->gamma < 1))
		what = "gamma must be in [0, 1)";
	else if (!(o->huber_delta > 0 && o->huber_delta < 1e6f))
		what = "huber_delta must be > 0";
	else if (!(o->advantage_alpha >= 0 && o->advantage_alpha < 1))
		what = "advantage_alpha must be in [0, 1)";
	else if (!(o->reward_floor <= 0 && o->reward_floor > -1e6f))
		what = "reward_floor must be in (-1e6, 0]";
	else if (!(o->weight_clip >= 0 && o->weight_clip < 1e6f))
		what = "weight_clip must be in [0, 1e6) (0 = no clipping)";
	else if (!(o->act_noise >= 0 && o->act_noise <= 127))
		what = "act_noise must be in [0, 127] int8 steps";
	else if (o->validate_scenarios > 10000 || (o->validate_every && !o->validate_scenarios))
		what = "validate_scenarios must be in [1, 10000] when validate_every is set";
	else if (!(o->eps_start >= 0 && o->eps_start <= 1) || !(o->eps_end >= 0 && o->eps_end <= o->eps_start))
		what = "epsilon must satisfy 0 <= eps_end <= eps_start <= 1";
	else if (!(o->eps_decay > 0 && o->eps_decay <= 1))
		what = "eps_decay must be in (0, 1]";
	else if (o->eval_scenarios > 100000 || o->eval_steps > MAX_STEPS ||
		 (o->eval_scenarios && !o->eval_steps))
		what = "eval_scenarios/eval_steps out of range";
	if (what) {
		set_err(err, err_len, "train-dqn: %s", what);
		return -EINVAL;
	}
	return 0;
}

int dqn_trainer_new(const struct dqn_train_opts *opts, struct dqn_trainer **out, char *err,
		    size_t err_len)
{
	struct dqn_trainer *tr;
	int ret;

	*out = NULL;
	ret = check_opts(opts, err, err_len);
	if (ret)
		return ret;
	tr = calloc(1, sizeof(*tr));
	if (!tr)
		goto oom;
	tr->opts = *opts;
	tr->n_in = opts->seed_features_only ? DQN_SEED_FEATURES : DQN_FEATURES;
	bsim_rng_seed(&tr->rng, opts->seed);
	if (mlp_init(&tr->online, tr->n_in, opts->hidden, DQN_ACTIONS, &tr->rng) ||
	    mlp_init(&tr->target, tr->n_in, opts->hidden, DQN_ACTIONS, NULL) ||
	    mlp_init(&tr->best, tr->n_in, opts->hidden, DQN_ACTIONS, NULL) ||
	    adam_init(&tr->adam, tr->online.n_params, opts->lr) ||
	    dqn_replay_init(&tr->replay, opts->replay_capacity, tr->n_in))
		goto oom;
	mlp_copy(&tr->target, &tr->online);
	tr->grad = calloc(tr->online.n_params, sizeof(float));
	tr->batch_idx = calloc(opts->batch, sizeof(uint32_t));
	if (!tr->grad || !tr->batch_idx)
		goto oom;
	*out = tr;
	return 0;
oom:
	dqn_trainer_free(tr);
	set_err(err, err_len, "train-dqn: out of memory");
	return -ENOMEM;
}

void dqn_trainer_free(struct dqn_trainer *tr)
{
	if (!tr)
		return;
	mlp_free(&tr->online);
	mlp_free(&tr->target);
	mlp_free(&tr->best);
	adam_free(&tr->adam);
	dqn_replay_free(&tr->replay);
	free(tr->episode_reward);
	free(tr->grad);
	free(tr->batch_idx);
	free(tr);
}

const struct mlp *dqn_trainer_net(const struct dqn_trainer *tr)
{
	return &tr->online;
}

const struct mlp *dqn_trainer_policy(const struct dqn_trainer *tr)
{
	return tr->has_best ? &tr->best : &tr->online;
}

static float huber_grad(float delta, float k)
{
	return delta > k ? k : delta < -k ? -k : delta;
}

/* Bounded weights keep one per-layer int8 scale fine enough for all of them:
 * without it a few large weights on narrow inputs set the scale and the argmax
 * of the int8 export disagrees with the float net on a third of the states. */
static void clip_weights(struct mlp *net, float limit)
{
	size_t n1 = (size_t)net->n_hidden * net->n_in, n2 = (size_t)net->n_out * net->n_hidden;

	if (!(limit > 0))
		return;
	for (size_t k = 0; k < n1; k++)
		net->w1[k] = fmaxf(-limit, fminf(limit, net->w1[k]));
	for (size_t k = 0; k < n2; k++)
		net->w2[k] = fmaxf(-limit, fminf(limit, net->w2[k]));
}

/*
 * Trains the output layer on hidden activations perturbed by act_noise int8 steps
 * (uniform, step = running max / 127, the scale the int8 export will use), so
 * the argmax does not hinge on differences the int8 hidden layer cannot hold.
 */
static void perturb_hidden(struct dqn_trainer *tr, float *hidden, float *q)
{
	uint32_t n_hidden = tr->online.n_hidden;
	float batch_max = 0, step;

	for (uint32_t h = 0; h < n_hidden; h++)
		batch_max = fmaxf(batch_max, hidden[h]);
	tr->act_max = tr->act_max > 0 ? 0.999 * tr->act_max + 0.001 * batch_max : batch_max;
	step = (float)(tr->act_max / 127.0) * tr->opts.act_noise;
	for (uint32_t h = 0; h < n_hidden; h++)
		if (hidden[h] > 0)
			hidden[h] = fmaxf(0.0f, hidden[h] + (float)(bsim_rng_uniform(&tr->rng) - 0.5) * step);
	mlp_output(&tr->online, hidden, q);
}

/* One Double-DQN update on a replay batch: the online net picks the next action,
 * the target net values it. */
static void train_step(struct dqn_trainer *tr)
{
	const struct dqn_replay *rb = &tr->replay;
	uint32_t n_in = tr->n_in, batch = tr->opts.batch;
	float hidden[MLP_MAX_UNITS], q[DQN_ACTIONS], q_next[DQN_ACTIONS], q_tgt[DQN_ACTIONS];
	float dout[DQN_ACTIONS];

	dqn_replay_sample(rb, &tr->rng, tr->batch_idx, batch);
	memset(tr->grad, 0, tr->online.n_params * sizeof(float));
	for (uint32_t j = 0; j < batch; j++) {
		uint32_t i = tr->batch_idx[j];
		const float *s = rb->state + (size_t)i * n_in;
		const float *s2 = rb->next_state + (size_t)i * n_in;
		unsigned a = rb->action[i], best = 0;
		float y;

		mlp_forward(&tr->online, s2, hidden, q_next);
		for (unsigned b = 1; b < DQN_ACTIONS; b++)
			if (q_next[b] > q_next[best])
				best = b;
		mlp_forward(&tr->target, s2, hidden, q_tgt);
		y = fmaxf(rb->reward[i], tr->opts.reward_floor) + tr->opts.gamma * q_tgt[best];
		if (tr->opts.advantage_alpha > 0) {
			/* Advantage learning (Bellemare et al. 2016): the same greedy policy,
			 * action gaps widened by 1 / (1 - alpha), so that int8 rounding does
			 * not flip the argmax. */
			float q_s[DQN_ACTIONS], v_s;

			mlp_forward(&tr->target, s, hidden, q_s);
			v_s = q_s[0];
			for (unsigned b = 1; b < DQN_ACTIONS; b++)
				v_s = q_s[b] > v_s ? q_s[b] : v_s;
			y -= tr->opts.advantage_alpha * (v_s - q_s[a]);
		}
		mlp_forward(&tr->online, s, hidden, q);
		if (tr->opts.act_noise > 0)
			perturb_hidden(tr, hidden, q);
		memset(dout, 0, sizeof(dout));
		dout[a] = huber_grad(q[a] - y, tr->opts.huber_delta) / (float)batch;
		mlp_backward(&tr->online, s, hidden, dout, tr->grad);
	}
	adam_step(&tr->adam, tr->online.params, tr->grad);
	clip_weights(&tr->online, tr->opts.weight_clip);
	tr->updates++;
	if (tr->updates % tr->opts.target_sync == 0)
		mlp_copy(&tr->target, &tr->online);
}

static int record_episode(struct dqn_trainer *tr, double mean_reward)
{
	if (tr->episodes_done == tr->episode_reward_cap) {
		uint32_t cap = tr->episode_reward_cap ? tr->episode_reward_cap * 2 : 256;
		double *r = realloc(tr->episode_reward, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		tr->episode_reward = r;
		tr->episode_reward_cap = cap;
	}
	tr->episode_reward[tr->episodes_done++] = mean_reward;
	return 0;
}

int dqn_trainer_set_net(struct dqn_trainer *tr, const struct mlp *net)
{
	if (net->n_in != tr->online.n_in || net->n_hidden != tr->online.n_hidden ||
	    net->n_out != tr->online.n_out)
		return -EINVAL;
	mlp_copy(&tr->online, net);
	mlp_copy(&tr->target, net);
	mlp_copy(&tr->best, net);
	return 0;
}

bool dqn_trainer_observe(struct dqn_trainer *tr, const float *s, enum dqn_action a, float reward,
			 const float *s2)
{
	dqn_replay_push(&tr->replay, s, a, reward, s2);
	tr->decisions++;
	if (tr->replay.len < tr->opts.replay_warmup)
		return false;
	train_step(tr);
	return true;
}

static int run_episode(struct dqn_trainer *tr)
{
	struct scenario sc;
	struct env e;
	float s[DQN_FEATURES], s2[DQN_FEATURES];
	double sum = 0;
	uint32_t steps = tr->opts.steps_per_episode;
	int err;

	sample_scenario(&tr->rng, steps, &sc);
	err = env_start(&e, &sc);
	if (err)
		return err;
	dqn_normalize(e.raw, tr->n_in, s);
	for (uint32_t t = 0; t < steps; t++) {
		double eps = dqn_epsilon(tr->opts.eps_start, tr->opts.eps_end, tr->opts.eps_decay,
					 tr->decisions);
		enum dqn_action a;

		if (bsim_rng_uniform(&tr->rng) < eps)
			a = (enum dqn_action)bsim_rng_below(&tr->rng, DQN_ACTIONS);
		else
			a = dqn_greedy(&tr->online, s);
		env_actuate(&e, dqn_apply_action(a, e.clamp));
		env_interval(&e);
		dqn_normalize(e.raw, tr->n_in, s2);
		/* No terminal state: an episode end is a time limit, so bootstrap from s2. */
		dqn_trainer_observe(tr, s, a, (float)e.reward, s2);
		sum += e.reward;
		memcpy(s, s2, sizeof(s));
	}
	env_stop(&e);
	return record_episode(tr, sum / steps);
}

static double recent_reward(const struct dqn_trainer *tr)
{
	uint32_t n = tr->episodes_done / 10 ? tr->episodes_done / 10 : tr->episodes_done;
	double sum = 0;

	for (uint32_t i = tr->episodes_done - n; i < tr->episodes_done; i++)
		sum += tr->episode_reward[i];
	return n ? sum / n : 0;
}

static void show_progress(const struct dqn_trainer *tr, uint32_t target)
{
	if (!tr->opts.progress || !isatty(STDERR_FILENO))
		return;
	fprintf(stderr, "\rtrain-dqn: episode %u/%u  decisions %llu  epsilon %.3f  reward %.3f   ",
		tr->episodes_done, target, (unsigned long long)tr->decisions,
		dqn_epsilon(tr->opts.eps_start, tr->opts.eps_end, tr->opts.eps_decay, tr->decisions),
		recent_reward(tr));
	if (tr->episodes_done == target)
		fputc('\n', stderr);
}

static int evaluate_stream(const struct policy_nets *nets, uint64_t stream, uint32_t n_scenarios,
			   uint32_t steps, struct dqn_policy_eval eval[DQN_POLICY_COUNT]);

/* Keep the online net if it does best so far on the validation scenarios. */
static int validate(struct dqn_trainer *tr)
{
	struct policy_nets nets = { .net = &tr->online };
	struct dqn_policy_eval eval[DQN_POLICY_COUNT];
	int ret = evaluate_stream(&nets, tr->opts.seed ^ VALID_STREAM, tr->opts.validate_scenarios,
				  tr->opts.steps_per_episode, eval);

	if (ret)
		return ret;
	if (!tr->has_best || eval[DQN_POLICY_DQN].reward > tr->best_reward) {
		mlp_copy(&tr->best, &tr->online);
		tr->has_best = true;
		tr->best_reward = eval[DQN_POLICY_DQN].reward;
		tr->best_episode = tr->episodes_done;
	}
	return 0;
}

int dqn_trainer_run(struct dqn_trainer *tr, uint32_t episodes, char *err, size_t err_len)
{
	int ret;

	if (episodes > MAX_EPISODES) {
		set_err(err, err_len, "train-dqn: episodes exceeds %u", MAX_EPISODES);
		return -EINVAL;
	}
	while (tr->episodes_done < episodes) {
		ret = run_episode(tr);
		if (ret) {
			set_err(err, err_len, "train-dqn: episode %u: %s", tr->episodes_done, strerror(-ret));
			return ret;
		}
		if (tr->opts.validate_every && tr->episodes_done % tr->opts.validate_every == 0) {
			ret = validate(tr);
			if (ret) {
				set_err(err, err_len, "train-dqn: validation after episode %u: %s",
					tr->episodes_done, strerror(-ret));
				return ret;
			}
		}
		show_progress(tr, episodes);
		if (tr->opts.checkpoint_path && tr->opts.checkpoint_every &&
		    tr->episodes_done % tr->opts.checkpoint_every == 0 && tr->episodes_done < episodes) {
			ret = dqn_checkpoint_save(tr, tr->opts.checkpoint_path, err, err_len);
			if (ret)
				return ret;
		}
	}
	return 0;
}

void dqn_trainer_report(const struct dqn_trainer *tr, struct dqn_report *rep)
{
	rep->episodes = tr->episodes_done;
	rep->decisions = tr->decisions;
	rep->updates = tr->updates;
	rep->epsilon = dqn_epsilon(tr->opts.eps_start, tr->opts.eps_end, tr->opts.eps_decay, tr->decisions);
	rep->train_reward = recent_reward(tr);
	rep->best_episode = tr->has_best ? tr->best_episode : tr->episodes_done;
	rep->validation_reward = tr->has_best ? tr->best_reward : NAN;
}

/* --- evaluation ------------------------------------------------------------------- */

enum dqn_action dqn_int8_action(const struct model *m, const double *raw, const int *map)
{
	int32_t value[MODEL_MAX_OUTPUTS];

	model_decide(m, raw, map, value);
	return (enum dqn_action)model_argmax(value, m->output_count);
}

static uint32_t policy_clamp(enum dqn_policy p, const struct policy_nets *nets, const struct env *e)
{
	float x[DQN_FEATURES];

	switch (p) {
	case DQN_POLICY_DQN:
		dqn_normalize(e->raw, nets->net->n_in, x);
		return dqn_apply_action(dqn_greedy(nets->net, x), e->clamp);
	case DQN_POLICY_DQN_INT8:
		return dqn_apply_action(dqn_int8_action(nets->model, e->raw, NULL), e->clamp);
	case DQN_POLICY_HEURISTIC:
		return heuristic_clamp(e);
	case DQN_POLICY_FIXED:
		return DQN_FIXED_CLAMP_PKTS;
	case DQN_POLICY_CUBIC:
	default:
		return 0;
	}
}

/* Runs one policy on one scenario; per decision, calls visit (if any) with the
 * state the policy decided on. */
static int run_policy(enum dqn_policy p, const struct policy_nets *nets, const struct scenario *sc,
		      uint32_t steps, struct dqn_policy_eval *sum, void (*visit)(void *, const double *),
		      void *ctx)
{
	struct env e;
	int err = env_start(&e, sc);

	if (err)
		return err;
	for (uint32_t t = 0; t < steps; t++) {
		if (visit)
			visit(ctx, e.raw);
		env_actuate(&e, policy_clamp(p, nets, &e));
		env_interval(&e);
		sum->reward += e.reward;
		sum->utilization += e.utilization;
		sum->rtt_ratio += e.rtt_ratio;
		sum->loss_rate += e.loss_rate;
	}
	env_stop(&e);
	return 0;
}

static bool policy_available(enum dqn_policy p, const struct policy_nets *nets)
{
	if (p == DQN_POLICY_DQN)
		return nets->net;
	if (p == DQN_POLICY_DQN_INT8)
		return nets->model;
	return true;
}

/* Every available policy on the same n_scenarios scenarios of one stream. */
static int evaluate_stream(const struct policy_nets *nets, uint64_t stream, uint32_t n_scenarios,
			   uint32_t steps, struct dqn_policy_eval eval[DQN_POLICY_COUNT])
{
	struct bsim_rng rng;
	double n = (double)n_scenarios * steps;

	memset(eval, 0, sizeof(*eval) * DQN_POLICY_COUNT);
	if (!n_scenarios || !steps)
		return -EINVAL;
	bsim_rng_seed(&rng, stream);
	for (uint32_t k = 0; k < n_scenarios; k++) {
		struct scenario sc;

		sample_scenario(&rng, steps, &sc);
		for (int p = 0; p < DQN_POLICY_COUNT; p++) {
			int err;

			if (!policy_available((enum dqn_policy)p, nets))
				continue;
			err = run_policy((enum dqn_policy)p, nets, &sc, steps, &eval[p], NULL, NULL);
			if (err)
				return err;
		}
	}
	for (int p = 0; p < DQN_POLICY_COUNT; p++) {
		eval[p].reward /= n;
		eval[p].utilization /= n;
		eval[p].rtt_ratio /= n;
		eval[p].loss_rate /= n;
	}
	return 0;
}

int dqn_evaluate(const struct mlp *net, const struct model *m, uint64_t seed, uint32_t n_scenarios,
		 uint32_t steps, struct dqn_policy_eval eval[DQN_POLICY_COUNT])
{
	struct policy_nets nets = { .net = net, .model = m };

	return evaluate_stream(&nets, seed ^ EVAL_STREAM, n_scenarios, steps, eval);
}

struct state_sink {
	double *raw;
	size_t max, n;
};

static void collect_state(void *ctx, const double *raw)
{
	struct state_sink *sink = ctx;

	if (sink->n < sink->max)
		memcpy(sink->raw + sink->n++ * DQN_FEATURES, raw, DQN_FEATURES * sizeof(double));
}

static int collect_stream(const struct mlp *net, uint64_t stream, uint32_t n_scenarios, uint32_t steps,
			  double *raw_states, size_t max_states, size_t *n_states)
{
	struct state_sink sink = { .raw = raw_states, .max = max_states };
	struct policy_nets nets = { .net = net };
	struct bsim_rng rng;

	*n_states = 0;
	bsim_rng_seed(&rng, stream);
	for (uint32_t k = 0; k < n_scenarios && sink.n < sink.max; k++) {
		struct dqn_policy_eval unused = { 0 };
		struct scenario sc;
		int err;

		sample_scenario(&rng, steps, &sc);
		err = run_policy(DQN_POLICY_DQN, &nets, &sc, steps, &unused, collect_state, &sink);
		if (err)
			return err;
	}
	*n_states = sink.n;
	return 0;
}

int dqn_collect_states(const struct mlp *net, uint64_t seed, uint32_t n_scenarios, uint32_t steps,
		       double *raw_states, size_t max_states, size_t *n_states)
{
	return collect_stream(net, seed ^ EVAL_STREAM, n_scenarios, steps, raw_states, max_states, n_states);
}

/* --- checkpoints ------------------------------------------------------------------- */

struct wbuf {
	uint8_t *data;
	size_t len, cap;
	bool oom;
};

static void put_bytes(struct wbuf *w, const void *p, size_t n)
{
	if (w->oom)
		return;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		uint8_t *data;

		while (cap < w->len + n)
			cap *= 2;
		data = realloc(w->data, cap);
		if (!data) {
			w->oom = true;
			return;
		}
		w->data = data;
		w->cap = cap;
	}
	memcpy(w->data + w->len, p, n);
	w->len += n;
}

static void put_u64(struct wbuf *w, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put_bytes(w, b, 8);
}

static void put_u32(struct wbuf *w, uint32_t v)
{
	uint8_t b[4];

	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put_bytes(w, b, 4);
}

static void put_f32(struct wbuf *w, float f)
{
	uint32_t v;

	memcpy(&v, &f, sizeof(v));
	put_u32(w, v);
}

static void put_f64(struct wbuf *w, double d)
{
	uint64_t v;

	memcpy(&v, &d, sizeof(v));
	put_u64(w, v);
}

static void put_f32s(struct wbuf *w, const float *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put_f32(w, f[i]);
}

static void serialize(const struct dqn_trainer *tr, struct wbuf *w)
{
	const struct dqn_train_opts *o = &tr->opts;
	const struct dqn_replay *rb = &tr->replay;
	size_t n = tr->online.n_params;

	put_bytes(w, CHECKPOINT_MAGIC, 4);
	put_u32(w, DQN_CHECKPOINT_VERSION);
	put_u64(w, o->seed);
	put_u32(w, o->steps_per_episode);
	put_u32(w, o->hidden);
	put_u32(w, o->batch);
	put_u32(w, o->replay_capacity);
	put_u32(w, o->replay_warmup);
	put_u32(w, o->target_sync);
	put_f32(w, o->lr);
	put_f32(w, o->gamma);
	put_f32(w, o->huber_delta);
	put_f32(w, o->advantage_alpha);
	put_f32(w, o->reward_floor);
	put_f32(w, o->weight_clip);
	put_f32(w, o->act_noise);
	put_u32(w, o->validate_every);
	put_u32(w, o->validate_scenarios);
	put_f64(w, o->eps_start);
	put_f64(w, o->eps_end);
	put_f64(w, o->eps_decay);
	put_u32(w, o->seed_features_only);
	put_u32(w, tr->n_in);
	put_u32(w, DQN_ACTIONS);
	put_u32(w, tr->episodes_done);
	put_u64(w, tr->decisions);
	put_u64(w, tr->updates);
	for (int i = 0; i < 4; i++)
		put_u64(w, tr->rng.s[i]);
	put_f32s(w, tr->online.params, n);
	put_f32s(w, tr->target.params, n);
	put_u64(w, tr->adam.t);
	put_f32s(w, tr->adam.m, n);
	put_f32s(w, tr->adam.v, n);
	put_f64(w, tr->act_max);
	put_u32(w, tr->has_best);
	put_u32(w, tr->best_episode);
	put_f64(w, tr->best_reward);
	put_f32s(w, tr->best.params, n);
	put_u32(w, rb->len);
	put_u32(w, rb->next);
	put_f32s(w, rb->state, (size_t)rb->len * rb->n_in);
	put_f32s(w, rb->next_state, (size_t)rb->len * rb->n_in);
	put_f32s(w, rb->reward, rb->len);
	put_bytes(w, rb->action, rb->len);
	for (uint32_t i = 0; i < tr->episodes_done; i++)
		put_f64(w, tr->episode_reward[i]);
	put_u32(w, (uint32_t)crc32(0L, w->data, (uInt)w->len));
}

static int write_file_atomic(const char *path, const uint8_t *data, size_t len, char *err, size_t err_len)
{
	char tmp[4096];
	size_t off = 0;
	int fd, ret;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp)) {
		set_err(err, err_len, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	fd = mkstemp(tmp);
	if (fd < 0) {
		ret = -errno;
		set_err(err, err_len, "%s: cannot create a temporary file: %s", path, strerror(errno));
		return ret;
	}
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			set_err(err, err_len, "%s: write: %s", tmp, strerror(-ret));
			goto fail;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0) {
		ret = -errno;
		set_err(err, err_len, "%s: fsync: %s", tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		ret = -errno;
		set_err(err, err_len, "%s: close: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		ret = -errno;
		set_err(err, err_len, "%s: rename to %s: %s", tmp, path, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return ret;
}

int dqn_checkpoint_save(const struct dqn_trainer *tr, const char *path, char *err, size_t err_len)
{
	struct wbuf w = { 0 };
	int ret;

	serialize(tr, &w);
	if (w.oom) {
		free(w.data);
		set_err(err, err_len, "%s: out of memory serializing the checkpoint", path);
		return -ENOMEM;
	}
	ret = write_file_atomic(path, w.data, w.len, err, err_len);
	free(w.data);
	return ret;
}

struct rbuf {
	const uint8_t *data;
	size_t len, off;
	const char *name; /* for messages */
	char *err;
	size_t err_len;
};

static int short_read(struct rbuf *r, const char *field)
{
	set_err(r->err, r->err_len, "%s: byte %zu: truncated reading %s", r->name, r->off, field);
	return -EINVAL;
}

static int get_u32(struct rbuf *r, const char *field, uint32_t *v)
{
	if (r->len - r->off < 4)
		return short_read(r, field);
	*v = 0;
	for (int i = 0; i < 4; i++)
		*v |= (uint32_t)r->data[r->off + i] << (8 * i);
	r->off += 4;
	return 0;
}

static int get_u64(struct rbuf *r, const char *field, uint64_t *v)
{
	if (r->len - r->off < 8)
		return short_read(r, field);
	*v = 0;
	for (int i = 0; i < 8; i++)
		*v |= (uint64_t)r->data[r->off + i] << (8 * i);
	r->off += 8;
	return 0;
}

static int bad_value(struct rbuf *r, size_t at, const char *field)
{
	set_err(r->err, r->err_len, "%s: byte %zu: %s is not a finite number", r->name, at, field);
	return -EINVAL;
}

static int get_f32(struct rbuf *r, const char *field, float *f)
{
	size_t at = r->off;
	uint32_t v;
	int ret = get_u32(r, field, &v);

	if (ret)
		return ret;
	memcpy(f, &v, sizeof(*f));
	return isfinite(*f) ? 0 : bad_value(r, at, field);
}

static int get_f64(struct rbuf *r, const char *field, double *d)
{
	size_t at = r->off;
	uint64_t v;
	int ret = get_u64(r, field, &v);

	if (ret)
		return ret;
	memcpy(d, &v, sizeof(*d));
	return isfinite(*d) ? 0 : bad_value(r, at, field);
}

static int get_f32s(struct rbuf *r, const char *field, float *f, size_t n)
{
	if ((r->len - r->off) / 4 < n)
		return short_read(r, field);
	for (size_t i = 0; i < n; i++) {
		int ret = get_f32(r, field, &f[i]);

		if (ret)
			return ret;
	}
	return 0;
}

static int mismatch(struct rbuf *r, size_t at, const char *what)
{
	set_err(r->err, r->err_len, "%s: byte %zu: %s", r->name, at, what);
	return -EINVAL;
}

static int read_opts(struct rbuf *r, struct dqn_train_opts *o)
{
	uint32_t flag;
	size_t at;
	int ret = 0;

	ret = ret ?: get_u64(r, "seed", &o->seed);
	ret = ret ?: get_u32(r, "steps_per_episode", &o->steps_per_episode);
	ret = ret ?: get_u32(r, "hidden", &o->hidden);
	ret = ret ?: get_u32(r, "batch", &o->batch);
	ret = ret ?: get_u32(r, "replay_capacity", &o->replay_capacity);
	ret = ret ?: get_u32(r, "replay_warmup", &o->replay_warmup);
	ret = ret ?: get_u32(r, "target_sync", &o->target_sync);
	ret = ret ?: get_f32(r, "lr", &o->lr);
	ret = ret ?: get_f32(r, "gamma", &o->gamma);
	ret = ret ?: get_f32(r, "huber_delta", &o->huber_delta);
	ret = ret ?: get_f32(r, "advantage_alpha", &o->advantage_alpha);
	ret = ret ?: get_f32(r, "reward_floor", &o->reward_floor);
	ret = ret ?: get_f32(r, "weight_clip", &o->weight_clip);
	ret = ret ?: get_f32(r, "act_noise", &o->act_noise);
	ret = ret ?: get_u32(r, "validate_every", &o->validate_every);
	ret = ret ?: get_u32(r, "validate_scenarios", &o->validate_scenarios);
	ret = ret ?: get_f64(r, "eps_start", &o->eps_start);
	ret = ret ?: get_f64(r, "eps_end", &o->eps_end);
	ret = ret ?: get_f64(r, "eps_decay", &o->eps_decay);
	at = r->off;
	ret = ret ?: get_u32(r, "seed_features_only", &flag);
	if (ret)
		return ret;
	if (flag > 1)
		return mismatch(r, at, "seed_features_only must be 0 or 1");
	o->seed_features_only = flag;
	return 0;
}

static int read_state(struct rbuf *r, struct dqn_trainer *tr)
{
	struct dqn_replay *rb = &tr->replay;
	size_t n = tr->online.n_params, at;
	uint32_t n_in, n_out, len, next, has_best;
	int ret = 0;

	at = r->off;
	ret = ret ?: get_u32(r, "n_in", &n_in);
	ret = ret ?: get_u32(r, "n_out", &n_out);
	if (ret)
		return ret;
	if (n_in != tr->n_in || n_out != DQN_ACTIONS)
		return mismatch(r, at, "network shape does not match seed_features_only and the 6 actions");
	at = r->off;
	ret = ret ?: get_u32(r, "episodes_done", &tr->episodes_done);
	ret = ret ?: get_u64(r, "decisions", &tr->decisions);
	ret = ret ?: get_u64(r, "updates", &tr->updates);
	if (ret)
		return ret;
	if (tr->episodes_done > MAX_EPISODES ||
	    tr->decisions != (uint64_t)tr->episodes_done * tr->opts.steps_per_episode ||
	    tr->updates > tr->decisions)
		return mismatch(r, at, "episodes_done, decisions and updates are inconsistent");
	for (int i = 0; i < 4 && !ret; i++)
		ret = get_u64(r, "rng", &tr->rng.s[i]);
	ret = ret ?: get_f32s(r, "online network", tr->online.params, n);
	ret = ret ?: get_f32s(r, "target network", tr->target.params, n);
	ret = ret ?: get_u64(r, "adam step", &tr->adam.t);
	ret = ret ?: get_f32s(r, "adam first moment", tr->adam.m, n);
	ret = ret ?: get_f32s(r, "adam second moment", tr->adam.v, n);
	if (ret)
		return ret;
	if (tr->adam.t != tr->updates)
		return mismatch(r, r->off, "adam step differs from the update count");
	ret = get_f64(r, "act_max", &tr->act_max);
	if (ret)
		return ret;
	at = r->off;
	ret = ret ?: get_u32(r, "has_best", &has_best);
	ret = ret ?: get_u32(r, "best_episode", &tr->best_episode);
	ret = ret ?: get_f64(r, "best_reward", &tr->best_reward);
	ret = ret ?: get_f32s(r, "best network", tr->best.params, n);
	if (ret)
		return ret;
	if (has_best > 1 || tr->best_episode > tr->episodes_done || tr->act_max < 0)
		return mismatch(r, at, "has_best/best_episode/act_max are inconsistent");
	tr->has_best = has_best;
	at = r->off;
	ret = ret ?: get_u32(r, "replay length", &len);
	ret = ret ?: get_u32(r, "replay next", &next);
	if (ret)
		return ret;
	if (len > rb->capacity || next >= rb->capacity || (len < rb->capacity && next != len) ||
	    len > tr->decisions)
		return mismatch(r, at, "replay length/next do not fit replay_capacity");
	rb->len = len;
	rb->next = next;
	ret = ret ?: get_f32s(r, "replay states", rb->state, (size_t)len * rb->n_in);
	ret = ret ?: get_f32s(r, "replay next states", rb->next_state, (size_t)len * rb->n_in);
	ret = ret ?: get_f32s(r, "replay rewards", rb->reward, len);
	if (ret)
		return ret;
	if (r->len - r->off < len)
		return short_read(r, "replay actions");
	for (uint32_t i = 0; i < len; i++) {
		if (r->data[r->off + i] >= DQN_ACTIONS)
			return mismatch(r, r->off + i, "replay action is not one of the 6 actions");
		rb->action[i] = r->data[r->off + i];
	}
	r->off += len;
	return 0;
}

static int read_episode_rewards(struct rbuf *r, struct dqn_trainer *tr)
{
	uint32_t n = tr->episodes_done;

	if ((r->len - r->off) / 8 < n)
		return short_read(r, "episode rewards");
	tr->episode_reward = calloc(n ? n : 1, sizeof(double));
	if (!tr->episode_reward)
		return -ENOMEM;
	tr->episode_reward_cap = n ? n : 1;
	for (uint32_t i = 0; i < n; i++) {
		int ret = get_f64(r, "episode reward", &tr->episode_reward[i]);

		if (ret)
			return ret;
	}
	return 0;
}

static int check_header(struct rbuf *r)
{
	uint32_t version, stored, computed;
	size_t body = r->len - 4;

	if (r->len < 12)
		return mismatch(r, 0, "too short for a DQN checkpoint (magic, version, CRC)");
	if (memcmp(r->data, CHECKPOINT_MAGIC, 4) != 0)
		return mismatch(r, 0, "bad magic (not a reflex DQN checkpoint)");
	r->off = 4;
	get_u32(r, "version", &version);
	if (version != DQN_CHECKPOINT_VERSION) {
		set_err(r->err, r->err_len, "%s: byte 4: checkpoint version %u is not supported (this build reads %u)",
			r->name, version, DQN_CHECKPOINT_VERSION);
		return -EINVAL;
	}
	stored = (uint32_t)r->data[body] | (uint32_t)r->data[body + 1] << 8 |
		 (uint32_t)r->data[body + 2] << 16 | (uint32_t)r->data[body + 3] << 24;
	computed = (uint32_t)crc32(0L, r->data, (uInt)body);
	if (stored != computed) {
		set_err(r->err, r->err_len, "%s: byte %zu: CRC mismatch (stored 0x%08x, computed 0x%08x): file is corrupt",
			r->name, body, stored, computed);
		return -EINVAL;
	}
	r->len = body; /* the fields end where the CRC starts */
	return 0;
}

static int load_buffer(const void *data, size_t len, const char *name, const struct dqn_train_opts *opts,
		       struct dqn_trainer **out, char *err, size_t err_len)
{
	struct rbuf r = { .data = data, .len = len, .name = name, .err = err, .err_len = err_len };
	struct dqn_train_opts o;
	struct dqn_trainer *tr = NULL;
	char why[200];
	size_t at;
	int ret;

	*out = NULL;
	ret = check_header(&r);
	if (ret)
		return ret;
	if (opts)
		o = *opts;
	else
		dqn_train_opts_default(&o);
	at = r.off;
	ret = read_opts(&r, &o);
	if (ret)
		return ret;
	if (check_opts(&o, why, sizeof(why)))
		return mismatch(&r, at, why);
	ret = dqn_trainer_new(&o, &tr, err, err_len);
	if (ret)
		return ret;
	ret = read_state(&r, tr);
	if (!ret)
		ret = read_episode_rewards(&r, tr);
	if (!ret && r.off != r.len)
		ret = mismatch(&r, r.off, "unexpected bytes after the last field");
	if (ret) {
		if (ret == -ENOMEM)
			set_err(err, err_len, "%s: out of memory", name);
		dqn_trainer_free(tr);
		return ret;
	}
	*out = tr;
	return 0;
}

int dqn_checkpoint_load_buffer(const void *data, size_t len, const struct dqn_train_opts *opts,
			       struct dqn_trainer **out, char *err, size_t err_len)
{
	return load_buffer(data, len, "checkpoint", opts, out, err, err_len);
}

int dqn_checkpoint_load(const char *path, const struct dqn_train_opts *opts, struct dqn_trainer **out,
			char *err, size_t err_len)
{
	uint8_t *data = NULL;
	struct stat st;
	size_t off = 0;
	int fd, ret;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		set_err(err, err_len, "%s: %s", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)(1ULL << 31)) {
		ret = -EINVAL;
		set_err(err, err_len, "%s: not a regular file of at most 2 GiB", path);
		goto out;
	}
	data = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!data) {
		ret = -ENOMEM;
		set_err(err, err_len, "%s: out of memory", path);
		goto out;
	}
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, data + off, (size_t)st.st_size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			set_err(err, err_len, "%s: read: %s", path, n < 0 ? strerror(errno) : "file shrank");
			goto out;
		}
		off += (size_t)n;
	}
	ret = load_buffer(data, off, path, opts, out, err, err_len);
out:
	free(data);
	close(fd);
	return ret;
}

/* --- export to `.reflex` -------------------------------------------------------------- */

/*
 * Subtract from every action's output the same function of the state (per hidden
 * unit the midpoint of its outgoing weights, and the midpoint of the biases). The
 * argmax is unchanged, but the outputs lose the large state value they share, so
 * the last layer's int8 scale resolves the small gaps between actions.
 */
static void center_outputs(float *w2, float *b2, uint32_t n_hidden)
{
	for (uint32_t h = 0; h <= n_hidden; h++) {
		float *col = h < n_hidden ? w2 + h : b2;
		size_t stride = h < n_hidden ? n_hidden : 1;
		float lo = col[0], hi = col[0];

		for (unsigned a = 1; a < DQN_ACTIONS; a++) {
			lo = fminf(lo, col[a * stride]);
			hi = fmaxf(hi, col[a * stride]);
		}
		for (unsigned a = 0; a < DQN_ACTIONS; a++)
			col[a * stride] -= (lo + hi) / 2;
	}
}

/*
 * Cross-layer equalization (Nagel et al. 2019): ReLU(x / s) = ReLU(x) / s for s > 0,
 * so scaling hidden unit h's incoming weights and bias by 1 / s_h and its outgoing
 * weights by s_h leaves the function unchanged. s_h = sqrt(r1_h / r2_h) gives both
 * sides the same range, so one per-layer int8 scale suits every unit.
 */
static void equalize_hidden(float *w1, float *b1, float *w2, uint32_t n_in, uint32_t n_hidden)
{
	for (uint32_t h = 0; h < n_hidden; h++) {
		float r1 = 0, r2 = 0, scale;

		for (uint32_t i = 0; i < n_in; i++)
			r1 = fmaxf(r1, fabsf(w1[(size_t)h * n_in + i]));
		for (unsigned a = 0; a < DQN_ACTIONS; a++)
			r2 = fmaxf(r2, fabsf(w2[(size_t)a * n_hidden + h]));
		if (!(r1 > 0 && r2 > 0))
			continue;
		scale = sqrtf(r1 / r2);
		for (uint32_t i = 0; i < n_in; i++)
			w1[(size_t)h * n_in + i] /= scale;
		b1[h] /= scale;
		for (unsigned a = 0; a < DQN_ACTIONS; a++)
			w2[(size_t)a * n_hidden + h] *= scale;
	}
}

int dqn_build_model(const struct mlp *net, const float *calib, size_t n_calib, bool equalize,
		    struct model **out, char *err, size_t err_len)
{
	float w1[MODEL_MAX_UNITS * DQN_FEATURES], b1[MODEL_MAX_UNITS];
	float w2[DQN_ACTIONS * MODEL_MAX_UNITS], b2[DQN_ACTIONS];
	struct model_float_layer layers[2] = {
		{ (uint16_t)net->n_in, (uint16_t)net->n_hidden, w1, b1 },
		{ (uint16_t)net->n_hidden, (uint16_t)net->n_out, w2, b2 },
	};
	struct model_error merr = { .offset = -1 };
	struct model *m;
	int ret = 0;

	*out = NULL;
	if (net->n_out != DQN_ACTIONS || (net->n_in != DQN_FEATURES && net->n_in != DQN_SEED_FEATURES) ||
	    net->n_hidden > MODEL_MAX_UNITS) {
		set_err(err, err_len, "dqn export: a %u -> %u -> %u net does not fit the DQN's `.reflex` MLP",
			net->n_in, net->n_hidden, net->n_out);
		return -EINVAL;
	}
	memcpy(w1, net->w1, (size_t)net->n_hidden * net->n_in * sizeof(float));
	memcpy(b1, net->b1, net->n_hidden * sizeof(float));
	memcpy(w2, net->w2, (size_t)DQN_ACTIONS * net->n_hidden * sizeof(float));
	memcpy(b2, net->b2, sizeof(b2));
	if (equalize)
		equalize_hidden(w1, b1, w2, net->n_in, net->n_hidden);
	center_outputs(w2, b2, net->n_hidden);
	m = model_create(MODEL_KIND_MLP, (uint16_t)net->n_in, DQN_ACTIONS);
	if (!m) {
		set_err(err, err_len, "dqn export: out of memory");
		return -ENOMEM;
	}
	for (unsigned i = 0; i < net->n_in && !ret; i++)
		ret = model_set_feature(m, i, dqn_features[i].name, dqn_features[i].min, dqn_features[i].max,
					&merr);
	/* Bounds and scale are placeholders: model_mlp_quantize sets them. */
	for (unsigned a = 0; a < DQN_ACTIONS && !ret; a++)
		ret = model_set_output(m, a, dqn_action_names[a], -1, 1, 1, &merr);
	if (!ret)
		ret = model_mlp_quantize(m, layers, 2, calib, n_calib, &merr);
	if (ret) {
		set_err(err, err_len, "dqn export: %s", merr.msg);
		model_free(m);
		return ret;
	}
	*out = m;
	return 0;
}

double dqn_int8_agreement(const struct model *m, const struct mlp *net, const double *raw_states, size_t n)
{
	size_t same = 0;

	for (size_t k = 0; k < n; k++) {
		const double *raw = raw_states + k * DQN_FEATURES;
		float x[DQN_FEATURES];

		dqn_normalize(raw, net->n_in, x);
		if (dqn_int8_action(m, raw, NULL) == dqn_greedy(net, x))
			same++;
	}
	return n ? (double)same / n : 0;
}

static int set_metadata(struct model *m, const struct dqn_trainer *tr, struct dqn_report *rep)
{
	const struct dqn_train_opts *o = &tr->opts;
	struct model_error merr = { .offset = -1 };
	char created[32];
	time_t now = time(NULL);
	struct tm tm;
	int ret = 0;

	gmtime_r(&now, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	ret = ret ?: model_meta_set(m, "created_at", created, &merr);
	ret = ret ?: model_meta_set(m, "trainer_commit", REFLEX_GIT_DESCRIBE, &merr);
	ret = ret ?: model_meta_set(m, "trainer", "reflex-forge train-dqn", &merr);
	ret = ret ?: model_meta_set(m, "policy", "dqn", &merr);
	ret = ret ?: model_meta_set(m, "actuator", "cwnd_clamp", &merr);
	ret = ret ?: model_meta_setf(m, "decision_interval", &merr, "min_rtt clamped to [%d, %d] us",
			       DQN_MIN_INTERVAL_US, DQN_MAX_INTERVAL_US);
	ret = ret ?: model_meta_setf(m, "reward", &merr,
			       "delivery_ratio - %g * max(0, srtt / min_rtt - 1) - %g * loss_rate",
			       DQN_REWARD_DELAY_WEIGHT, DQN_REWARD_LOSS_WEIGHT);
	ret = ret ?: model_meta_setf(m, "seed", &merr, "%llu", (unsigned long long)o->seed);
	ret = ret ?: model_meta_setf(m, "episodes", &merr, "%u", tr->episodes_done);
	ret = ret ?: model_meta_setf(m, "decisions", &merr, "%llu", (unsigned long long)tr->decisions);
	ret = ret ?: model_meta_setf(m, "gamma", &merr, "%g", o->gamma);
	ret = ret ?: model_meta_setf(m, "lr", &merr, "%g", o->lr);
	ret = ret ?: model_meta_setf(m, "hidden", &merr, "%u", o->hidden);
	ret = ret ?: model_meta_setf(m, "best_episode", &merr, "%u", rep->best_episode);
	ret = ret ?: model_meta_set(m, "outputs", "Q-values minus a state term common to all actions: use the argmax", &merr);
	if (rep->eval_scenarios) {
		for (int p = 0; p < DQN_POLICY_COUNT && !ret; p++) {
			char key[64];

			snprintf(key, sizeof(key), "eval_reward_%s", dqn_policy_names[p]);
			ret = model_meta_setf(m, key, &merr, "%.4f", rep->eval[p].reward);
		}
		ret = ret ?: model_meta_setf(m, "eval_scenarios", &merr, "%u", rep->eval_scenarios);
	}
	ret = ret ?: model_meta_setf(m, "int8_agreement", &merr, "%.4f", rep->int8_agreement);
	ret = ret ?: model_meta_setf(m, "agreement_states", &merr, "%llu", (unsigned long long)rep->agreement_states);
	if (ret)
		snprintf(rep->err, sizeof(rep->err), "dqn export: metadata: %s", merr.msg);
	return ret;
}

int dqn_build_best_model(const struct mlp *net, const double *calib_raw, size_t n_calib, struct model **out,
			 char *err, size_t err_len)
{
	struct model *plain = NULL, *equalized = NULL;
	float *calib;
	int ret;

	*out = NULL;
	calib = malloc((n_calib ? n_calib : 1) * net->n_in * sizeof(float));
	if (!calib) {
		set_err(err, err_len, "dqn export: out of memory");
		return -ENOMEM;
	}
	for (size_t k = 0; k < n_calib; k++)
		dqn_normalize(calib_raw + k * DQN_FEATURES, net->n_in, calib + k * net->n_in);
	ret = dqn_build_model(net, calib, n_calib, false, &plain, err, err_len);
	if (!ret)
		ret = dqn_build_model(net, calib, n_calib, true, &equalized, err, err_len);
	if (!ret) {
		bool eq = dqn_int8_agreement(equalized, net, calib_raw, n_calib) >
			  dqn_int8_agreement(plain, net, calib_raw, n_calib);

		*out = eq ? equalized : plain;
		model_free(eq ? plain : equalized);
	} else {
		model_free(plain);
	}
	free(calib);
	return ret;
}

/* The int8 model of the policy and its agreement with the float policy on
 * held-out states. */
static int export_model(const struct dqn_trainer *tr, struct dqn_report *rep, struct model **out)
{
	const struct dqn_train_opts *o = &tr->opts;
	const struct mlp *policy = dqn_trainer_policy(tr);
	uint32_t scenarios = o->eval_scenarios ? o->eval_scenarios : AGREEMENT_SCENARIOS;
	uint32_t steps = o->eval_steps ? o->eval_steps : o->steps_per_episode;
	double *raw = NULL, *calib_raw = NULL;
	size_t n_raw = 0, n_calib = 0;
	int ret;

	*out = NULL;
	raw = malloc(MAX_AGREEMENT_STATES * DQN_FEATURES * sizeof(double));
	calib_raw = malloc(MAX_CALIB_ROWS * DQN_FEATURES * sizeof(double));
	if (!raw || !calib_raw) {
		ret = -ENOMEM;
		snprintf(rep->err, sizeof(rep->err), "dqn export: out of memory");
		goto out;
	}
	ret = collect_stream(policy, o->seed ^ CALIB_STREAM, scenarios, steps, calib_raw, MAX_CALIB_ROWS,
			     &n_calib);
	if (!ret)
		ret = dqn_collect_states(policy, o->seed, scenarios, steps, raw, MAX_AGREEMENT_STATES, &n_raw);
	if (ret) {
		snprintf(rep->err, sizeof(rep->err), "dqn export: collecting states: %s", strerror(-ret));
		goto out;
	}
	ret = dqn_build_best_model(policy, calib_raw, n_calib, out, rep->err, sizeof(rep->err));
	if (ret)
		goto out;
	rep->agreement_states = n_raw;
	rep->int8_agreement = dqn_int8_agreement(*out, policy, raw, n_raw);
out:
	free(raw);
	free(calib_raw);
	return ret;
}

static int write_model(struct model *m, const struct dqn_trainer *tr, struct dqn_report *rep)
{
	struct model_error merr = { .offset = -1 };
	int ret = set_metadata(m, tr, rep);

	if (ret)
		return ret;
	ret = model_write_file(m, tr->opts.model_path, &merr);
	if (ret)
		snprintf(rep->err, sizeof(rep->err), "%s: %s", tr->opts.model_path, merr.msg);
	return ret;
}

/* --- the whole run -------------------------------------------------------------------- */

int dqn_train(const struct dqn_train_opts *opts, struct dqn_report *rep)
{
	struct dqn_trainer *tr = NULL;
	struct model *m = NULL;
	int ret;

	memset(rep, 0, sizeof(*rep));
	if (opts->resume && !opts->checkpoint_path) {
		snprintf(rep->err, sizeof(rep->err), "train-dqn: resume needs a checkpoint path");
		return -EINVAL;
	}
	if (opts->resume && access(opts->checkpoint_path, F_OK) == 0)
		ret = dqn_checkpoint_load(opts->checkpoint_path, opts, &tr, rep->err, sizeof(rep->err));
	else
		ret = dqn_trainer_new(opts, &tr, rep->err, sizeof(rep->err));
	if (ret)
		return ret;
	ret = dqn_trainer_run(tr, opts->episodes, rep->err, sizeof(rep->err));
	if (!ret && opts->checkpoint_path)
		ret = dqn_checkpoint_save(tr, opts->checkpoint_path, rep->err, sizeof(rep->err));
	if (ret)
		goto out;
	dqn_trainer_report(tr, rep);
	if (opts->model_path) {
		ret = export_model(tr, rep, &m);
		if (ret)
			goto out;
	}
	if (opts->eval_scenarios) {
		ret = dqn_evaluate(dqn_trainer_policy(tr), m, opts->seed, opts->eval_scenarios,
				   opts->eval_steps, rep->eval);
		if (ret) {
			snprintf(rep->err, sizeof(rep->err), "train-dqn: evaluation: %s", strerror(-ret));
			goto out;
		}
		rep->eval_scenarios = opts->eval_scenarios;
	}
	if (m)
		ret = write_model(m, tr, rep);
out:
	model_free(m);
	dqn_trainer_free(tr);
	return ret;
}
