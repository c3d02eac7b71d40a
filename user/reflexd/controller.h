/*
 * reflexd's decisions. At every window step each TCP flow gets a cwnd from its
 * policy (policy.h: the `cwnd` tree model, the DQN, or the heuristic when neither is
 * loaded); the value passes the hysteresis and goes to the actuator (actuator.h),
 * which writes it where the BPF side applies it. The interface window drives the
 * `batching` model, which retunes the telemetry pipeline. In shadow mode everything
 * is computed and logged, nothing acts. The controller keeps its own per-flow table;
 * telemetry tells it when a flow is gone (closed, idle, or its 4-tuple reused).
 */
#ifndef REFLEX_CONTROLLER_H
#define REFLEX_CONTROLLER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/bdp.h"
#include "lib/feature_schema.h"
#include "lib/flow_key.h"
#include "lib/flow_table.h"
#include "model/model.h"
#include "reflex.h"
#include "reflexd/actuator.h"
#include "reflexd/fair_share.h"
#include "reflexd/hysteresis.h"
#include "reflexd/model_health.h"
#include "reflexd/policy.h"
#include "reflexd/shadow.h"
#include "reflexd/telemetry.h"

enum cwnd_policy {
	CWND_POLICY_OFF = 0,  /* telemetry only */
	CWND_POLICY_HEURISTIC,
	CWND_POLICY_TREE,     /* the cwnd tree model, or the heuristic without one */
	CWND_POLICY_DQN,      /* the DQN's int8 MLP, or the heuristic without one */
};

/* The BDP a multiple applies to: max delivery rate of the last RATE_WINDOWS windows.
 * Cuts use it too: a shorter memory for cuts (1 s) once lowered the LTE downlinks'
 * p95, but only because sparse samples inflated the rates (telemetry.c,
 * delivery_start); with the rates measured right, 1 s cost 0.04-0.13 x BBR's
 * throughput there and 2 s kept it (README, the arena). */
#define RATE_WINDOWS 20

/* A flow is in startup, and left uncapped, until its delivery rate has failed to
 * grow by FULL_PIPE_GROWTH for FULL_PIPE_WINDOWS windows in a row (BBR's full-pipe
 * test), or its median RTT in a window exceeds FULL_PIPE_RTT_RATIO x its min RTT (a
 * queue is building, HyStart's signal): before that there is no BDP estimate worth
 * capping at, after it slow start would only fill the buffer. */
#define FULL_PIPE_GROWTH 1.25
#define FULL_PIPE_WINDOWS 3
#define FULL_PIPE_RTT_RATIO 1.5

/* A flow held at its cap while its median RTT stays under PROBE_RTT_RATIO x its min
 * RTT has no queue: the link may carry more than the rate measured under the cap, and
 * a multiple of that rate (at most 1.25 x it, with the tree's 1.0 not even that) would
 * keep the cap where it is while the link rises. Such a flow's cap is raised to
 * max(multiple, HEURISTIC_BDP_GAIN) x rate x median RTT, at least PROBE_STEP x the
 * cap in force; once a queue shows, the policy's own multiple applies again. */
#define PROBE_RTT_RATIO 1.2
#define PROBE_STEP 1.25
/* Between PROBE_RTT_RATIO and FULL_PIPE_RTT_RATIO x min RTT a capped flow's RTT may
 * be jitter or a small queue: it neither probes at every hold nor is cut (a cut needs
 * a queue), so on a jittery link it could sit far below the link's rate (the arena's
 * 50 Mbit/s step: 34 packets for 4.5 s). It probes once PROBE_SLOW_GAP_MS passed
 * without a change; if the link was full, the probe's queue cuts it back (BBR's
 * periodic bandwidth probe). */
#define PROBE_SLOW_GAP_MS 2000

/* A queue that stays over FULL_PIPE_RTT_RATIO x min RTT for FOREIGN_QUEUE_MS after a cut
 * while the flow is capped is not the cap's own: after a cut the flow's own queue drains within
 * the rate window (2 s) and the hold. It is a competing loss-based flow's, which fills
 * the buffer whatever the cap does; a cap that keeps cutting under it starves the
 * flow (the arena's reflex flow against a cubic flow: 6 % of the bottleneck). The cap
 * is lifted for FOREIGN_LIFT_MS, the kernel's CC competes, then the cap returns. */
#define FOREIGN_QUEUE_MS 5000
#define FOREIGN_LIFT_MS 10000
/* When the cap returns after a lift, the queue the flow made while lifted drains
 * within about one of its queue delays if the flow is alone (it delivered at least
 * the link's rate less the competitor's). A queue that stays through the returned
 * cap's cuts for FOREIGN_RECHECK_MS, and three median RTTs of the window the cap
 * returned in, is the competitor's still: the cap is lifted again at once, for twice
 * as long as before, up to FOREIGN_LIFT_MAX_MS. Every return costs the flow its share
 * while it re-grows from the cap; a return that finds no queue ends it. The maximum
 * bounds what a lift costs when the competitor leaves during it: the flow's CC alone
 * fills the buffer until the cap returns. */
#define FOREIGN_RECHECK_MS 2000
#define FOREIGN_LIFT_MAX_MS 20000

enum foreign_state { FOREIGN_NONE, FOREIGN_QUEUE, FOREIGN_CUT, FOREIGN_LIFTED, FOREIGN_RETURNED };

/* Well inside the BPF side's heartbeat deadline (500 ms by default). */
#define HEARTBEAT_PERIOD_NS (50ULL * 1000 * 1000)

/* The batching knobs' legal ranges (reflexd --flush-threshold, --max-batch-delay-us):
 * a batching model's outputs are held to them. */
#define FLUSH_THRESHOLD_MIN 1
#define FLUSH_THRESHOLD_MAX 64
#define MAX_BATCH_DELAY_US_MIN 50
#define MAX_BATCH_DELAY_US_MAX 4000

/* Per-flow control state, in the controller's table of slots (flow_table_init_slots):
 * the flow's entry holds its slot (control_slot) and this points back, so neither
 * repeats the 40-byte key nor needs a second index. 120 bytes, was 224 and 10 of
 * index (100k flows: 11 MB less). */
struct flow_control {
	struct flow_entry *flow; /* whose state it is: its entry lives until controller_flow_gone */
	struct hysteresis cwnd;
	struct policy_flow *policy; /* only for a policy with per-flow state (the DQN's) */
	uint16_t rate_bps[RATE_WINDOWS]; /* delivery rate of recent windows (ring), lib/log16.h */
	float full_pipe_rate; /* a 25 % growth test needs no more than float's 24 bits */
	unsigned rate_next;
	struct flow_anomaly anomaly;   /* against the cwnd tree's isolation forest */
	uint8_t full_pipe_count; /* up to FULL_PIPE_WINDOWS */
	bool pipe_full;
	bool decision_written;
	uint8_t foreign;     /* enum foreign_state */
	uint32_t foreign_ms; /* since when in that state: ms, wraps (compare differences) */
	uint32_t foreign_lift_ms;  /* how long the last lift lasted: 0 before any */
	float foreign_return_p50_us; /* median RTT of the first queued window after the cap returned */
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
	struct model_health_opts health;  /* drift hand-over of the tree models */
	unsigned max_flows;              /* flows with control state at most; 0: REFLEX_MAX_FLOWS */
};

struct controller_stats {
	uint64_t decisions;         /* cap changes taken (acted or, in shadow, logged) */
	uint64_t batching_changes;
	uint64_t map_errors;
	uint64_t anomaly_handovers; /* flows handed to the heuristic for their anomaly score */
	uint64_t anomaly_returns;
	uint32_t anomaly_flows;     /* flows the heuristic decides for it now */
	uint64_t foreign_lifts;     /* caps lifted for a competing flow's queue (FOREIGN_QUEUE_MS) */
	uint64_t foreign_relifts;   /* lifted again when it stayed through the returned cap */
};

struct controller {
	struct controller_opts opt;
	struct actuator *act;
	struct policy heuristic;
	struct tree_policy tree;
	struct dqn_cwnd_policy dqn;
	struct policy *chosen;               /* by opt.policy; the heuristic stands in until it is ready */
	struct model *batching_model;
	int batching_map[MODEL_MAX_FEATURES];
	int flush_output, delay_output;      /* indexes in the batching model */
	struct reflex_config config;         /* what the config map holds */
	struct flow_table flows;             /* flow_control by slot, sized at the first flow */
	bool beaten;
	uint64_t last_beat_ns;
	FILE *log;
	struct controller_stats stats;
	struct shadow_report shadow;
	/* the last capped flow (its control slot) that saw a queue, and when (ms): a queue
	 * two of reflexd's flows see together is no foreign one (FOREIGN_QUEUE_MS) */
	uint32_t queue_slot;
	uint32_t queue_ms;
	struct fair_share fair; /* the caps of flows in a queue, for even cuts in a shared one */
	struct model_drift cwnd_drift, batching_drift; /* the tree models' drift */
};

/* Loads the models (a model that fails leaves the heuristic or the defaults in
 * place, and says so on stderr) and, with learn, starts the DQN's learner (which
 * also, when it fails, says so and leaves the loaded model deciding). Decisions,
 * heartbeats and config changes go to act. Returns 0, or -1 if the log cannot be
 * opened or learn_out_path's directory not written. */
int controller_init(struct controller *c, const struct controller_opts *opt, struct actuator *act,
		    const struct reflex_config *config);
/* Forgets every flow (without withdrawing: controller_flow_gone does), stops the
 * learner, writes learn_out_path and prints what it did. */
void controller_free(struct controller *c);

/* Reloads the model files; a file that fails validation is refused and the running
 * model keeps running. A new dqn model restarts the learner from it. */
void controller_reload(struct controller *c);

/* Called from the decision loop: beats at most every HEARTBEAT_PERIOD_NS, so when the
 * loop stalls the beat stops and the BPF side lifts every decision. */
void controller_heartbeat(struct controller *c, uint64_t now_ns);
/* The flow's entry holds where its control state is (control_slot), so it is not const. */
void controller_on_flow_window(struct controller *c, struct flow_entry *flow, const struct feature_window *w);
/* Writes the decisions the actuator holds (actuator.h, flush): reflexd calls it after
 * each drain of the ring buffers and each pass over the windows, and inside a drain
 * every DRAIN_FLUSH_RECORDS records. */
void controller_flush(struct controller *c);
/* A drain after a window's end takes thousands of records (every flow's first record
 * of the step comes within a sample interval, and each closes its window): written
 * only at the drain's end, the first decisions would wait for all of them. An empty
 * flush costs no system call. */
#define DRAIN_FLUSH_RECORDS 32
void controller_on_iface_window(struct controller *c, const struct feature_window *w);
/* The flow is gone (or its 4-tuple now belongs to a new connection): its decision is
 * withdrawn and its state forgotten. */
void controller_flow_gone(struct controller *c, struct flow_entry *flow);

/* Leaves shadow mode if the promotion gate passes: from then on decisions act, and
 * every flow's decision in force is written at once. why says what the gate
 * measured (and, if it failed, what failed). */
bool controller_promote(struct controller *c, char *why, size_t why_len);

/* The shadow verdict, for operators (stderr) and for `reflexctl promote` (a key=value
 * file at status_path, replaced atomically); true if the gate passes. */
bool controller_shadow_report(struct controller *c, const char *status_path);
/* In shadow mode: controller_promote, saying on stderr whether it passed (by: who
 * asked), then the verdict again to status_path. */
void controller_promote_by(struct controller *c, const char *by, const char *status_path);

/* What decides cwnd now: "dqn", "cwnd-tree" or "heuristic". */
const char *controller_policy_name(const struct controller *c);

/* Feeds one window's delivery rate to the full-pipe test; true once the pipe is full. */
bool full_pipe_update(struct flow_control *fc, double rate_bps, double rtt_p50_us, double min_rtt_us);

/* The cap in packets for a BDP multiple (0 = none): bdp_cap_packets (lib/bdp.h),
 * with DEFAULT_MSS for an mss of 0. */
uint32_t cwnd_cap_packets(double multiple, double rate_bps, double min_rtt_us, uint32_t mss);

#endif
