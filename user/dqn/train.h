/*
 * Training the DQN agent (dqn/dqn.h) on the bottleneck simulator: the simulator
 * environment, experience replay, the Double-DQN trainer, held-out evaluation,
 * checkpoints and the int8 `.reflex` export. reflexd links only the update step
 * (trainer.c, replay.c, mlp.c) and the lean export (quantize.c) for --learn;
 * the episode trainer, evaluation, checkpoint format and agreement check stay
 * with reflex-forge (tests/layout/check_layers.sh checks nm reflexd).
 *
 * Files: env.c (scenarios, the simulated flow under a clamp), replay.c,
 * trainer.c (options, one update step, Adam), episodes.c (episodes, validation,
 * the train-dqn driver), evaluate.c, checkpoint.c, quantize.c (net -> int8 MLP),
 * export.c (the better of two quantizations, metadata, the model file).
 */
#ifndef REFLEX_DQN_TRAIN_H
#define REFLEX_DQN_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/bottleneck_sim.h"
#include "dqn/dqn.h"
#include "dqn/mlp.h"
#include "lib/error.h"

#define DQN_HEURISTIC_BDP_MULTIPLE 1.25
#define DQN_FIXED_CLAMP_PKTS 100
#define DQN_CHECKPOINT_VERSION 1

/* The interval between two snapshots of the simulator's flow 0 (taken at prev_us
 * and at link->now_us), as reflexd's telemetry would report it. */
void dqn_interval_from_sim(const struct bsim_config *cfg, const struct bsim_flow_stats *prev, uint64_t prev_us,
			   const struct bsim_flow_stats *now, const struct bsim_link_stats *link,
			   struct dqn_interval *iv);

/* epsilon after `decision` decisions: max(end, start * decay^decision). */
double dqn_epsilon(double start, double end, double decay, uint64_t decision);

/* --- experience replay ---------------------------------------------------- */

struct dqn_replay {
	uint32_t n_in;
	uint32_t capacity;
	uint32_t len;      /* filled slots */
	uint32_t next;     /* slot the next push overwrites */
	float *state;      /* [capacity][n_in] */
	float *next_state; /* [capacity][n_in] */
	float *reward;
	uint8_t *action;
};

int dqn_replay_init(struct dqn_replay *rb, uint32_t capacity, uint32_t n_in);
void dqn_replay_free(struct dqn_replay *rb);
void dqn_replay_push(struct dqn_replay *rb, const float *state, enum dqn_action action, float reward,
		     const float *next_state);
/* n indexes drawn uniformly with replacement from the filled slots; len > 0. */
void dqn_replay_sample(const struct dqn_replay *rb, struct prng *rng, uint32_t *idx, uint32_t n);

/* --- training ------------------------------------------------------------- */

struct dqn_train_opts {
	uint64_t seed;
	uint32_t episodes;
	uint32_t steps_per_episode;   /* decisions per episode */
	uint32_t hidden;              /* hidden units (128) */
	uint32_t batch;               /* 64 */
	uint32_t replay_capacity;     /* transitions (50000) */
	uint32_t replay_warmup;       /* transitions before the first update (1000) */
	uint32_t target_sync;         /* updates between target-network copies (500) */
	float lr;                     /* Adam (1e-3) */
	float gamma;                  /* discount (0.9) */
	float huber_delta;            /* Huber loss threshold (1.0) */
	float advantage_alpha;        /* advantage-learning gap factor, 0 = plain DQN targets (0.9) */
	float reward_floor;           /* targets use max(reward, floor) (-1) */
	float weight_clip;            /* |weight| limit after each step, 0 = none (0.3) */
	float act_noise;              /* hidden-activation noise in int8 steps while training, 0 = none (2) */
	uint32_t validate_every;      /* episodes between validations; the best validated net is the policy (50) */
	uint32_t validate_scenarios;  /* scenarios per validation (10) */
	double eps_start, eps_end, eps_decay; /* 1.0, 0.01, 0.995 per decision */
	bool seed_features_only;      /* input = features 0-7 only */
	uint32_t eval_scenarios;      /* held-out scenarios for the report (0 = no evaluation) */
	uint32_t eval_steps;          /* decisions per evaluation scenario */
	const char *checkpoint_path;  /* NULL = no checkpoint */
	uint32_t checkpoint_every;    /* episodes between checkpoints (0 = only at the end) */
	bool resume;                  /* continue from checkpoint_path if it exists */
	const char *model_path;       /* `.reflex` to write, NULL = none */
	bool progress;                /* progress line on stderr when it is a terminal */
	/* Trace-driven episodes (not in the checkpoint: give the same on --resume). */
	const char *const *trace_paths; /* mahimahi traces (lib/trace.h), plain or gzip */
	uint32_t n_trace_paths;       /* 0 = static links only */
	double trace_share;           /* fraction of episodes (and validations) on a trace (0.5) */
	uint32_t trace_segment_ms;    /* trace span an episode replays, looping (30000) */
	double trace_delay_weight;    /* delay weight of the trace episodes' reward (0.5) */
};

void dqn_train_opts_default(struct dqn_train_opts *opts);

/* How a policy did on the held-out scenarios (means over every decision). */
struct dqn_policy_eval {
	double reward;
	double utilization;     /* delivered / link capacity left by cross traffic */
	double rtt_ratio;       /* srtt / min_rtt */
	double loss_rate;
};

enum dqn_policy {
	DQN_POLICY_DQN = 0,      /* greedy float network */
	DQN_POLICY_DQN_INT8,     /* its int8 `.reflex` model, as reflexd runs it */
	DQN_POLICY_HEURISTIC,    /* clamp = 1.25 x max delivery rate x min_rtt, under CUBIC */
	DQN_POLICY_FIXED,        /* clamp = DQN_FIXED_CLAMP_PKTS, under CUBIC */
	DQN_POLICY_CUBIC,        /* no clamp */
	DQN_POLICY_COUNT
};

extern const char *const dqn_policy_names[DQN_POLICY_COUNT];

struct dqn_report {
	uint32_t episodes;           /* done in total (including before a resume) */
	uint64_t decisions;
	uint64_t updates;
	double epsilon;
	double train_reward;         /* mean reward per decision over the last 10 % of episodes */
	uint32_t best_episode;       /* the policy is the online net after this episode */
	double validation_reward;    /* its mean validation reward (NaN without validation) */
	uint32_t eval_scenarios;
	struct dqn_policy_eval eval[DQN_POLICY_COUNT];
	uint64_t agreement_states;   /* held-out states checked int8 vs float (0 = not done) */
	double int8_agreement;       /* fraction of them with the same argmax */
	struct reflex_err err;       /* why dqn_train failed */
};

struct dqn_trainer;

/* Trainer state at episode 0. -EINVAL (bad opts, named in err), -ENOMEM. */
int dqn_trainer_new(const struct dqn_train_opts *opts, struct dqn_trainer **out, struct reflex_err *err);
void dqn_trainer_free(struct dqn_trainer *tr);
/* Runs episodes until `episodes` are done in total (checkpointing as opts say). */
int dqn_trainer_run(struct dqn_trainer *tr, uint32_t episodes, struct reflex_err *err);
/* The online network (what training updates). */
const struct mlp *dqn_trainer_net(const struct dqn_trainer *tr);
/* The policy: the online net as it was at its best validation (every
 * validate_every episodes, on scenarios neither training nor evaluation draws),
 * or the online net when there was none. */
const struct mlp *dqn_trainer_policy(const struct dqn_trainer *tr);
void dqn_trainer_report(const struct dqn_trainer *tr, struct dqn_report *rep);

/* Learning from transitions observed elsewhere (reflexd --learn, dqn/dqn_learn.h). */
/* Online, target and best nets become copies of net; -EINVAL if its shape differs. */
int dqn_trainer_set_net(struct dqn_trainer *tr, const struct mlp *net);
/* Pushes one transition (normalized states) into the replay buffer and, once it holds
 * replay_warmup, takes one update on a batch of it (what an episode step does).
 * Returns whether an update was taken. */
bool dqn_trainer_observe(struct dqn_trainer *tr, const float *s, enum dqn_action a, float reward,
			 const float *s2);

/*
 * Checkpoint: everything needed to continue bit-for-bit (hyperparameters, counters,
 * PRNG, online and target networks, Adam moments, replay buffer), little-endian,
 * magic "RXDQ", DQN_CHECKPOINT_VERSION, CRC32 (zlib) of every byte before it.
 * Save writes PATH.tmp.XXXXXX and renames it over PATH. Load returns -EINVAL with
 * the reason and byte offset in err for a bad file, -errno for I/O, and *out NULL
 * on any failure. The checkpoint's hyperparameters win; from opts (NULL: the
 * defaults) the loaded trainer takes only what does not change the training:
 * episodes, eval_*, checkpoint_path/every, model_path, resume, progress.
 */
int dqn_checkpoint_save(const struct dqn_trainer *tr, const char *path, struct reflex_err *err);
int dqn_checkpoint_load(const char *path, const struct dqn_train_opts *opts, struct dqn_trainer **out,
			struct reflex_err *err);
int dqn_checkpoint_load_buffer(const void *data, size_t len, const struct dqn_train_opts *opts,
			       struct dqn_trainer **out, struct reflex_err *err);

/*
 * Held-out evaluation: n_scenarios drawn from a stream the training never uses,
 * steps decisions each, every policy on the same scenarios. net drives
 * DQN_POLICY_DQN and m DQN_POLICY_DQN_INT8; either may be NULL, and its row is
 * left zero. The net's input width (DQN_SEED_FEATURES or DQN_FEATURES) selects
 * the features.
 */
int dqn_evaluate(const struct mlp *net, const struct model *m, uint64_t seed, uint32_t n_scenarios,
		 uint32_t steps, struct dqn_policy_eval eval[DQN_POLICY_COUNT]);

/* Collect up to max_states held-out raw feature vectors (DQN_FEATURES doubles each)
 * on which the greedy policy decided, for the int8 agreement check. */
int dqn_collect_states(const struct mlp *net, uint64_t seed, uint32_t n_scenarios, uint32_t steps,
		       double *raw_states, size_t max_states, size_t *n_states);

/*
 * The `.reflex` MLP of a trained net: features named and bounded as dqn_features
 * (the first net->n_in), outputs named dqn_action_names, int8 weights with
 * per-layer scales, hidden activations calibrated on calib (n_calib rows of
 * net->n_in normalized inputs). equalize rescales each hidden unit so its in- and
 * outgoing weight ranges match (function-preserving for ReLU). The outputs are the
 * Q-values minus one state-dependent term common to all actions (it widens the
 * int8 resolution of the gaps): use their argmax, not their values. *out is freed
 * with model_free. Metadata is the caller's (model_meta_set).
 */
int dqn_build_model(const struct mlp *net, const float *calib, size_t n_calib, bool equalize,
		    struct model **out, struct reflex_err *err);

/* dqn_build_model on n_calib raw feature vectors (DQN_FEATURES doubles each),
 * normalized as dqn_normalize does: what reflexd --learn publishes with. */
int dqn_build_model_raw(const struct mlp *net, const double *calib_raw, size_t n_calib, bool equalize,
			struct model **out, struct reflex_err *err);

/* Fraction of raw states (DQN_FEATURES doubles each) on which the int8 model's
 * argmax (model_quantize + model_eval + model_argmax, reflexd's path) equals the
 * float net's (dqn_normalize + dqn_greedy). 0 for n == 0. */
double dqn_int8_agreement(const struct model *m, const struct mlp *net, const double *raw_states, size_t n);

/* dqn_build_model with and without equalization, keeping the one whose argmax agrees
 * better with the float net on the calibration states (n_calib raw feature vectors,
 * DQN_FEATURES doubles each). */
int dqn_build_best_model(const struct mlp *net, const double *calib_raw, size_t n_calib, struct model **out,
			 struct reflex_err *err);

/*
 * Trace-driven links: a segment of a mahimahi trace replayed as the simulated link's
 * capacity in DQN_TRACE_STEP_MS steps (bsim_schedule_from_trace), looping.
 */
#define DQN_TRACE_STEP_MS 100
#define DQN_TRACE_MAX_SEGMENT_MS 120000
#define DQN_TRACE_MAX_FILES 64

/* Held-out trace evaluation (`reflex-forge eval-dqn`): every policy on the same
 * segments; per segment the flow's utilization of the capacity and its queueing
 * delay p95 (RTT p95 minus the base RTT), medians over the segments. */
struct dqn_trace_eval_opts {
	const char *const *trace_paths;
	uint32_t n_trace_paths;
	uint32_t segments;       /* drawn round-robin over the traces, random offsets */
	uint32_t segment_ms;     /* measured span of each, after a 2-RTT CUBIC warm-up */
	uint32_t base_rtt_us;
	uint64_t buffer_bytes;
	uint64_t seed;           /* the offsets */
	const struct model *const *models; /* int8 DQN models to compare */
	uint32_t n_models;
};

#define DQN_TRACE_EVAL_MAX_MODELS 8

/* A row per model, then the heuristic rule, then plain CUBIC. */
struct dqn_trace_eval_row {
	double utilization_median;
	double qdelay_p95_median_ms;
	double utilization_min;
	double qdelay_p95_max_ms;
};

/* rows has n_models + 2 entries. 0, or -errno with err (a trace that does not load). */
int dqn_eval_traces(const struct dqn_trace_eval_opts *o, struct dqn_trace_eval_row *rows,
		    struct reflex_err *err);

/* The whole `reflex-forge train-dqn`: train (resuming if asked), evaluate, export. */
int dqn_train(const struct dqn_train_opts *opts, struct dqn_report *rep);

#endif /* REFLEX_DQN_TRAIN_H */
