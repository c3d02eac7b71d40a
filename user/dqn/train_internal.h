/*
 * What the training files of dqn/ share and nothing outside them sees: the
 * trainer's state, the simulator environment, the evaluation streams.
 */
#ifndef REFLEX_DQN_TRAIN_INTERNAL_H
#define REFLEX_DQN_TRAIN_INTERNAL_H

#include <stdarg.h>
#include <stdio.h>

#include "dqn/train.h"
#include "lib/trace.h"

#define EVAL_STREAM 0x5eed0e7a1ULL   /* held-out scenarios: never drawn by training */
#define CALIB_STREAM 0xca11b0a7eULL  /* quantization calibration: neither training nor evaluation */
#define VALID_STREAM 0x7a11d0a7eULL  /* model selection during training */
#define MAX_EPISODES 10000000u

/* Loaded traces to draw segments from. */
struct dqn_trace_set {
	struct trace *traces;
	uint32_t n;
};

/* Where episodes come from: static links, and with share > 0 trace segments. */
struct dqn_scenario_source {
	const struct dqn_trace_set *set; /* NULL = static links only */
	double share;
	uint32_t segment_ms;
	double delay_weight;
};

/* --- the trainer (trainer.c) ---------------------------------------------------- */

struct dqn_trainer {
	struct dqn_train_opts opts;
	uint32_t n_in;
	struct prng rng;
	struct mlp online, target;
	struct adam adam;
	struct dqn_replay replay;
	uint32_t episodes_done;
	uint64_t decisions, updates;
	struct dqn_scenario_source source; /* set by dqn_train: the traces are its */
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

/* 0 or -EINVAL with what is wrong in err ("train-dqn: ..."). */
int dqn_check_train_opts(const struct dqn_train_opts *o, struct reflex_err *err);

/* --- the environment (env.c) ------------------------------------------------------ */

struct dqn_scenario {
	struct bsim_config cfg;
	uint32_t warmup_rtts;   /* plain CUBIC before the policy takes over */
	/* A trace scenario: cfg.rate_schedule_bps points here (do not copy the struct),
	 * and the reward weighs queueing by trace_delay_weight against utilization of
	 * the capacity (the flow's delivery ratio would blame the policy for the link's
	 * own swings). */
	bool trace;
	double trace_delay_weight;
	uint64_t schedule[DQN_TRACE_MAX_SEGMENT_MS / DQN_TRACE_STEP_MS];
};

int dqn_trace_set_load(struct dqn_trace_set *set, const char *const *paths, uint32_t n, struct reflex_err *err);
void dqn_trace_set_free(struct dqn_trace_set *set);
/* A scenario replaying segment_ms of t from offset_ms (the schedule loops), with a
 * random base RTT (10-150 ms), buffer (100 KB - 2 MB) and warm-up from rng. */
void dqn_trace_scenario(const struct trace *t, uint64_t offset_ms, uint32_t segment_ms, struct prng *rng,
			struct dqn_scenario *sc);
/* Episodes and validations of tr draw from set (kept by the caller) as tr's options say. */
void dqn_trainer_use_traces(struct dqn_trainer *tr, const struct dqn_trace_set *set);
/* One episode's scenario: a trace segment with probability src->share, else a static link. */
void dqn_source_sample(const struct dqn_scenario_source *src, struct prng *rng, uint32_t steps,
		       struct dqn_scenario *sc);

/* One simulated flow 0 under the policy's clamp, observed as reflexd would. */
struct dqn_env {
	struct bsim *sim;
	const struct dqn_scenario *sc;
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

void dqn_scenario_sample(struct prng *rng, uint32_t steps, struct dqn_scenario *sc);
int dqn_env_start(struct dqn_env *e, const struct dqn_scenario *sc);
void dqn_env_interval(struct dqn_env *e);
void dqn_env_actuate(struct dqn_env *e, uint32_t clamp);
void dqn_env_stop(struct dqn_env *e);
/* DQN_POLICY_HEURISTIC's clamp for the env's flow now. */
uint32_t dqn_heuristic_clamp(const struct dqn_env *e);

/* --- evaluation (evaluate.c) and export (export.c) -------------------------------- */

/* What a policy decides with: the float net and/or its int8 model. */
struct dqn_policy_nets {
	const struct mlp *net;
	const struct model *model;
};

/* Every available policy on the same n_scenarios scenarios of one stream. */
int dqn_evaluate_stream(const struct dqn_policy_nets *nets, const struct dqn_scenario_source *src,
			uint64_t stream, uint32_t n_scenarios, uint32_t steps,
			struct dqn_policy_eval eval[DQN_POLICY_COUNT]);
/* The raw states the greedy net decided on, over n_scenarios of one stream. */
int dqn_collect_stream(const struct mlp *net, const struct dqn_scenario_source *src, uint64_t stream,
		       uint32_t n_scenarios, uint32_t steps, double *raw_states, size_t max_states, size_t *n_states);
/* The int8 model of the trainer's policy, and its agreement with the float policy
 * on held-out states in rep. */
int dqn_export_model(const struct dqn_trainer *tr, struct dqn_report *rep, struct model **out);
/* Sets the model's metadata and writes it to opts.model_path. */
int dqn_write_model(struct model *m, const struct dqn_trainer *tr, struct dqn_report *rep);

#endif /* REFLEX_DQN_TRAIN_INTERNAL_H */
