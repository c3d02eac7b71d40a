// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* The episode trainer: episodes on the simulator, validation that keeps the best
 * net, progress, and the whole `reflex-forge train-dqn` run. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dqn/train_internal.h"
#include "model/model.h"

double dqn_epsilon(double start, double end, double decay, uint64_t decision)
{
	double eps = start * pow(decay, (double)decision);

	return eps > end ? eps : end;
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

static int run_episode(struct dqn_trainer *tr)
{
	struct dqn_scenario *sc = malloc(sizeof(*sc));
	struct dqn_env e;
	float s[DQN_FEATURES], s2[DQN_FEATURES];
	double sum = 0;
	uint32_t steps = tr->opts.steps_per_episode;
	int err;

	if (!sc)
		return -ENOMEM;
	dqn_source_sample(&tr->source, &tr->rng, steps, sc);
	err = dqn_env_start(&e, sc);
	if (err) {
		free(sc);
		return err;
	}
	dqn_normalize(e.raw, tr->n_in, s);
	for (uint32_t t = 0; t < steps; t++) {
		double eps = dqn_epsilon(tr->opts.eps_start, tr->opts.eps_end, tr->opts.eps_decay,
					 tr->decisions);
		enum dqn_action a;

		if (prng_uniform(&tr->rng) < eps)
			a = (enum dqn_action)prng_below(&tr->rng, DQN_ACTIONS);
		else
			a = dqn_greedy(&tr->online, s);
		dqn_env_actuate(&e, dqn_apply_action(a, e.clamp));
		dqn_env_interval(&e);
		dqn_normalize(e.raw, tr->n_in, s2);
		/* No terminal state: an episode end is a time limit, so bootstrap from s2. */
		dqn_trainer_observe(tr, s, a, (float)e.reward, s2);
		sum += e.reward;
		memcpy(s, s2, sizeof(s));
	}
	dqn_env_stop(&e);
	free(sc);
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

/* Keep the online net if it does best so far on the validation scenarios. */
static int validate(struct dqn_trainer *tr)
{
	struct dqn_policy_nets nets = { .net = &tr->online };
	struct dqn_policy_eval eval[DQN_POLICY_COUNT];
	int ret = dqn_evaluate_stream(&nets, &tr->source, tr->opts.seed ^ VALID_STREAM, tr->opts.validate_scenarios,
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

void dqn_trainer_use_traces(struct dqn_trainer *tr, const struct dqn_trace_set *set)
{
	tr->source = (struct dqn_scenario_source){
		.set = set->n ? set : NULL,
		.share = tr->opts.trace_share,
		.segment_ms = tr->opts.trace_segment_ms,
		.delay_weight = tr->opts.trace_delay_weight,
	};
}

int dqn_trainer_run(struct dqn_trainer *tr, uint32_t episodes, struct reflex_err *err)
{
	int ret;

	if (episodes > MAX_EPISODES) {
		reflex_err_set(err, "train-dqn: episodes exceeds %u", MAX_EPISODES);
		return -EINVAL;
	}
	while (tr->episodes_done < episodes) {
		ret = run_episode(tr);
		if (ret) {
			reflex_err_set(err, "train-dqn: episode %u: %s", tr->episodes_done, strerror(-ret));
			return ret;
		}
		if (tr->opts.validate_every && tr->episodes_done % tr->opts.validate_every == 0) {
			ret = validate(tr);
			if (ret) {
				reflex_err_set(err, "train-dqn: validation after episode %u: %s",
					tr->episodes_done, strerror(-ret));
				return ret;
			}
		}
		show_progress(tr, episodes);
		if (tr->opts.checkpoint_path && tr->opts.checkpoint_every &&
		    tr->episodes_done % tr->opts.checkpoint_every == 0 && tr->episodes_done < episodes) {
			ret = dqn_checkpoint_save(tr, tr->opts.checkpoint_path, err);
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

int dqn_train(const struct dqn_train_opts *opts, struct dqn_report *rep)
{
	struct dqn_trainer *tr = NULL;
	struct dqn_trace_set traces;
	struct model *m = NULL;
	int ret;

	memset(rep, 0, sizeof(*rep));
	if (opts->resume && !opts->checkpoint_path) {
		reflex_err_set(&rep->err, "train-dqn: resume needs a checkpoint path");
		return -EINVAL;
	}
	ret = dqn_trace_set_load(&traces, opts->trace_paths, opts->n_trace_paths, &rep->err);
	if (ret)
		return ret;
	if (opts->resume && access(opts->checkpoint_path, F_OK) == 0)
		ret = dqn_checkpoint_load(opts->checkpoint_path, opts, &tr, &rep->err);
	else
		ret = dqn_trainer_new(opts, &tr, &rep->err);
	if (ret)
		goto out;
	dqn_trainer_use_traces(tr, &traces);
	ret = dqn_trainer_run(tr, opts->episodes, &rep->err);
	if (!ret && opts->checkpoint_path)
		ret = dqn_checkpoint_save(tr, opts->checkpoint_path, &rep->err);
	if (ret)
		goto out;
	dqn_trainer_report(tr, rep);
	if (opts->model_path) {
		ret = dqn_export_model(tr, rep, &m);
		if (ret)
			goto out;
	}
	if (opts->eval_scenarios) {
		ret = dqn_evaluate(dqn_trainer_policy(tr), m, opts->seed, opts->eval_scenarios,
				   opts->eval_steps, rep->eval);
		if (ret) {
			reflex_err_set(&rep->err, "train-dqn: evaluation: %s", strerror(-ret));
			goto out;
		}
		rep->eval_scenarios = opts->eval_scenarios;
	}
	if (m)
		ret = dqn_write_model(m, tr, rep);
out:
	model_free(m);
	dqn_trainer_free(tr);
	dqn_trace_set_free(&traces);
	return ret;
}
