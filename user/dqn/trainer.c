// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* The trainer's update step: options, state, one Double-DQN update on a replay
 * batch with Adam, and learning from transitions observed elsewhere (reflexd
 * --learn links this file, not the episode trainer). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dqn/train_internal.h"

#define MAX_REPLAY_CAPACITY (1u << 20)
#define MAX_STEPS 1000000u

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
	opts->trace_share = 0.5;
	opts->trace_segment_ms = 30000;
	opts->trace_delay_weight = 0.5;
}

int dqn_check_train_opts(const struct dqn_train_opts *o, struct reflex_err *err)
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
	else if (o->n_trace_paths > DQN_TRACE_MAX_FILES || (o->n_trace_paths && !o->trace_paths))
		what = "at most 64 traces";
	else if (!(o->trace_share >= 0 && o->trace_share <= 1))
		what = "trace_share must be in [0, 1]";
	else if (o->trace_segment_ms < DQN_TRACE_STEP_MS || o->trace_segment_ms > DQN_TRACE_MAX_SEGMENT_MS)
		what = "trace_segment_ms must be in [100, 120000]";
	else if (!(o->trace_delay_weight >= 0 && o->trace_delay_weight <= 100))
		what = "trace_delay_weight must be in [0, 100]";
	if (what) {
		reflex_err_set(err, "train-dqn: %s", what);
		return -EINVAL;
	}
	return 0;
}

int dqn_trainer_new(const struct dqn_train_opts *opts, struct dqn_trainer **out, struct reflex_err *err)
{
	struct dqn_trainer *tr;
	int ret;

	*out = NULL;
	ret = dqn_check_train_opts(opts, err);
	if (ret)
		return ret;
	tr = calloc(1, sizeof(*tr));
	if (!tr)
		goto oom;
	tr->opts = *opts;
	tr->n_in = opts->seed_features_only ? DQN_SEED_FEATURES : DQN_FEATURES;
	prng_seed(&tr->rng, opts->seed);
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
	reflex_err_set(err, "train-dqn: out of memory");
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
			hidden[h] = fmaxf(0.0f, hidden[h] + (float)(prng_uniform(&tr->rng) - 0.5) * step);
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
