// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Held-out evaluation of the DQN against the heuristic, fixed and CUBIC baselines,
 * and the states a greedy net decides on (for calibration and agreement). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dqn/train_internal.h"

const char *const dqn_policy_names[DQN_POLICY_COUNT] = {
	"dqn", "dqn_int8", "heuristic", "fixed", "cubic",
};

static uint32_t policy_clamp(enum dqn_policy p, const struct dqn_policy_nets *nets, const struct dqn_env *e)
{
	float x[DQN_FEATURES];

	switch (p) {
	case DQN_POLICY_DQN:
		dqn_normalize(e->raw, nets->net->n_in, x);
		return dqn_apply_action(dqn_greedy(nets->net, x), e->clamp);
	case DQN_POLICY_DQN_INT8:
		return dqn_apply_action(dqn_int8_action(nets->model, e->raw, NULL), e->clamp);
	case DQN_POLICY_HEURISTIC:
		return dqn_heuristic_clamp(e);
	case DQN_POLICY_FIXED:
		return DQN_FIXED_CLAMP_PKTS;
	case DQN_POLICY_CUBIC:
	default:
		return 0;
	}
}

/* Runs one policy on one scenario; per decision, calls visit (if any) with the
 * state the policy decided on. */
static int run_policy(enum dqn_policy p, const struct dqn_policy_nets *nets, const struct dqn_scenario *sc,
		      uint32_t steps, struct dqn_policy_eval *sum, void (*visit)(void *, const double *),
		      void *ctx)
{
	struct dqn_env e;
	int err = dqn_env_start(&e, sc);

	if (err)
		return err;
	for (uint32_t t = 0; t < steps; t++) {
		if (visit)
			visit(ctx, e.raw);
		dqn_env_actuate(&e, policy_clamp(p, nets, &e));
		dqn_env_interval(&e);
		sum->reward += e.reward;
		sum->utilization += e.utilization;
		sum->rtt_ratio += e.rtt_ratio;
		sum->loss_rate += e.loss_rate;
	}
	dqn_env_stop(&e);
	return 0;
}

static bool policy_available(enum dqn_policy p, const struct dqn_policy_nets *nets)
{
	if (p == DQN_POLICY_DQN)
		return nets->net;
	if (p == DQN_POLICY_DQN_INT8)
		return nets->model;
	return true;
}

/* Every available policy on the same n_scenarios scenarios of one stream. */
int dqn_evaluate_stream(const struct dqn_policy_nets *nets, const struct dqn_scenario_source *src,
			uint64_t stream, uint32_t n_scenarios, uint32_t steps,
			struct dqn_policy_eval eval[DQN_POLICY_COUNT])
{
	struct dqn_scenario *sc = malloc(sizeof(*sc));
	int err = 0;

	struct prng rng;
	double n = (double)n_scenarios * steps;

	memset(eval, 0, sizeof(*eval) * DQN_POLICY_COUNT);
	if (!sc)
		return -ENOMEM;
	if (!n_scenarios || !steps) {
		free(sc);
		return -EINVAL;
	}
	prng_seed(&rng, stream);
	for (uint32_t k = 0; k < n_scenarios && !err; k++) {
		dqn_source_sample(src, &rng, steps, sc);
		for (int p = 0; p < DQN_POLICY_COUNT && !err; p++)
			if (policy_available((enum dqn_policy)p, nets))
				err = run_policy((enum dqn_policy)p, nets, sc, steps, &eval[p], NULL, NULL);
	}
	free(sc);
	if (err)
		return err;
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
	struct dqn_policy_nets nets = { .net = net, .model = m };

	return dqn_evaluate_stream(&nets, NULL, seed ^ EVAL_STREAM, n_scenarios, steps, eval);
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

int dqn_collect_stream(const struct mlp *net, const struct dqn_scenario_source *src, uint64_t stream,
		       uint32_t n_scenarios, uint32_t steps, double *raw_states, size_t max_states, size_t *n_states)
{
	struct state_sink sink = { .raw = raw_states, .max = max_states };
	struct dqn_policy_nets nets = { .net = net };
	struct dqn_scenario *sc = malloc(sizeof(*sc));
	struct prng rng;
	int err = 0;

	*n_states = 0;
	if (!sc)
		return -ENOMEM;
	prng_seed(&rng, stream);
	for (uint32_t k = 0; k < n_scenarios && sink.n < sink.max && !err; k++) {
		struct dqn_policy_eval unused = { 0 };

		dqn_source_sample(src, &rng, steps, sc);
		err = run_policy(DQN_POLICY_DQN, &nets, sc, steps, &unused, collect_state, &sink);
	}
	free(sc);
	*n_states = sink.n;
	return err;
}

int dqn_collect_states(const struct mlp *net, uint64_t seed, uint32_t n_scenarios, uint32_t steps,
		       double *raw_states, size_t max_states, size_t *n_states)
{
	return dqn_collect_stream(net, NULL, seed ^ EVAL_STREAM, n_scenarios, steps, raw_states, max_states, n_states);
}
