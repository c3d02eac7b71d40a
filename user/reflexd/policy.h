/*
 * The cwnd policies: what a TCP flow's cwnd should be for a window. Three stand
 * behind one interface: the heuristic (HEURISTIC_BDP_GAIN x BDP), the `cwnd` tree
 * model (a BDP multiple) and the DQN (an int8 MLP steering a cwnd in packets, which
 * can fine-tune itself on-line). A policy whose model did not load is not ready, and
 * the heuristic decides in its place. The controller owns what all policies share:
 * the BDP estimate a multiple is applied to, startup, hysteresis and the actuator.
 */
#ifndef REFLEX_POLICY_H
#define REFLEX_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dqn/dqn.h"
#include "dqn/dqn_learn.h"
#include "lib/feature_schema.h"
#include "lib/prng.h"
#include "model/model.h"
#include "reflexd/learn_guard.h"
#include "reflexd/telemetry.h"

/* BBR-like fallback: cap = HEURISTIC_BDP_GAIN x (max delivery rate of recent
 * windows) x min RTT. */
#define HEURISTIC_BDP_GAIN 1.25

enum cwnd_unit {
	CWND_BDP_MULTIPLE, /* value x the flow's BDP (0 = no cap) */
	CWND_PACKETS,      /* value packets (0 = none) */
};

struct cwnd_choice {
	enum cwnd_unit unit;
	double value;
};

/* What a policy remembers about one flow (only the DQN remembers anything): its
 * feature memory, the cwnd it steers (packets, 0 = none yet), the largest queueing
 * delay seen (for buffer_occupancy) and, with --learn, the last decision's state and
 * action (the first half of the transition the next decision completes) and which
 * model made it under which learner (the learn guard credits it with the next
 * interval's reward). */
struct policy_flow {
	struct dqn_flow_state dqn;
	double dqn_cwnd;
	uint64_t dqn_last_ns;
	double max_queue_delay_us;
	bool dqn_decided;
	uint8_t dqn_last_action;
	double dqn_last_state[DQN_FEATURES];
	uint8_t dqn_last_arm;    /* enum learn_arm_id */
	uint64_t dqn_last_epoch; /* learn_epoch */
};

struct policy {
	const char *name; /* "heuristic", "cwnd-tree", "dqn": the decision log's `model` */
	/* Whether it can decide (its model is loaded). */
	bool (*ready)(const struct policy *p);
	/* Whether decide keeps per-flow state in pf (a policy_flow, ~1 KB, allocated for
	 * the flows it decides); without, pf is NULL. */
	bool flow_state;
	/* The flow's cwnd for window w; why gets a note on how, or stays "" when explain
	 * gives it. */
	void (*decide)(struct policy *p, struct policy_flow *pf, const struct flow_entry *flow,
		       const struct feature_window *w, struct cwnd_choice *choice, char *why, size_t why_len);
	/* Why it decided as it did for w, for the log; called only when the decision
	 * changed (a tree's path costs more than its decision). NULL: decide says why. */
	void (*explain)(struct policy *p, const struct feature_window *w, char *why, size_t why_len);
};

/* An output a model must have, and the legal range of the knob it sets (a model
 * whose declared bounds reach outside it is refused; +-INFINITY: any value). */
struct policy_output {
	const char *name;
	double min, max;
};

/* Loads and checks one model (kind, every output present within its range, every
 * feature among inputs); on any failure *slot is left as it was and stderr says why. */
int policy_model_load(const char *role, const char *path, enum model_kind kind, const char *const *inputs,
		      size_t input_count, const struct policy_output *outputs, size_t output_count,
		      struct model **slot, int *map);
/* The index of output name in m, -1 if none. */
int policy_model_output(const struct model *m, const char *name);

void heuristic_policy_init(struct policy *p);

struct tree_policy {
	struct policy base;
	const char *path;
	struct model *model; /* NULL: not ready */
	int map[MODEL_MAX_FEATURES];
	int output; /* cwnd_bdp_multiple */
};

/* Loads the `cwnd` model at path (NULL: none). */
void tree_policy_init(struct tree_policy *t, const char *path);
/* Reloads it; a file that fails validation is refused and the loaded model stays. */
void tree_policy_reload(struct tree_policy *t);
void tree_policy_free(struct tree_policy *t);

enum learn_arm_id {
	LEARN_ARM_NONE = 0,   /* no fine-tuned model yet: nothing to compare */
	LEARN_ARM_LOADED = 1, /* a canary decision of the loaded model */
	LEARN_ARM_TUNED = 2,  /* the learner's latest model */
};

struct dqn_cwnd_policy_opts {
	const char *model_path;     /* NULL: none, not ready */
	double explore;             /* probability of a random action */
	bool learn;                 /* fine-tune on-line (dqn/dqn_learn.h) */
	const char *learn_out_path; /* with learn: where the fine-tuned model goes at exit */
};

struct dqn_cwnd_policy {
	struct policy base;
	struct dqn_cwnd_policy_opts opt;
	struct model *model;
	int map[MODEL_MAX_FEATURES];
	struct dqn_learn *learner;         /* with learn; its models replace model */
	uint64_t learn_generation;         /* of the model the last decision used */
	struct dqn_learn_stats learn_done; /* summed over the learners stopped so far */
	uint64_t learn_epoch;              /* learners started so far */
	struct learn_guard guard;          /* rolls back fine-tuned models that do worse */
	uint64_t canary_decisions;         /* made by the loaded model while a fine-tuned one decides */
	struct prng rng;                   /* exploration and canaries */
};

/* Loads the model and, with learn, starts its learner (if that fails it says so and
 * the loaded model decides). -1 if learn_out_path's directory cannot be written. */
int dqn_cwnd_policy_init(struct dqn_cwnd_policy *d, const struct dqn_cwnd_policy_opts *opt);
/* Reloads the model; a new file restarts the learner from it. */
void dqn_cwnd_policy_reload(struct dqn_cwnd_policy *d);
/* Stops the learner, writes learn_out_path and prints what it did. */
void dqn_cwnd_policy_free(struct dqn_cwnd_policy *d);

#endif
