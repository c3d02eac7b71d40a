// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* The export of reflex-forge train-dqn: the better of the plain and the
 * equalized quantization by argmax agreement, metadata, the model file. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dqn/train_internal.h"
#include "model/model.h"

#define MAX_CALIB_ROWS 4096
#define MAX_AGREEMENT_STATES 20000
#define AGREEMENT_SCENARIOS 20

#ifndef REFLEX_GIT_DESCRIBE
#define REFLEX_GIT_DESCRIBE "unknown"
#endif

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
	struct reflex_err merr = { 0 };
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
	if (tr->source.set)
		ret = ret ?: model_meta_setf(m, "trace_episodes", &merr,
				       "%u traces, share %g, segment %u ms, reward utilization - %g * max(0, srtt / min_rtt - 1) - %g * loss_rate",
				       tr->source.set->n, tr->source.share, tr->source.segment_ms,
				       tr->source.delay_weight, DQN_REWARD_LOSS_WEIGHT);
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
		reflex_err_set(&rep->err, "dqn export: metadata: %s", merr.msg);
	return ret;
}

int dqn_build_best_model(const struct mlp *net, const double *calib_raw, size_t n_calib, struct model **out,
			 struct reflex_err *err)
{
	struct model *plain = NULL, *equalized = NULL;
	bool eq;
	int ret;

	*out = NULL;
	ret = dqn_build_model_raw(net, calib_raw, n_calib, false, &plain, err);
	if (!ret)
		ret = dqn_build_model_raw(net, calib_raw, n_calib, true, &equalized, err);
	if (ret) {
		model_free(plain);
		return ret;
	}
	eq = dqn_int8_agreement(equalized, net, calib_raw, n_calib) > dqn_int8_agreement(plain, net, calib_raw, n_calib);
	*out = eq ? equalized : plain;
	model_free(eq ? plain : equalized);
	return 0;
}

/* The int8 model of the policy and its agreement with the float policy on
 * held-out states. */
int dqn_export_model(const struct dqn_trainer *tr, struct dqn_report *rep, struct model **out)
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
		reflex_err_set(&rep->err, "dqn export: out of memory");
		goto out;
	}
	ret = dqn_collect_stream(policy, &tr->source, o->seed ^ CALIB_STREAM, scenarios, steps, calib_raw, MAX_CALIB_ROWS,
			     &n_calib);
	if (!ret)
		ret = dqn_collect_states(policy, o->seed, scenarios, steps, raw, MAX_AGREEMENT_STATES, &n_raw);
	if (ret) {
		reflex_err_set(&rep->err, "dqn export: collecting states: %s", strerror(-ret));
		goto out;
	}
	ret = dqn_build_best_model(policy, calib_raw, n_calib, out, &rep->err);
	if (ret)
		goto out;
	rep->agreement_states = n_raw;
	rep->int8_agreement = dqn_int8_agreement(*out, policy, raw, n_raw);
out:
	free(raw);
	free(calib_raw);
	return ret;
}

int dqn_write_model(struct model *m, const struct dqn_trainer *tr, struct dqn_report *rep)
{
	struct reflex_err merr = { 0 };
	int ret = set_metadata(m, tr, rep);

	if (ret)
		return ret;
	ret = model_write_file(m, tr->opts.model_path, &merr);
	if (ret)
		reflex_err_set(&rep->err, "%s: %s", tr->opts.model_path, merr.msg);
	return ret;
}
