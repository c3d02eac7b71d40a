// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* The training environment: scenarios drawn from the training spread and one
 * simulated flow under the policy's clamp, observed as reflexd observes a flow. */
#include <math.h>
#include <string.h>

#include "dqn/train_internal.h"
#include "lib/bdp.h"

static double log_uniform(struct prng *rng, double lo, double hi)
{
	return exp(log(lo) + (log(hi) - log(lo)) * prng_uniform(rng));
}

/*
 * The training and evaluation spread: 5 Mbit/s - 1 Gbit/s, 5 - 200 ms, 0.5 - 4 BDP of
 * buffer (at least 10 packets), random loss 0 or 1e-4 - 2e-2, a quarter with 10-50 %
 * constant-rate cross traffic, a quarter with a rate change (x0.5 - x2) mid-episode.
 */
void dqn_scenario_sample(struct prng *rng, uint32_t steps, struct dqn_scenario *sc)
{
	struct bsim_config *c = &sc->cfg;
	double bdp_pkts, interval_us;

	bsim_config_default(c);
	c->cc = BSIM_CC_CUBIC;
	c->link_bps = (uint64_t)log_uniform(rng, 5e6, 1e9);
	c->base_rtt_us = (uint32_t)log_uniform(rng, 5000, 200000);
	bdp_pkts = bsim_bdp_packets(c) * log_uniform(rng, 0.5, 4.0);
	c->buffer_bytes = (uint64_t)fmax(10.0, round(bdp_pkts)) * c->mss;
	c->loss_rate = prng_uniform(rng) < 0.5 ? 0.0 : log_uniform(rng, 1e-4, 2e-2);
	if (prng_uniform(rng) < 0.25)
		c->cross_bps = (uint64_t)(c->link_bps * (0.1 + 0.4 * prng_uniform(rng)));
	sc->warmup_rtts = 2 + (uint32_t)prng_below(rng, 40);
	interval_us = dqn_decision_interval_us(bsim_min_rtt_us(c));
	if (prng_uniform(rng) < 0.25) {
		double at = sc->warmup_rtts * (double)c->base_rtt_us +
			    interval_us * steps * (0.2 + 0.6 * prng_uniform(rng));

		c->rate_change_at_us = (uint64_t)at;
		c->rate_change_bps = (uint64_t)(c->link_bps * log_uniform(rng, 0.5, 2.0));
	}
	c->seed = prng_next(rng);
}

void dqn_interval_from_sim(const struct bsim_config *cfg, const struct bsim_flow_stats *prev, uint64_t prev_us,
			   const struct bsim_flow_stats *now, const struct bsim_link_stats *link,
			   struct dqn_interval *iv)
{
	*iv = (struct dqn_interval){
		.interval_us = (double)(link->now_us - prev_us),
		.delivered_bytes = (double)(now->delivered_bytes - prev->delivered_bytes),
		.delivered_pkts = (double)(now->delivered_pkts - prev->delivered_pkts),
		.retrans_pkts = (double)(now->retrans_pkts - prev->retrans_pkts),
		.srtt_us = now->srtt_us,
		.rttvar_us = now->rttvar_us,
		.min_rtt_us = now->min_rtt_us,
		.inflight_pkts = now->inflight,
		.cwnd_pkts = now->cwnd,
		.mss = cfg->mss ? cfg->mss : BSIM_DEFAULT_MSS,
		.buffer_occupancy = (double)link->queue_bytes / (double)cfg->buffer_bytes,
	};
}

/* Runs one decision interval and observes it. */
void dqn_env_interval(struct dqn_env *e)
{
	struct bsim_flow_stats fl;
	struct bsim_link_stats ln;
	struct dqn_interval iv;
	double avail;
	uint32_t len = dqn_decision_interval_us(e->prev_flow.min_rtt_us);

	bsim_run_until(e->sim, bsim_now_us(e->sim) + len);
	bsim_flow_stats(e->sim, 0, &fl);
	bsim_link_stats(e->sim, &ln);
	dqn_interval_from_sim(&e->sc->cfg, &e->prev_flow, e->prev_link.now_us, &fl, &ln, &iv);
	dqn_flow_observe(&e->fs, &iv, e->raw, &e->reward);
	avail = (double)(ln.capacity_bytes - e->prev_link.capacity_bytes) -
		(double)(ln.cross_delivered_bytes - e->prev_link.cross_delivered_bytes);
	e->utilization = avail > 0 ? fmin(1.0, iv.delivered_bytes / avail) : 1.0;
	e->rtt_ratio = fl.min_rtt_us ? (double)fl.srtt_us / fl.min_rtt_us : 1.0;
	e->loss_rate = e->raw[3];
	if (e->sc->trace)
		e->reward = e->utilization - e->sc->trace_delay_weight * fmax(0.0, e->rtt_ratio - 1.0) -
			    DQN_REWARD_LOSS_WEIGHT * e->loss_rate;
	e->prev_flow = fl;
	e->prev_link = ln;
}

/* Plain CUBIC for the warm-up, then one interval so there is a first state. */
int dqn_env_start(struct dqn_env *e, const struct dqn_scenario *sc)
{
	int err;

	memset(e, 0, sizeof(*e));
	e->sc = sc;
	err = bsim_new(&sc->cfg, &e->sim);
	if (err)
		return err;
	dqn_flow_init(&e->fs);
	bsim_run_until(e->sim, (uint64_t)sc->warmup_rtts * sc->cfg.base_rtt_us);
	bsim_flow_stats(e->sim, 0, &e->prev_flow);
	bsim_link_stats(e->sim, &e->prev_link);
	dqn_env_interval(e);
	e->clamp = e->prev_flow.cwnd > DQN_MIN_CWND ? e->prev_flow.cwnd : DQN_MIN_CWND;
	return 0;
}

void dqn_env_stop(struct dqn_env *e)
{
	bsim_free(e->sim);
	e->sim = NULL;
}

/* The actuator reflexd uses: the policy's cwnd becomes the flow's
 * TCP_BPF_SNDCWND_CLAMP (0 = none), CUBIC runs beneath it. Only a change is
 * written: every write also sets ssthresh, so rewriting an unchanged clamp each
 * step would undo CUBIC's reaction to loss. */
void dqn_env_actuate(struct dqn_env *e, uint32_t clamp)
{
	struct bsim_flow_stats fl;

	e->clamp = clamp;
	bsim_flow_stats(e->sim, 0, &fl);
	if (fl.cwnd_clamp != clamp)
		bsim_set_cwnd_clamp(e->sim, 0, clamp);
}

uint32_t dqn_heuristic_clamp(const struct dqn_env *e)
{
	return bdp_cap_packets(DQN_HEURISTIC_BDP_MULTIPLE, dqn_flow_max_rate(&e->fs), e->prev_flow.min_rtt_us,
			       e->sc->cfg.mss);
}
