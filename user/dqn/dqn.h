/*
 * The DQN congestion agent as reflexd runs it: per flow, once per decision
 * interval, one of six cwnd actions from a Q-network over the flow's telemetry.
 * Training (replay, simulator environment, trainer, evaluation, checkpoints,
 * export) is dqn/train.h; this header pulls none of it in.
 *
 * The same code turns telemetry into features and rewards in the trainer (on the
 * bottleneck simulator) and in reflexd (on live flows): dqn_flow_observe().
 *
 * Features (model feature order; raw units, normalized by the `.reflex` feature
 * schema's min/max as x = clamp((raw - min) / (max - min), 0, 1)):
 *   the seed's eight, with the seed's divisors as max:
 *     0 rtt_us            srtt, us                      [0, 1e6]
 *     1 rtt_var_us        mdev, us                      [0, 5e5]
 *     2 bandwidth_bps     delivery rate of the interval [0, 1e10]
 *     3 loss_rate         retrans / (delivered + retrans) in the interval [0, 1]
 *     4 loss_trend        loss_rate minus the previous interval's [-1, 1]
 *     5 inflight          packets in flight             [0, 1e4]
 *     6 cwnd              bytes (snd_cwnd * mss)        [0, 1e6]
 *     7 buffer_occupancy  bottleneck backlog / its limit [0, 1]
 *   then a short throughput history and the flow's position against its path
 *   (scale-free, so one policy serves 5 Mbit/s and 1 Gbit/s alike; without them
 *   the seed's divisors leave a 20 ms and a 27 ms RTT on the same int8 step):
 *     8 delivery_ratio    delivery rate / max delivery rate of the last DQN_MAX_FILTER_STEPS intervals [0, 1]
 *     9 delivery_ratio_1  the same one interval earlier [0, 1]
 *    10 delivery_ratio_2  two intervals earlier         [0, 1]
 *    11 rtt_ratio         min_rtt / srtt                [0, 1]
 *    12 cwnd_bdp          cwnd bytes / (max delivery rate * min_rtt) [0, 4]
 * With dqn_train_opts.seed_features_only the network sees features 0-7 only.
 *
 * Reward of an interval (Orca/Aurora style: throughput minus delay minus loss),
 * from what reflexd sees per flow:
 *   reward = delivery_ratio - DQN_REWARD_DELAY_WEIGHT * max(0, srtt / min_rtt - 1)
 *                           - DQN_REWARD_LOSS_WEIGHT * loss_rate
 */
#ifndef REFLEX_DQN_H
#define REFLEX_DQN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/bottleneck_sim.h"
#include "dqn/mlp.h"

#define DQN_ACTIONS 6
#define DQN_SEED_FEATURES 8
#define DQN_FEATURES 13
#define DQN_MAX_FILTER_STEPS 100
#define DQN_REWARD_DELAY_WEIGHT 0.5
#define DQN_REWARD_LOSS_WEIGHT 10.0
#define DQN_INIT_CWND 10              /* packets: what SlowStart resets to */
#define DQN_MIN_CWND 2
#define DQN_MIN_INTERVAL_US 10000     /* reflexd's telemetry sample interval */
#define DQN_MAX_INTERVAL_US 500000

enum dqn_action {
	DQN_INCREASE5 = 0,
	DQN_INCREASE10 = 1,
	DQN_MAINTAIN = 2,
	DQN_DECREASE5 = 3,
	DQN_DECREASE10 = 4,
	DQN_SLOW_START = 5,
};

/* Output names in the `.reflex` file and in logs: "increase5", ... "slow_start". */
extern const char *const dqn_action_names[DQN_ACTIONS];

struct dqn_feature_def {
	const char *name;
	double min, max;
};

extern const struct dqn_feature_def dqn_features[DQN_FEATURES];

/* The cwnd (packets) an action asks for: +-5 % / +-10 % moving at least one packet,
 * at least DQN_MIN_CWND, at most BSIM_MAX_CWND; SlowStart gives DQN_INIT_CWND. */
uint32_t dqn_apply_action(enum dqn_action action, uint32_t cwnd_pkts);

/* Decision interval for a flow: its min RTT clamped to [DQN_MIN_INTERVAL_US, DQN_MAX_INTERVAL_US]. */
uint32_t dqn_decision_interval_us(double min_rtt_us);

/* One decision interval of one flow, as telemetry reports it. */
struct dqn_interval {
	double interval_us;        /* > 0 */
	double delivered_bytes;    /* acked in the interval */
	double delivered_pkts;
	double retrans_pkts;       /* retransmissions in the interval */
	double srtt_us;            /* at the interval end */
	double rttvar_us;
	double min_rtt_us;         /* least RTT seen for the flow so far */
	double inflight_pkts;      /* packets_out at the end */
	double cwnd_pkts;          /* snd_cwnd at the end */
	double mss;                /* bytes */
	double buffer_occupancy;   /* bottleneck backlog / limit at the end, [0, 1] */
};

/* Per-flow memory of the features: the previous loss rate and the delivery-rate
 * history and its windowed max. Zero-initialize or dqn_flow_init(). */
struct dqn_flow_state {
	double prev_loss_rate;
	double ratio_hist[2];
	double rate_window[DQN_MAX_FILTER_STEPS];
	uint32_t rate_count;   /* intervals seen, saturating at DQN_MAX_FILTER_STEPS */
	uint32_t rate_next;
};

void dqn_flow_init(struct dqn_flow_state *fs);
/* The largest delivery rate (bit/s) of the last DQN_MAX_FILTER_STEPS intervals. */
double dqn_flow_max_rate(const struct dqn_flow_state *fs);

/* Raw feature vector (DQN_FEATURES, model feature order) for the interval, the
 * interval's reward, and the state update. reward may be NULL. */
void dqn_flow_observe(struct dqn_flow_state *fs, const struct dqn_interval *iv, double *raw,
		      double *reward);

/* Network input from raw features: min/max normalization onto the int8 input grid
 * of the `.reflex` MLP (q = round(x * 32767), a = (q * 127 + 16383) / 32767,
 * input = a / 127), so the float net trains on exactly what int8 inference sees. */
void dqn_normalize(const double *raw, unsigned n, float *x);

/* Greedy action of a float Q-network (lowest index on ties). */
enum dqn_action dqn_greedy(const struct mlp *net, const float *x);

struct model;

/* Greedy action of an int8 `.reflex` DQN model on raw features; map as for
 * model_quantize (NULL: raw is in the model's feature order). */
enum dqn_action dqn_int8_action(const struct model *m, const double *raw, const int *map);

#endif /* REFLEX_DQN_H */
