// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* The bottleneck-queue simulator; the model is described in bottleneck_sim.h. */
#include "sim/bottleneck_sim.h"
#include "lib/trace.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/bdp.h"
#include "lib/percentile.h"

#define NS_PER_US 1000.0
#define NS_PER_S 1e9
#define NO_DEPARTURE (-1.0)

#define CUBIC_C 0.4
#define CUBIC_BETA 0.7
#define RENO_BETA 0.5
#define MIN_CWND 2.0

/* --- config ------------------------------------------------------------------ */

void bsim_config_default(struct bsim_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->link_bps = 100000000ULL;
	cfg->base_rtt_us = 20000;
	cfg->mss = BSIM_DEFAULT_MSS;
	cfg->flows = 1;
	cfg->cc = BSIM_CC_CUBIC;
	cfg->init_cwnd = BSIM_DEFAULT_INIT_CWND;
	cfg->buffer_bytes = (uint64_t)bsim_bdp_bytes(cfg);
	cfg->seed = 1;
}

static uint32_t effective_mss(const struct bsim_config *cfg)
{
	return cfg->mss ? cfg->mss : BSIM_DEFAULT_MSS;
}

static bool schedule_rates_positive(const struct bsim_config *cfg)
{
	for (uint32_t i = 0; i < cfg->rate_schedule_len; i++)
		if (cfg->rate_schedule_bps[i] == 0)
			return false;
	return true;
}

int bsim_schedule_from_trace(const struct trace *t, uint64_t offset_ms, uint32_t step_ms,
			     uint32_t steps, uint64_t *rates_bps)
{
	const uint64_t packet_bits = TRACE_MTU_BYTES * 8ULL;

	if (step_ms == 0 || steps == 0)
		return -EINVAL;
	for (uint32_t i = 0; i < steps; i++) {
		uint64_t from = offset_ms + (uint64_t)i * step_ms;
		uint64_t n = trace_count(t, from, from + step_ms);

		rates_bps[i] = (n ? n : 1) * packet_bits * 1000 / step_ms;
	}
	return 0;
}

int bsim_config_check(const struct bsim_config *cfg, char *err, size_t err_len)
{
	const char *what = NULL;

	if (cfg->link_bps == 0)
		what = "link_bps must be > 0";
	else if (cfg->base_rtt_us == 0)
		what = "base_rtt_us must be > 0";
	else if (!(cfg->loss_rate >= 0.0 && cfg->loss_rate < 1.0))
		what = "loss_rate must be in [0, 1)";
	else if (cfg->mss && cfg->mss < 64)
		what = "mss must be >= 64 bytes (or 0 for the default)";
	else if (cfg->buffer_bytes < effective_mss(cfg))
		what = "buffer_bytes must hold at least one mss";
	else if (cfg->flows == 0 || cfg->flows > BSIM_MAX_FLOWS)
		what = "flows must be in [1, BSIM_MAX_FLOWS]";
	else if (cfg->cc != BSIM_CC_CUBIC && cfg->cc != BSIM_CC_RENO && cfg->cc != BSIM_CC_EXTERNAL)
		what = "cc is not a known enum bsim_cc value";
	else if (cfg->init_cwnd > BSIM_MAX_CWND)
		what = "init_cwnd exceeds BSIM_MAX_CWND";
	else if (cfg->cwnd_clamp > BSIM_MAX_CWND)
		what = "cwnd_clamp exceeds BSIM_MAX_CWND";
	else if (cfg->rate_change_at_us && cfg->rate_change_bps == 0)
		what = "rate_change_bps must be > 0 when rate_change_at_us is set";
	else if (cfg->cross_bps >= 1000 * cfg->link_bps)
		what = "cross_bps must be < 1000 x link_bps";
	else if (cfg->rate_schedule_bps && cfg->rate_change_at_us)
		what = "rate_schedule_bps and rate_change_at_us exclude each other";
	else if (cfg->rate_schedule_bps && (cfg->rate_schedule_len == 0 || cfg->rate_schedule_step_us == 0))
		what = "rate_schedule_bps needs rate_schedule_len and rate_schedule_step_us > 0";
	else if (cfg->rate_schedule_bps && !schedule_rates_positive(cfg))
		what = "every rate of rate_schedule_bps must be > 0";
	if (what) {
		if (err && err_len)
			snprintf(err, err_len, "bottleneck sim config: %s", what);
		return -EINVAL;
	}
	if (err && err_len)
		err[0] = '\0';
	return 0;
}

double bsim_bdp_bytes(const struct bsim_config *cfg)
{
	return (double)cfg->link_bps * cfg->base_rtt_us / 8e6;
}

double bsim_bdp_packets(const struct bsim_config *cfg)
{
	return bsim_bdp_bytes(cfg) / effective_mss(cfg);
}

uint32_t bsim_clamp_for_bdp(const struct bsim_config *cfg, double bdp_multiple)
{
	return bdp_cap_packets(bdp_multiple, (double)cfg->link_bps, bsim_min_rtt_us(cfg), effective_mss(cfg));
}

double bsim_min_rtt_us(const struct bsim_config *cfg)
{
	return cfg->base_rtt_us + effective_mss(cfg) * 8e6 / (double)cfg->link_bps;
}

/* --- state ---------------------------------------------------------------------- */

enum event_kind {
	EV_ACK = 0,
	EV_LOSS_TAIL = 1,
	EV_LOSS_RANDOM = 2,
};

/* What reaches a sender: an ACK or the detection of a loss, at event_ns. */
struct event {
	double event_ns;
	uint64_t sent_ns;
	uint16_t flow;
	uint8_t kind;
};

/* Power-of-two rings that grow on demand; head is the oldest element. */
struct event_ring {
	struct event *items;
	size_t cap, head, len;
};

/* A packet in the queue: when it leaves the link, and whether it is cross
 * traffic that will survive the wire (counted as delivered when it leaves). */
struct queued {
	double depart_ns;
	bool cross_delivered;
};

struct depart_ring {
	struct queued *items; /* in departure order, non-decreasing */
	size_t cap, head, len;
};

struct flow {
	double cwnd;
	double ssthresh;
	uint32_t clamp;          /* 0 = none */
	uint32_t inflight;
	uint64_t start_ns;
	uint64_t recovery_ns;    /* losses of packets sent before this do not reduce again */
	bool reduced_once;
	uint64_t retrans_owed;   /* detected losses not yet sent again */
	/* CUBIC */
	double w_max;
	double w_last_max;
	double epoch_ns;         /* < 0: no epoch yet */
	double cubic_k;          /* seconds */
	double cubic_origin;
	double w_est;
	/* RTT estimator */
	double srtt_us;
	double rttvar_us;
	uint32_t min_rtt_us;
	uint32_t last_rtt_us;
	/* counters */
	uint64_t sent_pkts, retrans_pkts, delivered_pkts, lost_pkts, tail_drops;
	uint64_t rtt_samples, rtt_sum_us;
};

struct bsim {
	struct bsim_config cfg;
	uint32_t mss;
	uint64_t tick_ns;
	uint64_t now_ns;
	uint64_t link_bps;
	double tx_ns;             /* serialization of one packet at link_bps */
	double last_depart_ns;
	double last_event_ns;
	bool rate_changed;
	struct prng rng;
	uint64_t pkts_to_random_loss; /* packets that get through the wire before the next random loss */
	struct event_ring events;
	struct depart_ring queue;
	struct flow flows[BSIM_MAX_FLOWS];
	uint32_t first_sender;    /* rotates so no flow always sends first in a tick */
	/* cross traffic */
	double cross_credit_bytes;
	uint64_t cross_sent_pkts;
	uint64_t cross_delivered_pkts;
	/* link totals */
	double capacity_bytes;
	uint64_t tail_drops;
	uint64_t random_losses;
	/* RTT log */
	uint32_t *rtt_log;
	size_t rtt_len, rtt_cap;
	bool rtt_oom;
};

static int event_ring_push(struct event_ring *ring, const struct event *ev)
{
	if (ring->len == ring->cap) {
		size_t new_cap = ring->cap ? ring->cap * 2 : 1024;
		struct event *items = malloc(new_cap * sizeof(*items));

		if (!items)
			return -ENOMEM;
		for (size_t i = 0; i < ring->len; i++)
			items[i] = ring->items[(ring->head + i) & (ring->cap - 1)];
		free(ring->items);
		ring->items = items;
		ring->cap = new_cap;
		ring->head = 0;
	}
	ring->items[(ring->head + ring->len) & (ring->cap - 1)] = *ev;
	ring->len++;
	return 0;
}

static int depart_ring_push(struct depart_ring *ring, double depart_ns)
{
	if (ring->len == ring->cap) {
		size_t new_cap = ring->cap ? ring->cap * 2 : 1024;
		struct queued *items = malloc(new_cap * sizeof(*items));

		if (!items)
			return -ENOMEM;
		for (size_t i = 0; i < ring->len; i++)
			items[i] = ring->items[(ring->head + i) & (ring->cap - 1)];
		free(ring->items);
		ring->items = items;
		ring->cap = new_cap;
		ring->head = 0;
	}
	ring->items[(ring->head + ring->len) & (ring->cap - 1)] =
		(struct queued){ .depart_ns = depart_ns };
	ring->len++;
	return 0;
}

static uint64_t draw_pkts_to_random_loss(struct bsim *sim)
{
	double p = sim->cfg.loss_rate;
	double u, k;

	if (p <= 0.0)
		return UINT64_MAX;
	/* Geometric number of survivors before the next loss: one draw per loss
	 * instead of one per packet. 1 - uniform is in (0, 1], so log() is finite. */
	u = 1.0 - prng_uniform(&sim->rng);
	k = floor(log(u) / log1p(-p));
	return k >= 1.8e19 ? UINT64_MAX : (uint64_t)k;
}

static void set_link_rate(struct bsim *sim, uint64_t bps)
{
	sim->link_bps = bps;
	sim->tx_ns = sim->mss * 8.0 * NS_PER_S / (double)bps;
}

static void apply_clamp(struct flow *f)
{
	if (f->clamp && f->cwnd > f->clamp)
		f->cwnd = f->clamp;
	if (f->cwnd > BSIM_MAX_CWND)
		f->cwnd = BSIM_MAX_CWND;
}

int bsim_new(const struct bsim_config *cfg, struct bsim **out)
{
	struct bsim *sim;
	uint32_t tick_us;

	*out = NULL;
	if (bsim_config_check(cfg, NULL, 0))
		return -EINVAL;
	sim = calloc(1, sizeof(*sim));
	if (!sim)
		return -ENOMEM;
	sim->cfg = *cfg;
	sim->mss = effective_mss(cfg);
	sim->cfg.mss = sim->mss;
	if (!sim->cfg.init_cwnd)
		sim->cfg.init_cwnd = BSIM_DEFAULT_INIT_CWND;
	tick_us = cfg->tick_us;
	if (!tick_us) {
		tick_us = cfg->base_rtt_us / 100;
		tick_us = tick_us < 10 ? 10 : tick_us > 1000 ? 1000 : tick_us;
	}
	sim->cfg.tick_us = tick_us;
	sim->tick_ns = (uint64_t)tick_us * 1000;
	set_link_rate(sim, cfg->link_bps);
	prng_seed(&sim->rng, cfg->seed);
	sim->pkts_to_random_loss = draw_pkts_to_random_loss(sim);
	for (uint32_t i = 0; i < cfg->flows; i++) {
		struct flow *f = &sim->flows[i];

		f->cwnd = sim->cfg.init_cwnd;
		f->ssthresh = INFINITY;
		f->start_ns = (uint64_t)i * cfg->flow_start_gap_us * 1000;
		f->epoch_ns = -1.0;
		if (cfg->cwnd_clamp) {
			f->clamp = cfg->cwnd_clamp;
			f->ssthresh = cfg->cwnd_clamp;
			apply_clamp(f);
		}
	}
	*out = sim;
	return 0;
}

void bsim_free(struct bsim *sim)
{
	if (!sim)
		return;
	free(sim->events.items);
	free(sim->queue.items);
	free(sim->rtt_log);
	free(sim);
}

uint64_t bsim_now_us(const struct bsim *sim)
{
	return sim->now_ns / 1000;
}

uint32_t bsim_tick_us(const struct bsim *sim)
{
	return sim->cfg.tick_us;
}

/* --- congestion control ------------------------------------------------------------ */

static void rtt_log_add(struct bsim *sim, uint32_t rtt_us)
{
	if (!sim->cfg.record_rtt || sim->rtt_oom)
		return;
	if (sim->rtt_len == sim->rtt_cap) {
		size_t new_cap = sim->rtt_cap ? sim->rtt_cap * 2 : 4096;
		uint32_t *log = realloc(sim->rtt_log, new_cap * sizeof(*log));

		if (!log) {
			/* Percentiles over a truncated log would be silently wrong. */
			sim->rtt_oom = true;
			return;
		}
		sim->rtt_log = log;
		sim->rtt_cap = new_cap;
	}
	sim->rtt_log[sim->rtt_len++] = rtt_us;
}

static void rtt_update(struct bsim *sim, struct flow *f, double rtt_ns)
{
	double m = rtt_ns / NS_PER_US;
	uint32_t m_us = (uint32_t)(m + 0.5);

	if (f->rtt_samples == 0) {
		f->srtt_us = m;
		f->rttvar_us = m / 2;
	} else {
		f->rttvar_us += (fabs(m - f->srtt_us) - f->rttvar_us) / 4;
		f->srtt_us += (m - f->srtt_us) / 8;
	}
	if (f->rtt_samples == 0 || m_us < f->min_rtt_us)
		f->min_rtt_us = m_us;
	f->last_rtt_us = m_us;
	f->rtt_samples++;
	f->rtt_sum_us += m_us;
	rtt_log_add(sim, m_us);
}

static void cubic_on_ack(struct flow *f, double t_ns)
{
	double t, target;

	if (f->epoch_ns < 0) {
		f->epoch_ns = t_ns;
		if (f->cwnd < f->w_max) {
			f->cubic_k = cbrt((f->w_max - f->cwnd) / CUBIC_C);
			f->cubic_origin = f->w_max;
		} else {
			f->cubic_k = 0;
			f->cubic_origin = f->cwnd;
		}
		f->w_est = f->cwnd;
	}
	/* The window the curve wants one RTT from now (RFC 9438 section 4.2). */
	t = (t_ns - f->epoch_ns) / NS_PER_S + f->srtt_us / 1e6;
	target = f->cubic_origin + CUBIC_C * (t - f->cubic_k) * (t - f->cubic_k) * (t - f->cubic_k);
	f->w_est += 3.0 * (1 - CUBIC_BETA) / (1 + CUBIC_BETA) / f->cwnd;
	if (f->w_est > target)
		target = f->w_est;
	if (target > f->cwnd)
		f->cwnd += (target - f->cwnd) / f->cwnd;
	else
		f->cwnd += 0.01 / f->cwnd;
}

static void cc_on_ack(const struct bsim *sim, struct flow *f, double t_ns)
{
	if (sim->cfg.cc == BSIM_CC_EXTERNAL)
		return;
	if (f->cwnd < f->ssthresh)
		f->cwnd += 1.0;
	else if (sim->cfg.cc == BSIM_CC_RENO)
		f->cwnd += 1.0 / f->cwnd;
	else
		cubic_on_ack(f, t_ns);
	apply_clamp(f);
}

static void cc_on_loss(const struct bsim *sim, struct flow *f)
{
	if (sim->cfg.cc == BSIM_CC_EXTERNAL)
		return;
	if (sim->cfg.cc == BSIM_CC_RENO) {
		f->cwnd *= RENO_BETA;
	} else {
		/* Fast convergence: yield to newer flows when the peak shrinks. */
		if (f->cwnd < f->w_last_max)
			f->w_max = f->cwnd * (1 + CUBIC_BETA) / 2;
		else
			f->w_max = f->cwnd;
		f->w_last_max = f->cwnd;
		f->cwnd *= CUBIC_BETA;
		f->epoch_ns = -1.0;
	}
	if (f->cwnd < MIN_CWND)
		f->cwnd = MIN_CWND;
	f->ssthresh = f->cwnd;
	apply_clamp(f);
}

/* --- the tick ----------------------------------------------------------------------- */

static void deliver_events(struct bsim *sim)
{
	struct event_ring *ring = &sim->events;
	double now = (double)sim->now_ns;

	while (ring->len) {
		struct event *ev = &ring->items[ring->head];
		struct flow *f;

		if (ev->event_ns > now)
			break;
		f = &sim->flows[ev->flow];
		f->inflight--;
		if (ev->kind == EV_ACK) {
			f->delivered_pkts++;
			rtt_update(sim, f, ev->event_ns - (double)ev->sent_ns);
			cc_on_ack(sim, f, ev->event_ns);
		} else {
			f->lost_pkts++;
			if (ev->kind == EV_LOSS_TAIL)
				f->tail_drops++;
			f->retrans_owed++;
			if (!f->reduced_once || ev->sent_ns >= f->recovery_ns) {
				cc_on_loss(sim, f);
				f->reduced_once = true;
				f->recovery_ns = sim->now_ns;
			}
		}
		ring->head = (ring->head + 1) & (ring->cap - 1);
		ring->len--;
	}
}

static void drain_queue(struct bsim *sim)
{
	struct depart_ring *q = &sim->queue;
	double now = (double)sim->now_ns;

	while (q->len && q->items[q->head].depart_ns <= now) {
		if (q->items[q->head].cross_delivered)
			sim->cross_delivered_pkts++;
		q->head = (q->head + 1) & (q->cap - 1);
		q->len--;
	}
}

/*
 * When a packet whose serialization starts at start_ns has left the link. Under a
 * capacity schedule the service integrates the rate of every step it spans (the
 * schedule is known ahead), so a packet queued in an outage leaves as soon as the
 * rate comes back instead of at the outage's rate.
 */
static double departure_ns(const struct bsim *sim, double start_ns)
{
	const struct bsim_config *c = &sim->cfg;
	double step_ns, t = start_ns, bits = sim->mss * 8.0;

	if (!c->rate_schedule_bps)
		return start_ns + sim->tx_ns;
	step_ns = (double)c->rate_schedule_step_us * NS_PER_US;
	for (;;) {
		double step = floor(t / step_ns);
		double rate = (double)c->rate_schedule_bps[(uint64_t)step % c->rate_schedule_len];
		double end = (step + 1) * step_ns;
		double avail = rate * (end - t) / NS_PER_S;

		if (avail >= bits)
			return t + bits * NS_PER_S / rate;
		bits -= avail;
		t = end;
	}
}

/*
 * Offer one packet to the queue at now. Returns the kind of its fate and, via
 * depart_ns, when it leaves (or would have left) the link.
 */
static int offer_packet(struct bsim *sim, enum event_kind *fate, double *depart_ns)
{
	double now = (double)sim->now_ns;
	double start = sim->last_depart_ns > now ? sim->last_depart_ns : now;
	int err;

	*depart_ns = departure_ns(sim, start);
	if ((uint64_t)(sim->queue.len + 1) * sim->mss > sim->cfg.buffer_bytes) {
		sim->tail_drops++;
		*fate = EV_LOSS_TAIL;
		return 0;
	}
	err = depart_ring_push(&sim->queue, *depart_ns);
	if (err)
		return err;
	sim->last_depart_ns = *depart_ns;
	if (sim->pkts_to_random_loss == 0) {
		sim->random_losses++;
		sim->pkts_to_random_loss = draw_pkts_to_random_loss(sim);
		*fate = EV_LOSS_RANDOM;
		return 0;
	}
	if (sim->pkts_to_random_loss != UINT64_MAX)
		sim->pkts_to_random_loss--;
	*fate = EV_ACK;
	return 0;
}

static int send_cross_traffic(struct bsim *sim)
{
	enum event_kind fate;
	double depart_ns;
	int err;

	if (!sim->cfg.cross_bps)
		return 0;
	sim->cross_credit_bytes += sim->cfg.cross_bps * (sim->tick_ns / NS_PER_S) / 8.0;
	while (sim->cross_credit_bytes >= sim->mss) {
		sim->cross_credit_bytes -= sim->mss;
		err = offer_packet(sim, &fate, &depart_ns);
		if (err)
			return err;
		sim->cross_sent_pkts++;
		if (fate == EV_ACK) {
			struct depart_ring *q = &sim->queue;

			q->items[(q->head + q->len - 1) & (q->cap - 1)].cross_delivered = true;
		}
	}
	return 0;
}

static int flow_send(struct bsim *sim, uint32_t id)
{
	struct flow *f = &sim->flows[id];
	struct event ev = { .sent_ns = sim->now_ns, .flow = (uint16_t)id };
	enum event_kind fate;
	double depart_ns;
	int err;

	if (sim->now_ns < f->start_ns)
		return 0;
	while ((double)f->inflight + 1.0 <= f->cwnd) {
		err = offer_packet(sim, &fate, &depart_ns);
		if (err)
			return err;
		ev.kind = (uint8_t)fate;
		ev.event_ns = depart_ns + sim->cfg.base_rtt_us * NS_PER_US;
		/* A tail drop right after a rate increase could otherwise be detected
		 * before an earlier packet's ACK; the event ring must stay in time order. */
		if (ev.event_ns < sim->last_event_ns)
			ev.event_ns = sim->last_event_ns;
		sim->last_event_ns = ev.event_ns;
		err = event_ring_push(&sim->events, &ev);
		if (err)
			return err;
		f->inflight++;
		f->sent_pkts++;
		if (f->retrans_owed) {
			f->retrans_owed--;
			f->retrans_pkts++;
		}
	}
	return 0;
}

static int tick_once(struct bsim *sim)
{
	uint32_t n = sim->cfg.flows;
	int err;

	deliver_events(sim);
	if (sim->cfg.rate_schedule_bps) {
		uint64_t step = sim->now_ns / 1000 / sim->cfg.rate_schedule_step_us % sim->cfg.rate_schedule_len;

		if (sim->cfg.rate_schedule_bps[step] != sim->link_bps)
			set_link_rate(sim, sim->cfg.rate_schedule_bps[step]);
	}
	if (sim->cfg.rate_change_at_us && !sim->rate_changed &&
	    sim->now_ns >= sim->cfg.rate_change_at_us * 1000) {
		set_link_rate(sim, sim->cfg.rate_change_bps);
		sim->rate_changed = true;
	}
	drain_queue(sim);
	err = send_cross_traffic(sim);
	if (err)
		return err;
	for (uint32_t i = 0; i < n; i++) {
		err = flow_send(sim, (sim->first_sender + i) % n);
		if (err)
			return err;
	}
	sim->first_sender = (sim->first_sender + 1) % n;
	sim->capacity_bytes += sim->link_bps * (sim->tick_ns / NS_PER_S) / 8.0;
	sim->now_ns += sim->tick_ns;
	return 0;
}

void bsim_tick(struct bsim *sim)
{
	/* Rings only grow while packets are in flight, bounded by the windows
	 * (<= BSIM_MAX_CWND each); running out of memory there is fatal. */
	if (tick_once(sim)) {
		fprintf(stderr, "bottleneck sim: out of memory\n");
		abort();
	}
}

void bsim_run_until(struct bsim *sim, uint64_t t_us)
{
	while (sim->now_ns < t_us * 1000)
		bsim_tick(sim);
}

/* --- controls and stats ------------------------------------------------------------ */

int bsim_set_cwnd_clamp(struct bsim *sim, uint32_t flow, uint32_t clamp_pkts)
{
	struct flow *f;

	if (flow >= sim->cfg.flows || clamp_pkts > BSIM_MAX_CWND)
		return -EINVAL;
	f = &sim->flows[flow];
	f->clamp = clamp_pkts;
	if (clamp_pkts) {
		f->ssthresh = clamp_pkts;
		apply_clamp(f);
	}
	return 0;
}

int bsim_set_cwnd(struct bsim *sim, uint32_t flow, uint32_t cwnd_pkts)
{
	struct flow *f;

	if (flow >= sim->cfg.flows || cwnd_pkts == 0)
		return -EINVAL;
	f = &sim->flows[flow];
	f->cwnd = cwnd_pkts;
	apply_clamp(f);
	return 0;
}

int bsim_flow_stats(const struct bsim *sim, uint32_t flow, struct bsim_flow_stats *out)
{
	const struct flow *f;

	if (flow >= sim->cfg.flows)
		return -EINVAL;
	f = &sim->flows[flow];
	memset(out, 0, sizeof(*out));
	out->sent_pkts = f->sent_pkts;
	out->retrans_pkts = f->retrans_pkts;
	out->delivered_pkts = f->delivered_pkts;
	out->delivered_bytes = f->delivered_pkts * sim->mss;
	out->lost_pkts = f->lost_pkts;
	out->tail_drops = f->tail_drops;
	out->rtt_samples = f->rtt_samples;
	out->rtt_sum_us = f->rtt_sum_us;
	out->cwnd = (uint32_t)f->cwnd;
	out->ssthresh = isinf(f->ssthresh) ? UINT32_MAX : (uint32_t)f->ssthresh;
	out->cwnd_clamp = f->clamp;
	out->inflight = f->inflight;
	out->srtt_us = (uint32_t)(f->srtt_us + 0.5);
	out->rttvar_us = (uint32_t)(f->rttvar_us + 0.5);
	out->min_rtt_us = f->min_rtt_us;
	out->last_rtt_us = f->last_rtt_us;
	return 0;
}

void bsim_link_stats(const struct bsim *sim, struct bsim_link_stats *out)
{
	double now = (double)sim->now_ns;
	size_t lo = 0, hi = sim->queue.len;
	uint32_t queued;

	/* Packets whose departure is still ahead; the ring may hold departed ones
	 * until the next tick drains it. Departures are sorted: bisect. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (sim->queue.items[(sim->queue.head + mid) & (sim->queue.cap - 1)].depart_ns <= now)
			lo = mid + 1;
		else
			hi = mid;
	}
	queued = (uint32_t)(sim->queue.len - lo);
	memset(out, 0, sizeof(*out));
	out->now_us = sim->now_ns / 1000;
	out->link_bps = sim->link_bps;
	out->queue_pkts = queued;
	out->queue_bytes = (uint64_t)queued * sim->mss;
	out->capacity_bytes = (uint64_t)sim->capacity_bytes;
	for (uint32_t i = 0; i < sim->cfg.flows; i++)
		out->flow_delivered_bytes += sim->flows[i].delivered_pkts * sim->mss;
	out->cross_sent_pkts = sim->cross_sent_pkts;
	out->cross_delivered_bytes = sim->cross_delivered_pkts * sim->mss;
	out->tail_drops = sim->tail_drops;
	out->random_losses = sim->random_losses;
}

/* --- RTT percentiles ----------------------------------------------------------------- */

void bsim_rtt_clear(struct bsim *sim)
{
	sim->rtt_len = 0;
	sim->rtt_oom = false;
}

size_t bsim_rtt_count(const struct bsim *sim)
{
	return sim->rtt_len;
}

int bsim_rtt_percentile(struct bsim *sim, double q, uint32_t *rtt_us)
{
	if (!sim->cfg.record_rtt || !(q >= 0.0 && q <= 1.0) || sim->rtt_oom)
		return sim->rtt_oom ? -ENOMEM : -EINVAL;
	if (!sim->rtt_len)
		return -ENODATA;
	*rtt_us = percentile_u32(sim->rtt_log, sim->rtt_len, q);
	return 0;
}

/* --- the oracle's question ----------------------------------------------------------- */

static uint64_t flows_lost(const struct bsim *sim, uint64_t *tail_drops)
{
	uint64_t lost = 0;

	*tail_drops = 0;
	for (uint32_t i = 0; i < sim->cfg.flows; i++) {
		lost += sim->flows[i].lost_pkts;
		*tail_drops += sim->flows[i].tail_drops;
	}
	return lost;
}

static int eval_measure(struct bsim *sim, const struct bsim_config *cfg, uint64_t warmup_us,
			uint64_t duration_us, struct bsim_eval *out)
{
	struct bsim_link_stats a, b;
	uint64_t lost0, drops0, lost1, drops1;
	double secs = duration_us / 1e6, capacity;
	int err;

	bsim_run_until(sim, warmup_us);
	bsim_rtt_clear(sim);
	bsim_link_stats(sim, &a);
	lost0 = flows_lost(sim, &drops0);
	while (sim->now_ns < (warmup_us + duration_us) * 1000) {
		struct bsim_link_stats now;

		bsim_tick(sim);
		bsim_link_stats(sim, &now);
		if (now.queue_bytes > out->queue_bytes_max)
			out->queue_bytes_max = now.queue_bytes;
	}
	bsim_link_stats(sim, &b);
	lost1 = flows_lost(sim, &drops1);

	err = bsim_rtt_percentile(sim, 0.50, &out->rtt_p50_us);
	if (!err)
		err = bsim_rtt_percentile(sim, 0.95, &out->rtt_p95_us);
	if (err)
		return err;
	out->min_rtt_us = bsim_min_rtt_us(cfg);
	out->rtt_ratio = out->rtt_p95_us / out->min_rtt_us;
	out->throughput_bps = (b.flow_delivered_bytes - a.flow_delivered_bytes) * 8.0 / secs;
	capacity = ((double)b.capacity_bytes - (double)a.capacity_bytes -
		    ((double)b.cross_delivered_bytes - (double)a.cross_delivered_bytes)) * 8.0 / secs;
	out->capacity_bps = capacity > 0 ? capacity : 0;
	out->shortfall = 0;
	if (out->capacity_bps > 0 && out->throughput_bps < out->capacity_bps)
		out->shortfall = 1.0 - out->throughput_bps / out->capacity_bps;
	out->lost_pkts = lost1 - lost0;
	out->tail_drops = drops1 - drops0;
	return 0;
}

int bsim_eval_clamp(const struct bsim_config *cfg, double cap_bdp, uint64_t warmup_us,
		    uint64_t duration_us, struct bsim_eval *out)
{
	struct bsim_config run = *cfg;
	struct bsim *sim = NULL;
	int err;

	memset(out, 0, sizeof(*out));
	if (duration_us == 0)
		return -EINVAL;
	run.record_rtt = 1;
	if (cap_bdp > 0)
		run.cwnd_clamp = bsim_clamp_for_bdp(cfg, cap_bdp);
	err = bsim_new(&run, &sim);
	if (err)
		return err;
	out->cwnd_clamp = run.cwnd_clamp;
	err = eval_measure(sim, &run, warmup_us, duration_us, out);
	bsim_free(sim);
	return err;
}
