// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* The DQN agent as reflexd runs it: actions, decision interval, features and
 * reward, normalization, the float and the int8 greedy action. */
#include "dqn/dqn.h"

#include <math.h>
#include <string.h>

#include "model/model.h"
#include "model/model_fast.h"

#define Q_MAX 32767 /* the `.reflex` int16 feature grid */

const char *const dqn_action_names[DQN_ACTIONS] = {
	"increase5", "increase10", "maintain", "decrease5", "decrease10", "slow_start",
};

const struct dqn_feature_def dqn_features[DQN_FEATURES] = {
	{ "rtt_us", 0, 1e6 },
	{ "rtt_var_us", 0, 5e5 },
	{ "bandwidth_bps", 0, 1e10 },
	{ "loss_rate", 0, 1 },
	{ "loss_trend", -1, 1 },
	{ "inflight", 0, 1e4 },
	{ "cwnd", 0, 1e6 },
	{ "buffer_occupancy", 0, 1 },
	{ "delivery_ratio", 0, 1 },
	{ "delivery_ratio_1", 0, 1 },
	{ "delivery_ratio_2", 0, 1 },
	{ "rtt_ratio", 0, 1 },
	{ "cwnd_bdp", 0, 4 },
};

uint32_t dqn_apply_action(enum dqn_action action, uint32_t cwnd_pkts)
{
	double c = cwnd_pkts, next;

	switch (action) {
	case DQN_INCREASE5:
		next = fmax(c + 1, round(c * 1.05));
		break;
	case DQN_INCREASE10:
		next = fmax(c + 1, round(c * 1.10));
		break;
	case DQN_DECREASE5:
		next = fmin(c - 1, round(c * 0.95));
		break;
	case DQN_DECREASE10:
		next = fmin(c - 1, round(c * 0.90));
		break;
	case DQN_SLOW_START:
		next = DQN_INIT_CWND;
		break;
	case DQN_MAINTAIN:
	default:
		next = c;
		break;
	}
	if (next < DQN_MIN_CWND)
		next = DQN_MIN_CWND;
	if (next > BSIM_MAX_CWND)
		next = BSIM_MAX_CWND;
	return (uint32_t)next;
}

uint32_t dqn_decision_interval_us(double min_rtt_us)
{
	if (!(min_rtt_us > DQN_MIN_INTERVAL_US))
		return DQN_MIN_INTERVAL_US;
	if (min_rtt_us > DQN_MAX_INTERVAL_US)
		return DQN_MAX_INTERVAL_US;
	return (uint32_t)min_rtt_us;
}

void dqn_flow_init(struct dqn_flow_state *fs)
{
	memset(fs, 0, sizeof(*fs));
}

double dqn_flow_max_rate(const struct dqn_flow_state *fs)
{
	double max = 0;

	for (uint32_t i = 0; i < fs->rate_count; i++)
		if (fs->rate_window[i] > max)
			max = fs->rate_window[i];
	return max;
}

static double positive_or_zero(double x)
{
	return x > 0 ? x : 0; /* also maps NaN to 0 */
}

void dqn_flow_observe(struct dqn_flow_state *fs, const struct dqn_interval *iv, double *raw,
		      double *reward)
{
	double rate = iv->interval_us > 0 ? positive_or_zero(iv->delivered_bytes) * 8e6 / iv->interval_us : 0;
	double sent = positive_or_zero(iv->delivered_pkts) + positive_or_zero(iv->retrans_pkts);
	double loss = sent > 0 ? positive_or_zero(iv->retrans_pkts) / sent : 0;
	double cwnd_bytes = positive_or_zero(iv->cwnd_pkts) * positive_or_zero(iv->mss);
	double max_rate, ratio, rtt_ratio, bdp, cwnd_bdp, queueing;

	fs->rate_window[fs->rate_next] = rate;
	fs->rate_next = (fs->rate_next + 1) % DQN_MAX_FILTER_STEPS;
	if (fs->rate_count < DQN_MAX_FILTER_STEPS)
		fs->rate_count++;
	max_rate = dqn_flow_max_rate(fs);
	ratio = max_rate > 0 ? rate / max_rate : 0;
	rtt_ratio = iv->srtt_us > 0 && iv->min_rtt_us > 0 ? fmin(1.0, iv->min_rtt_us / iv->srtt_us) : 1.0;
	bdp = max_rate * positive_or_zero(iv->min_rtt_us) / 8e6;
	cwnd_bdp = bdp > 0 ? cwnd_bytes / bdp : dqn_features[12].max;
	queueing = iv->min_rtt_us > 0 ? positive_or_zero(iv->srtt_us / iv->min_rtt_us - 1.0) : 0;

	raw[0] = positive_or_zero(iv->srtt_us);
	raw[1] = positive_or_zero(iv->rttvar_us);
	raw[2] = rate;
	raw[3] = loss;
	raw[4] = loss - fs->prev_loss_rate;
	raw[5] = positive_or_zero(iv->inflight_pkts);
	raw[6] = cwnd_bytes;
	raw[7] = positive_or_zero(iv->buffer_occupancy);
	raw[8] = ratio;
	raw[9] = fs->ratio_hist[0];
	raw[10] = fs->ratio_hist[1];
	raw[11] = rtt_ratio;
	raw[12] = cwnd_bdp;
	if (reward)
		*reward = ratio - DQN_REWARD_DELAY_WEIGHT * queueing - DQN_REWARD_LOSS_WEIGHT * loss;

	fs->ratio_hist[1] = fs->ratio_hist[0];
	fs->ratio_hist[0] = ratio;
	fs->prev_loss_rate = loss;
}

void dqn_normalize(const double *raw, unsigned n, float *x)
{
	for (unsigned i = 0; i < n; i++) {
		const struct dqn_feature_def *f = &dqn_features[i];
		double norm = (raw[i] - f->min) / (f->max - f->min);
		int32_t q, a;

		/* Same steps as model_feature_normalize + model_quantize_norm and the
		 * MLP's first-layer input (model.h): int16 grid, then int8 grid. */
		if (!(norm > 0))
			q = 0;
		else if (norm >= 1)
			q = Q_MAX;
		else
			q = (int32_t)floor(norm * Q_MAX + 0.5);
		a = (q * 127 + Q_MAX / 2) / Q_MAX;
		x[i] = (float)a / 127.0f;
	}
}

enum dqn_action dqn_greedy(const struct mlp *net, const float *x)
{
	float hidden[MLP_MAX_UNITS], q[DQN_ACTIONS];
	unsigned best = 0;

	mlp_forward(net, x, hidden, q);
	for (unsigned a = 1; a < DQN_ACTIONS; a++)
		if (q[a] > q[best])
			best = a;
	return (enum dqn_action)best;
}

enum dqn_action dqn_int8_action(const struct model *m, const double *raw, const int *map)
{
	int32_t value[MODEL_MAX_OUTPUTS];

	model_decide(m, raw, map, value);
	return (enum dqn_action)model_argmax(value, m->output_count);
}
