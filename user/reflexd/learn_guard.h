/*
 * The guard of on-line learning (reflexd --learn): a canary that rolls back a
 * fine-tuned model that does worse than the loaded one.
 *
 * While a fine-tuned model decides, a share of decisions, drawn at random, is made by
 * the loaded model instead, and the reward of the interval after each decision is
 * credited to the model that made it. Both arms decide for the same flows at the same
 * times, so a difference between them is the models', not the network's (comparing
 * with the loaded model's own period before the first fine-tuned one would compare a
 * flow's start with its steady state).
 *
 * After every block of fine-tuned decisions the two means are compared: when the
 * fine-tuned mean is below the loaded one by more than max(margin, 3 standard errors
 * of the difference), the verdict is a rollback. Either way both arms start afresh,
 * so a model that got worse late is judged on its own recent decisions. Three
 * standard errors, because a block ends every few seconds: at two, a normal
 * difference of equal models rolls back about 1 block in 44 (the unit test's 20
 * equal blocks had one); a false rollback costs only the learning since the loaded
 * model.
 */
#ifndef REFLEX_LEARN_GUARD_H
#define REFLEX_LEARN_GUARD_H

#include <stdbool.h>
#include <stdint.h>

struct learn_guard_opts {
	double canary_share;  /* decisions the loaded model makes while a fine-tuned one decides (0.2) */
	uint32_t block;       /* fine-tuned decisions per comparison (100) */
	uint32_t min_loaded;  /* loaded-model decisions a comparison needs; fewer: the block goes on (20) */
	double margin;        /* least mean-reward gap that rolls back (0.02) */
};

void learn_guard_opts_default(struct learn_guard_opts *opts);

/* Rewards credited to one model since the block began. */
struct learn_arm {
	uint64_t n;
	double sum;
	double sum_sq;
};

struct learn_guard {
	struct learn_guard_opts opts;
	struct learn_arm loaded, tuned;
	/* the last comparison, for the log: means, counts and the gap that would roll back */
	double last_loaded_mean, last_tuned_mean, last_threshold;
	uint64_t last_loaded_n, last_tuned_n;
	uint64_t checks, rollbacks;
};

enum learn_guard_verdict {
	LEARN_GUARD_WAIT,     /* the block is not complete */
	LEARN_GUARD_KEEP,     /* compared: the fine-tuned model stays */
	LEARN_GUARD_ROLLBACK, /* compared: the fine-tuned model did worse */
};

void learn_guard_init(struct learn_guard *g, const struct learn_guard_opts *opts);

/* Forgets the current block (a new learner, or a new loaded model); the counts of
 * comparisons and rollbacks stay. */
void learn_guard_restart(struct learn_guard *g);

/* Whether this decision goes to the loaded model; u uniform in [0, 1). */
bool learn_guard_canary(const struct learn_guard *g, double u);

/* Credits the reward of the interval after a decision to the model that made it. */
enum learn_guard_verdict learn_guard_observe(struct learn_guard *g, bool by_tuned, double reward);

#endif
