/* The canary that judges fine-tuned DQN models against the loaded one: learn_guard.h. */
#include "reflexd/learn_guard.h"

#include <math.h>
#include <string.h>

void learn_guard_opts_default(struct learn_guard_opts *opts)
{
	opts->canary_share = 0.2;
	opts->block = 100;
	opts->min_loaded = 20;
	opts->margin = 0.02;
}

void learn_guard_init(struct learn_guard *g, const struct learn_guard_opts *opts)
{
	memset(g, 0, sizeof(*g));
	g->opts = *opts;
}

void learn_guard_restart(struct learn_guard *g)
{
	memset(&g->loaded, 0, sizeof(g->loaded));
	memset(&g->tuned, 0, sizeof(g->tuned));
}

bool learn_guard_canary(const struct learn_guard *g, double u)
{
	return u < g->opts.canary_share;
}

static void arm_add(struct learn_arm *a, double x)
{
	a->n++;
	a->sum += x;
	a->sum_sq += x * x;
}

static double arm_mean(const struct learn_arm *a)
{
	return a->sum / (double)a->n;
}

/* The variance of the arm's mean (sample variance over n), for n >= 2. */
static double arm_mean_variance(const struct learn_arm *a)
{
	double n = (double)a->n, mean = arm_mean(a);
	double var = (a->sum_sq - n * mean * mean) / (n - 1);

	return var > 0 ? var / n : 0;
}

enum learn_guard_verdict learn_guard_observe(struct learn_guard *g, bool by_tuned, double reward)
{
	double se;
	bool worse;

	if (!isfinite(reward))
		return LEARN_GUARD_WAIT;
	arm_add(by_tuned ? &g->tuned : &g->loaded, reward);
	if (g->tuned.n < g->opts.block || g->loaded.n < g->opts.min_loaded || g->loaded.n < 2)
		return LEARN_GUARD_WAIT;
	se = sqrt(arm_mean_variance(&g->loaded) + arm_mean_variance(&g->tuned));
	g->last_loaded_mean = arm_mean(&g->loaded);
	g->last_tuned_mean = arm_mean(&g->tuned);
	g->last_loaded_n = g->loaded.n;
	g->last_tuned_n = g->tuned.n;
	g->last_threshold = fmax(g->opts.margin, 3 * se);
	worse = g->last_loaded_mean - g->last_tuned_mean > g->last_threshold;
	g->checks++;
	g->rollbacks += worse;
	learn_guard_restart(g);
	return worse ? LEARN_GUARD_ROLLBACK : LEARN_GUARD_KEEP;
}
