/*
 * reflexd's decisions. At every window step each TCP flow gets a cwnd cap from its
 * policy (a `cwnd` tree model, or the heuristic when no model is loaded), the cap
 * passes the hysteresis and is written to the `cwnd_decisions` map, where sockops
 * applies it. The interface window drives the `batching` model, which retunes the
 * telemetry pipeline. In shadow mode everything is computed and logged, nothing acts.
 */
#ifndef REFLEX_CONTROLLER_H
#define REFLEX_CONTROLLER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dqn/dqn.h"
#include "dqn/dqn_learn.h"
#include "reflexd/learn_guard.h"
#include "lib/feature_schema.h"
#include "reflexd/hysteresis.h"
#include "model/model.h"
#include "reflex.h"
#include "reflexd/shadow.h"

struct flow_entry;
struct reflex_bpf;

enum cwnd_policy {
	CWND_POLICY_OFF = 0,  /* telemetry only */
	CWND_POLICY_HEURISTIC,
	CWND_POLICY_TREE,     /* the cwnd tree model, or the heuristic without one */
	CWND_POLICY_DQN,      /* the DQN's int8 MLP, or the heuristic without one */
};

/* BBR-like fallback: cap = HEURISTIC_BDP_GAIN x (max delivery rate of the last
 * RATE_WINDOWS windows) x min RTT. */
#define HEURISTIC_BDP_GAIN 1.25
#define RATE_WINDOWS 20
#define CWND_MIN_CLAMP 4
/* The RTT a cap allows for is at least this: below a millisecond, host scheduling
 * and ACK batching dominate the RTT (a veth pair measures ~20 us), a cap at a BDP of
 * that size throttles the flow, and the lower rate it then measures lowers the next
 * cap. Queueing under 1 ms is not worth a cap. */
#define CWND_RTT_FLOOR_US 1000

/* A flow is in startup, and left uncapped, until its delivery rate has failed to
 * grow by FULL_PIPE_GROWTH for FULL_PIPE_WINDOWS windows in a row (BBR's full-pipe
 * test), or its median RTT in a window exceeds FULL_PIPE_RTT_RATIO x its min RTT (a
 * queue is building, HyStart's signal): before that there is no BDP estimate worth
 * capping at, after it slow start would only fill the buffer. */
#define FULL_PIPE_GROWTH 1.25
#define FULL_PIPE_WINDOWS 3
#define FULL_PIPE_RTT_RATIO 1.5

/* Per-flow control state, kept in the flow's telemetry entry. */
struct flow_control {
	struct hysteresis cwnd;
	double rate_bps[RATE_WINDOWS]; /* delivery rate of recent windows (ring) */
	unsigned rate_next;
	bool pipe_full;
	double full_pipe_rate;
	unsigned full_pipe_count;
	bool decision_written;
	/* DQN policy: its feature memory, the cwnd it steers (packets, 0 = none yet)
	 * and the largest queueing delay seen (for buffer_occupancy). */
	struct dqn_flow_state dqn;
	double dqn_cwnd;
	uint64_t dqn_last_ns;
	double max_queue_delay_us;
	/* With --learn: the state and action of the last decision, the first half of
	 * the transition the next decision completes. */
	bool dqn_decided;
	uint8_t dqn_last_action;
	double dqn_last_state[DQN_FEATURES];
	/* Which model made the last decision (enum learn_arm_id) and under which learner
	 * (learn_epoch): the learn guard credits it with the next interval's reward. */
	uint8_t dqn_last_arm;
	uint64_t dqn_last_epoch;
};

enum learn_arm_id {
	LEARN_ARM_NONE = 0,   /* no fine-tuned model yet: nothing to compare */
	LEARN_ARM_LOADED = 1, /* a canary decision of the loaded model */
	LEARN_ARM_TUNED = 2,  /* the learner's latest model */
};

struct controller_opts {
	enum cwnd_policy policy;
	const char *cwnd_model_path;     /* NULL: heuristic */
	const char *batching_model_path; /* NULL: the config defaults */
	const char *dqn_model_path;      /* CWND_POLICY_DQN's model */
	double explore;                  /* DQN: probability of a random action */
	bool learn;                      /* DQN: fine-tune on-line (user/dqn_learn.h) */
	const char *learn_out_path;      /* with learn: where the fine-tuned model goes at exit */
	bool shadow;
	struct hysteresis_params hysteresis;
	const char *decision_log_path;   /* JSON lines; NULL: none */
};

struct controller_stats {
	uint64_t decisions;         /* cap changes taken (acted or, in shadow, logged) */
	uint64_t batching_changes;
	uint64_t map_errors;
};

struct controller {
	struct controller_opts opt;
	struct reflex_bpf *bpf;
	struct model *cwnd_model;
	struct model *batching_model;
	struct model *dqn_model;
	int dqn_map[MODEL_MAX_FEATURES];
	struct dqn_learn *learner;           /* with --learn; its models replace dqn_model */
	uint64_t learn_generation;           /* of the model the last decision used */
	struct dqn_learn_stats learn_done;   /* summed over the learners stopped so far */
	uint64_t learn_epoch;                /* learners started so far */
	struct learn_guard guard;            /* rolls back fine-tuned models that do worse */
	uint64_t canary_decisions;           /* made by the loaded model while a fine-tuned one decides */
	uint64_t rng;                        /* exploration (xorshift64) */
	int cwnd_map[MODEL_MAX_FEATURES];
	int batching_map[MODEL_MAX_FEATURES];
	int cwnd_output;                     /* index of cwnd_bdp_multiple */
	int flush_output, delay_output;      /* indexes in the batching model */
	struct reflex_config config;         /* what the config map holds */
	FILE *log;
	struct controller_stats stats;
	struct shadow_report shadow;
};

/* Every input a model may name: the ten features, then the context columns. */
#define CONTROL_INPUTS (FEATURE_COUNT + CONTEXT_COUNT)
extern const char *const control_input_names[CONTROL_INPUTS];

/* Loads the models (a model that fails leaves the heuristic or the defaults in
 * place, and says so on stderr) and, with learn, starts the DQN's learner (which
 * also, when it fails, says so and leaves the loaded model deciding). Returns 0,
 * or -1 if the log cannot be opened or learn_out_path's directory not written. */
int controller_init(struct controller *c, const struct controller_opts *opt, struct reflex_bpf *bpf,
		    const struct reflex_config *config);
/* With a learner: stops it, writes learn_out_path, and prints what it did. */
void controller_free(struct controller *c);

/* Reloads the model files; a file that fails validation is refused and the running
 * model keeps running. A new dqn model restarts the learner from it. */
void controller_reload(struct controller *c);

void controller_heartbeat(struct controller *c, uint64_t now_ns);
void controller_on_flow_window(struct controller *c, struct flow_entry *flow, const struct feature_window *w);
void controller_on_iface_window(struct controller *c, const struct feature_window *w);
void controller_flow_gone(struct controller *c, struct flow_entry *flow);

/* Leaves shadow mode: from now on decisions act; the flow's decision in force is
 * written at once (call for every live flow after setting c->opt.shadow = false). */
void controller_enforce_current(struct controller *c, struct flow_entry *flow);

/* What decides cwnd now: "dqn", "cwnd-tree" or "heuristic". */
const char *controller_policy_name(const struct controller *c);

/* Feeds one window's delivery rate to the full-pipe test; true once the pipe is full. */
bool full_pipe_update(struct flow_control *fc, double rate_bps, double rtt_p50_us, double min_rtt_us);

/* The cap in packets for a BDP multiple (0 = none):
 * multiple x rate x max(min RTT, CWND_RTT_FLOOR_US) / mss, at least CWND_MIN_CLAMP. */
uint32_t cwnd_cap_packets(double multiple, double rate_bps, double min_rtt_us, uint32_t mss);

#endif
