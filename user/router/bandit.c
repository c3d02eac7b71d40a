// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Path selector: per-class UCB1 / discounted / sliding-window bandits over the uplinks. */
#include "router/bandit.h"
#include "lib/json_write.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Differences below a millisecond of RTT or jitter do not matter to any class. */
#define BONUS_FLOOR_US 1000.0
/* A discounted pull count below this is forgotten: the path becomes untried. */
#define FORGET_BELOW 1e-9
/* Tolerance of the herding comparison, so that a share met exactly admits. */
#define HERD_EPSILON 1e-9

#define RTT_GAIN (1.0 / 8)
#define RTT_VAR_GAIN (1.0 / 4)
#define LOSS_GAIN (1.0 / 8)
#define THROUGHPUT_GAIN (1.0 / 4)

/*
 * Reward constants. The references put each class's "half good" point where
 * its users start to notice: 20 ms RTT for games, 50 ms for calls and web,
 * 100/200 ms for streaming/bulk whose buffers hide latency; loss_max is the
 * loss rate at which the class is unusable (voice codecs conceal ~3%, bulk TCP
 * survives 10%); throughput_ref is what one flow of the class typically wants
 * (a game 1 Mbit/s, a call 100 kbit/s, HD video 10 Mbit/s, a download 50 Mbit/s).
 */
const struct bandit_reward_params bandit_reward_params[TRAFFIC_CLASS_COUNT] = {
	[TRAFFIC_GAMING] = { 20000, 0.05, 1e6, 0.60, 0.30, 0.10 },
	[TRAFFIC_VOIP] = { 50000, 0.03, 1e5, 0.40, 0.50, 0.10 },
	[TRAFFIC_STREAMING] = { 100000, 0.05, 1e7, 0.10, 0.20, 0.70 },
	[TRAFFIC_BULK] = { 200000, 0.10, 5e7, 0.05, 0.15, 0.80 },
	[TRAFFIC_WEB] = { 50000, 0.05, 1e7, 0.40, 0.20, 0.40 },
};

/* The seed: gaming/voip want low RTT and jitter, streaming/bulk bandwidth, web both. */
const struct bandit_bonus_weights bandit_bonus_weights[TRAFFIC_CLASS_COUNT] = {
	[TRAFFIC_GAMING] = { 0.5, 0.5, 0.0 },
	[TRAFFIC_VOIP] = { 0.4, 0.6, 0.0 },
	[TRAFFIC_STREAMING] = { 0.0, 0.2, 0.8 },
	[TRAFFIC_BULK] = { 0.0, 0.0, 1.0 },
	[TRAFFIC_WEB] = { 0.5, 0.0, 0.5 },
};

static const char *const mode_names[BANDIT_MODE_COUNT] = {
	[BANDIT_MODE_UCB1] = "ucb1",
	[BANDIT_MODE_DISCOUNTED] = "discounted",
	[BANDIT_MODE_SLIDING_WINDOW] = "sliding-window",
	[BANDIT_MODE_ROUND_ROBIN] = "round-robin",
};

struct bandit_arm {
	double pulls;         /* n(p) per mode */
	double reward_sum;    /* per mode, like pulls */
	uint64_t pulls_total;
};

/* The last cfg.window rewards of one class, oldest first from head. */
struct reward_window {
	uint8_t *path;
	double *reward;
	uint32_t head;
	uint32_t count;
};

/* Bests over available paths with a known value, for the normalized scores. */
struct metric_bounds {
	bool have_rtt;
	double rtt_min;
	double rtt_var_min;
	double throughput_max;
	double throughput_sum;
	uint32_t n_available;
};

/*
 * The terms of bandit_select that only change when their inputs do: a log, square
 * roots and divisions per path otherwise. Each *_fresh flag is cleared by whatever
 * changes the inputs (rewards of a class; path metrics or availability; live
 * flows), and the term is recomputed, with the same expressions, on the next select.
 */
struct select_cache {
	bool bounds_fresh;                        /* mb: metrics */
	bool herd_fresh;                          /* admitted, fallback: metrics, flows */
	bool bonus_fresh[TRAFFIC_CLASS_COUNT];    /* bonus: metrics */
	bool learned_fresh[TRAFFIC_CLASS_COUNT];  /* learned: rewards of the class */
	struct metric_bounds mb;
	uint32_t admitted;                        /* paths admitted by the herding rule (bits) */
	uint32_t fallback;                        /* available paths with the least excess (bits) */
	double bonus[TRAFFIC_CLASS_COUNT][BANDIT_MAX_PATHS];
	double learned[TRAFFIC_CLASS_COUNT][BANDIT_MAX_PATHS]; /* index minus bonus; INFINITY untried */
};

struct bandit {
	struct bandit_config cfg;
	uint32_t n_paths;
	char name[BANDIT_MAX_PATHS][BANDIT_PATH_NAME_LEN];
	struct path_metrics metrics[BANDIT_MAX_PATHS];
	uint32_t path_flows[BANDIT_MAX_PATHS];
	uint32_t flows[TRAFFIC_CLASS_COUNT][BANDIT_MAX_PATHS];
	struct bandit_arm arm[TRAFFIC_CLASS_COUNT][BANDIT_MAX_PATHS];
	struct reward_window window[TRAFFIC_CLASS_COUNT];
	uint32_t rr_next; /* round-robin: the path whose turn is next */
	struct select_cache cache;
};

static void metrics_changed(struct bandit *b)
{
	b->cache.bounds_fresh = false;
	b->cache.herd_fresh = false;
	memset(b->cache.bonus_fresh, 0, sizeof(b->cache.bonus_fresh));
}

const char *bandit_mode_name(enum bandit_mode mode)
{
	if ((unsigned)mode >= BANDIT_MODE_COUNT)
		return "?";
	return mode_names[mode];
}

int bandit_mode_from_name(const char *name)
{
	for (int i = 0; i < BANDIT_MODE_COUNT; i++)
		if (strcasecmp(name, mode_names[i]) == 0)
			return i;
	return -1;
}

void bandit_config_default(struct bandit_config *cfg, enum bandit_mode mode)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mode = mode;
	/* Why these values: see struct bandit_config in bandit.h. */
	cfg->c = mode == BANDIT_MODE_DISCOUNTED || mode == BANDIT_MODE_SLIDING_WINDOW ? 0.2 : M_SQRT2;
	cfg->gamma = 0.998;
	cfg->window = 1000;
	cfg->bonus_scale = 0.1;
	cfg->herd_slack = 0.1;
	cfg->dead_after_ns = 1000ULL * 1000 * 1000;
}

int bandit_config_check(const struct bandit_config *cfg, char *err, size_t err_len)
{
	const char *msg = NULL;

	if ((unsigned)cfg->mode >= BANDIT_MODE_COUNT)
		msg = "mode: not ucb1, discounted, sliding-window or round-robin";
	else if (!isfinite(cfg->c) || cfg->c < 0)
		msg = "c: must be a finite number >= 0";
	else if (!(cfg->gamma > 0 && cfg->gamma < 1))
		msg = "gamma: must be in (0, 1)";
	else if (cfg->window < 1 || cfg->window > BANDIT_MAX_WINDOW)
		msg = "window: must be 1-16384 rewards";
	else if (!isfinite(cfg->bonus_scale) || cfg->bonus_scale < 0)
		msg = "bonus_scale: must be a finite number >= 0";
	else if (!(cfg->herd_slack >= 0 && cfg->herd_slack <= 1))
		msg = "herd_slack: must be in [0, 1]";
	else if (cfg->dead_after_ns == 0)
		msg = "dead_after_ns: must be > 0";
	if (!msg)
		return 0;
	snprintf(err, err_len, "bandit config: %s", msg);
	return -EINVAL;
}

/* ---- path metrics ------------------------------------------------------------- */

static double ewma(double old, double sample, double gain)
{
	return old + gain * (sample - old);
}

void path_metrics_update(struct path_metrics *m, const struct path_sample *s)
{
	bool active = s->sent_packets > 0 || s->delivered_bytes > 0;

	if (s->rtt_us > 0 && isfinite(s->rtt_us)) {
		if (m->rtt_us == 0) {
			m->rtt_us = s->rtt_us;
			m->rtt_var_us = s->rtt_us / 2;
		} else {
			m->rtt_var_us = ewma(m->rtt_var_us, fabs(m->rtt_us - s->rtt_us), RTT_VAR_GAIN);
			m->rtt_us = ewma(m->rtt_us, s->rtt_us, RTT_GAIN);
		}
	}
	if (s->sent_packets > 0) {
		double loss = s->retrans_packets >= s->sent_packets
				      ? 1.0
				      : (double)s->retrans_packets / (double)s->sent_packets;

		m->loss_rate = ewma(m->loss_rate, loss, LOSS_GAIN);
	}
	if (active && s->interval_ns > 0) {
		double rate = (double)s->delivered_bytes * 8e9 / (double)s->interval_ns;

		/* Start from the first measurement rather than climbing from 0. */
		m->throughput_bps = m->throughput_bps == 0 ? rate
							   : ewma(m->throughput_bps, rate, THROUGHPUT_GAIN);
	}
	if (s->delivered_bytes > 0) {
		m->available = true;
		m->pending_since_ns = 0;
		if (s->ts_ns > m->last_delivery_ns)
			m->last_delivery_ns = s->ts_ns;
	} else if (s->sent_packets > 0 && m->pending_since_ns == 0) {
		m->pending_since_ns = s->ts_ns ? s->ts_ns : 1;
	}
	if (s->ts_ns > m->last_update_ns)
		m->last_update_ns = s->ts_ns;
}

/* ---- reward ------------------------------------------------------------------- */

double bandit_reward_of(enum traffic_class cls, double rtt_us, double loss_rate,
			double throughput_bps)
{
	const struct bandit_reward_params *p;
	double s_rtt = 0, s_loss = 0, s_tput = 0;

	if ((unsigned)cls >= TRAFFIC_CLASS_COUNT)
		return 0;
	p = &bandit_reward_params[cls];
	if (rtt_us >= 0) /* false for NaN */
		s_rtt = 1.0 / (1.0 + rtt_us / p->rtt_ref_us);
	if (loss_rate <= 0)
		s_loss = 1;
	else if (loss_rate < p->loss_max)
		s_loss = 1 - loss_rate / p->loss_max;
	if (throughput_bps > 0 && isfinite(throughput_bps))
		s_tput = throughput_bps / (throughput_bps + p->throughput_ref_bps);
	else if (throughput_bps > 0)
		s_tput = 1;
	return p->w_rtt * s_rtt + p->w_loss * s_loss + p->w_throughput * s_tput;
}

/* ---- lifecycle and paths ----------------------------------------------------- */

struct bandit *bandit_new(const struct bandit_config *cfg)
{
	struct bandit *b;
	char err[128];

	if (bandit_config_check(cfg, err, sizeof(err))) {
		errno = EINVAL;
		return NULL;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		goto nomem;
	b->cfg = *cfg;
	if (cfg->mode != BANDIT_MODE_SLIDING_WINDOW)
		return b;
	for (int k = 0; k < TRAFFIC_CLASS_COUNT; k++) {
		b->window[k].path = calloc(cfg->window, sizeof(*b->window[k].path));
		b->window[k].reward = calloc(cfg->window, sizeof(*b->window[k].reward));
		if (!b->window[k].path || !b->window[k].reward)
			goto nomem;
	}
	return b;
nomem:
	bandit_free(b);
	errno = ENOMEM;
	return NULL;
}

void bandit_free(struct bandit *b)
{
	if (!b)
		return;
	for (int k = 0; k < TRAFFIC_CLASS_COUNT; k++) {
		free(b->window[k].path);
		free(b->window[k].reward);
	}
	free(b);
}

static bool path_name_valid(const char *name)
{
	size_t len = strnlen(name, BANDIT_PATH_NAME_LEN);

	if (len == 0 || len >= BANDIT_PATH_NAME_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("_.-", name[i]))
			return false;
	return true;
}

int bandit_add_path(struct bandit *b, const char *name)
{
	uint32_t p = b->n_paths;

	if (!path_name_valid(name))
		return -EINVAL;
	for (uint32_t i = 0; i < b->n_paths; i++)
		if (strcmp(b->name[i], name) == 0)
			return -EEXIST;
	if (p >= BANDIT_MAX_PATHS)
		return -ENOSPC;
	memcpy(b->name[p], name, strlen(name) + 1);
	b->metrics[p].available = true;
	b->n_paths++;
	metrics_changed(b);
	memset(b->cache.learned_fresh, 0, sizeof(b->cache.learned_fresh));
	return (int)p;
}

static bool path_valid(const struct bandit *b, int path)
{
	return path >= 0 && (uint32_t)path < b->n_paths;
}

static bool class_valid(enum traffic_class cls)
{
	return (unsigned)cls < TRAFFIC_CLASS_COUNT;
}

int bandit_path_count(const struct bandit *b)
{
	return (int)b->n_paths;
}

const char *bandit_path_name(const struct bandit *b, int path)
{
	return path_valid(b, path) ? b->name[path] : NULL;
}

const struct path_metrics *bandit_path_metrics(const struct bandit *b, int path)
{
	return path_valid(b, path) ? &b->metrics[path] : NULL;
}

int bandit_path_update(struct bandit *b, int path, const struct path_sample *s)
{
	if (!path_valid(b, path))
		return -EINVAL;
	path_metrics_update(&b->metrics[path], s);
	metrics_changed(b);
	return 0;
}

int bandit_path_set_available(struct bandit *b, int path, bool available)
{
	if (!path_valid(b, path))
		return -EINVAL;
	b->metrics[path].available = available;
	/* Either way, past silence no longer says anything about the new state. */
	b->metrics[path].pending_since_ns = 0;
	metrics_changed(b);
	return 0;
}

uint32_t bandit_expire(struct bandit *b, uint64_t now_ns)
{
	uint32_t marked = 0;

	for (uint32_t p = 0; p < b->n_paths; p++) {
		struct path_metrics *m = &b->metrics[p];

		if (!m->available || !m->pending_since_ns || now_ns < m->pending_since_ns ||
		    now_ns - m->pending_since_ns < b->cfg.dead_after_ns)
			continue;
		m->available = false;
		marked |= 1u << p;
	}
	if (marked)
		metrics_changed(b);
	return marked;
}

/* ---- the decision ------------------------------------------------------------- */

static double class_pulls(const struct bandit *b, enum traffic_class cls)
{
	double total = 0;

	for (uint32_t p = 0; p < b->n_paths; p++)
		total += b->arm[cls][p].pulls;
	return total;
}

static double index_of(const struct bandit *b, enum traffic_class cls, int path,
		       double log_total, double bonus)
{
	const struct bandit_arm *arm = &b->arm[cls][path];

	if (arm->pulls <= 0)
		return INFINITY;
	return arm->reward_sum / arm->pulls + b->cfg.c * sqrt(log_total / arm->pulls) + bonus;
}

static double log_of_total(double total)
{
	return total > 1 ? log(total) : 0;
}

static void metric_bounds(const struct bandit *b, struct metric_bounds *mb)
{
	memset(mb, 0, sizeof(*mb));
	for (uint32_t p = 0; p < b->n_paths; p++) {
		const struct path_metrics *m = &b->metrics[p];

		if (!m->available)
			continue;
		mb->n_available++;
		if (m->rtt_us > 0) {
			if (!mb->have_rtt || m->rtt_us < mb->rtt_min)
				mb->rtt_min = m->rtt_us;
			if (!mb->have_rtt || m->rtt_var_us < mb->rtt_var_min)
				mb->rtt_var_min = m->rtt_var_us;
			mb->have_rtt = true;
		}
		if (m->throughput_bps > mb->throughput_max)
			mb->throughput_max = m->throughput_bps;
		mb->throughput_sum += m->throughput_bps;
	}
}

static double bonus_of(const struct bandit *b, const struct metric_bounds *mb,
		       enum traffic_class cls, int path)
{
	const struct bandit_bonus_weights *w = &bandit_bonus_weights[cls];
	const struct path_metrics *m = &b->metrics[path];
	double latency = 0, jitter = 0, bandwidth = 0;

	if (!m->available || b->cfg.bonus_scale == 0)
		return 0;
	if (m->rtt_us > 0) {
		latency = (mb->rtt_min + BONUS_FLOOR_US) / (m->rtt_us + BONUS_FLOOR_US);
		jitter = (mb->rtt_var_min + BONUS_FLOOR_US) / (m->rtt_var_us + BONUS_FLOOR_US);
	}
	if (mb->throughput_max > 0)
		bandwidth = m->throughput_bps / mb->throughput_max;
	return b->cfg.bonus_scale *
	       (w->latency * latency + w->jitter * jitter + w->bandwidth * bandwidth);
}

static double share_of(const struct bandit *b, const struct metric_bounds *mb, int path)
{
	if (!b->metrics[path].available)
		return 0;
	if (mb->throughput_sum <= 0)
		return 1.0 / mb->n_available;
	return b->metrics[path].throughput_bps / mb->throughput_sum;
}

static uint32_t available_flows(const struct bandit *b)
{
	uint32_t total = 0;

	for (uint32_t p = 0; p < b->n_paths; p++)
		if (b->metrics[p].available)
			total += b->path_flows[p];
	return total;
}

/* How far a new flow would push the path past its share (<= slack admits). */
static double herd_excess(const struct bandit *b, const struct metric_bounds *mb, int path,
			  uint32_t total_flows)
{
	return (double)(b->path_flows[path] + 1) / (double)(total_flows + 1) -
	       share_of(b, mb, path);
}

static bool admits(const struct bandit *b, const struct metric_bounds *mb, int path,
		   uint32_t total_flows)
{
	if (!b->metrics[path].available)
		return false;
	return b->path_flows[path] == 0 ||
	       herd_excess(b, mb, path, total_flows) <= b->cfg.herd_slack + HERD_EPSILON;
}

static int select_round_robin(struct bandit *b)
{
	for (uint32_t i = 0; i < b->n_paths; i++) {
		uint32_t p = (b->rr_next + i) % b->n_paths;

		if (b->metrics[p].available) {
			b->rr_next = p + 1;
			return (int)p;
		}
	}
	return -ENOENT;
}

/* Whether path a ranks before path b (b < 0: nothing yet) among admitted paths. */
static bool ranks_before(const struct bandit *bd, enum traffic_class cls, int a, double index_a,
			 int b, double index_b)
{
	bool untried_a = bd->arm[cls][a].pulls <= 0, untried_b;

	if (b < 0)
		return true;
	untried_b = bd->arm[cls][b].pulls <= 0;
	if (untried_a != untried_b)
		return untried_a;
	if (untried_a)
		return bd->flows[cls][a] < bd->flows[cls][b]; /* equal: keep the lower index */
	return index_a > index_b;
}

/*
 * The best path among those pick() accepts, by the bandit's ranking. pick gets
 * the path and, for the herding fallback, the least excess over all paths.
 */
typedef bool (*path_filter)(const struct bandit *b, const struct metric_bounds *mb, int path,
			    uint32_t total_flows, double least_excess);

static bool admitted(const struct bandit *b, const struct metric_bounds *mb, int path,
		     uint32_t total_flows, double least_excess)
{
	(void)least_excess;
	return admits(b, mb, path, total_flows);
}

static bool least_oversubscribed(const struct bandit *b, const struct metric_bounds *mb,
				 int path, uint32_t total_flows, double least_excess)
{
	return b->metrics[path].available &&
	       herd_excess(b, mb, path, total_flows) <= least_excess + HERD_EPSILON;
}

static int best_ranked(const struct bandit *b, enum traffic_class cls,
		       const struct metric_bounds *mb, uint32_t total_flows, path_filter pick,
		       double least_excess)
{
	double log_total = log_of_total(class_pulls(b, cls)), best_index = 0;
	int best = -1;

	for (uint32_t p = 0; p < b->n_paths; p++) {
		double index;

		if (!pick(b, mb, (int)p, total_flows, least_excess))
			continue;
		index = index_of(b, cls, (int)p, log_total, bonus_of(b, mb, cls, (int)p));
		if (ranks_before(b, cls, (int)p, index, best, best_index)) {
			best = (int)p;
			best_index = index;
		}
	}
	return best;
}

int bandit_select_uncached(struct bandit *b, enum traffic_class cls)
{
	struct metric_bounds mb;
	double least_excess = INFINITY;
	uint32_t total_flows;
	int best;

	if (!class_valid(cls))
		return -EINVAL;
	if (b->cfg.mode == BANDIT_MODE_ROUND_ROBIN)
		return select_round_robin(b);

	metric_bounds(b, &mb);
	total_flows = available_flows(b);
	best = best_ranked(b, cls, &mb, total_flows, admitted, 0);
	if (best >= 0)
		return best;
	/* Every available path is past its share: the least over-subscribed one takes it. */
	for (uint32_t p = 0; p < b->n_paths; p++)
		if (b->metrics[p].available)
			least_excess = fmin(least_excess, herd_excess(b, &mb, (int)p, total_flows));
	if (least_excess == INFINITY)
		return -ENOENT;
	return best_ranked(b, cls, &mb, total_flows, least_oversubscribed, least_excess);
}

static void refresh_herd(struct bandit *b)
{
	struct select_cache *c = &b->cache;
	uint32_t total_flows = available_flows(b);
	double least_excess = INFINITY;

	c->admitted = c->fallback = 0;
	for (uint32_t p = 0; p < b->n_paths; p++)
		if (admits(b, &c->mb, (int)p, total_flows))
			c->admitted |= 1u << p;
	if (c->admitted)
		return;
	for (uint32_t p = 0; p < b->n_paths; p++)
		if (b->metrics[p].available)
			least_excess = fmin(least_excess, herd_excess(b, &c->mb, (int)p, total_flows));
	for (uint32_t p = 0; p < b->n_paths; p++)
		if (least_oversubscribed(b, &c->mb, (int)p, total_flows, least_excess))
			c->fallback |= 1u << p;
}

/* The same expression as index_of without the bonus, which is added last there too. */
static void refresh_learned(struct bandit *b, enum traffic_class cls)
{
	double log_total = log_of_total(class_pulls(b, cls));

	for (uint32_t p = 0; p < b->n_paths; p++) {
		const struct bandit_arm *arm = &b->arm[cls][p];

		b->cache.learned[cls][p] = arm->pulls <= 0 ? INFINITY :
			arm->reward_sum / arm->pulls + b->cfg.c * sqrt(log_total / arm->pulls);
	}
}

static void refresh_cache(struct bandit *b, enum traffic_class cls)
{
	struct select_cache *c = &b->cache;

	if (!c->bounds_fresh) {
		metric_bounds(b, &c->mb);
		c->bounds_fresh = true;
	}
	if (!c->herd_fresh) {
		refresh_herd(b);
		c->herd_fresh = true;
	}
	if (!c->bonus_fresh[cls]) {
		for (uint32_t p = 0; p < b->n_paths; p++)
			c->bonus[cls][p] = bonus_of(b, &c->mb, cls, (int)p);
		c->bonus_fresh[cls] = true;
	}
	if (!c->learned_fresh[cls]) {
		refresh_learned(b, cls);
		c->learned_fresh[cls] = true;
	}
}

/* bandit_select_uncached's decision from the cached terms. */
int bandit_select(struct bandit *b, enum traffic_class cls)
{
	const struct select_cache *c = &b->cache;
	double best_index = 0;
	uint32_t candidates;
	int best = -1;

	if (!class_valid(cls))
		return -EINVAL;
	if (b->cfg.mode == BANDIT_MODE_ROUND_ROBIN)
		return select_round_robin(b);
	refresh_cache(b, cls);
	candidates = c->admitted ? c->admitted : c->fallback;
	if (!candidates)
		return -ENOENT;
	for (uint32_t p = 0; p < b->n_paths; p++) {
		double index;

		if (!(candidates & (1u << p)))
			continue;
		index = c->learned[cls][p] + c->bonus[cls][p];
		if (ranks_before(b, cls, (int)p, index, best, best_index)) {
			best = (int)p;
			best_index = index;
		}
	}
	return best;
}

/* ---- learning ------------------------------------------------------------------ */

static void discount_class(struct bandit *b, enum traffic_class cls)
{
	for (uint32_t p = 0; p < b->n_paths; p++) {
		struct bandit_arm *arm = &b->arm[cls][p];

		arm->pulls *= b->cfg.gamma;
		arm->reward_sum *= b->cfg.gamma;
		if (arm->pulls < FORGET_BELOW) {
			arm->pulls = 0;
			arm->reward_sum = 0;
		}
	}
}

static void window_push(struct bandit *b, enum traffic_class cls, int path, double reward)
{
	struct reward_window *w = &b->window[cls];
	uint32_t slot = (w->head + w->count) % b->cfg.window;

	if (w->count == b->cfg.window) {
		struct bandit_arm *old = &b->arm[cls][w->path[w->head]];

		old->pulls -= 1;
		old->reward_sum -= w->reward[w->head];
		/* Sums of doubles drift; an arm that left the window is exactly empty. */
		if (old->pulls <= 0) {
			old->pulls = 0;
			old->reward_sum = 0;
		}
		w->head = (w->head + 1) % b->cfg.window;
		w->count--;
	}
	w->path[slot] = (uint8_t)path;
	w->reward[slot] = reward;
	w->count++;
}

int bandit_reward(struct bandit *b, enum traffic_class cls, int path, double reward)
{
	struct bandit_arm *arm;

	if (!class_valid(cls) || !path_valid(b, path) || !(reward >= 0 && reward <= 1))
		return -EINVAL;
	arm = &b->arm[cls][path];
	b->cache.learned_fresh[cls] = false;
	if (b->cfg.mode == BANDIT_MODE_DISCOUNTED)
		discount_class(b, cls);
	else if (b->cfg.mode == BANDIT_MODE_SLIDING_WINDOW)
		window_push(b, cls, path, reward);
	arm->pulls += 1;
	arm->reward_sum += reward;
	arm->pulls_total++;
	return 0;
}

int bandit_flow_start(struct bandit *b, enum traffic_class cls, int path)
{
	if (!class_valid(cls) || !path_valid(b, path))
		return -EINVAL;
	b->flows[cls][path]++;
	b->path_flows[path]++;
	b->cache.herd_fresh = false;
	return 0;
}

int bandit_flow_end(struct bandit *b, enum traffic_class cls, int path)
{
	if (!class_valid(cls) || !path_valid(b, path) || b->flows[cls][path] == 0)
		return -EINVAL;
	b->flows[cls][path]--;
	b->path_flows[path]--;
	b->cache.herd_fresh = false;
	return 0;
}

double bandit_bonus(const struct bandit *b, enum traffic_class cls, int path)
{
	struct metric_bounds mb;

	if (!class_valid(cls) || !path_valid(b, path))
		return 0;
	metric_bounds(b, &mb);
	return bonus_of(b, &mb, cls, path);
}

double bandit_index(const struct bandit *b, enum traffic_class cls, int path)
{
	if (!class_valid(cls) || !path_valid(b, path))
		return NAN;
	return index_of(b, cls, path, log_of_total(class_pulls(b, cls)),
			bandit_bonus(b, cls, path));
}

double bandit_capacity_share(const struct bandit *b, int path)
{
	struct metric_bounds mb;

	if (!path_valid(b, path))
		return 0;
	metric_bounds(b, &mb);
	return share_of(b, &mb, path);
}

bool bandit_admits(const struct bandit *b, int path)
{
	struct metric_bounds mb;

	if (!path_valid(b, path))
		return false;
	metric_bounds(b, &mb);
	return admits(b, &mb, path, available_flows(b));
}

/* ---- the table ------------------------------------------------------------------- */

void bandit_snapshot(const struct bandit *b, uint64_t now_ns, struct bandit_view *view)
{
	memset(view, 0, sizeof(*view));
	view->config = b->cfg;
	view->now_ns = now_ns;
	view->n_paths = b->n_paths;
	for (uint32_t p = 0; p < b->n_paths; p++) {
		struct bandit_path_view *pv = &view->path[p];

		memcpy(pv->name, b->name[p], sizeof(pv->name));
		pv->metrics = b->metrics[p];
		pv->flows = b->path_flows[p];
		pv->capacity_share = bandit_capacity_share(b, (int)p);
		pv->admits_new_flow = bandit_admits(b, (int)p);
	}
	for (int k = 0; k < TRAFFIC_CLASS_COUNT; k++) {
		for (uint32_t p = 0; p < b->n_paths; p++) {
			const struct bandit_arm *arm = &b->arm[k][p];
			struct bandit_arm_view *av = &view->arm[k][p];

			av->pulls = arm->pulls;
			av->pulls_total = arm->pulls_total;
			av->mean_reward = arm->pulls > 0 ? arm->reward_sum / arm->pulls : NAN;
			av->bonus = bandit_bonus(b, (enum traffic_class)k, (int)p);
			av->ucb_index = bandit_index(b, (enum traffic_class)k, (int)p);
			av->flows = b->flows[k][p];
		}
	}
}

static void print_age_ms(FILE *out, uint64_t now_ns, uint64_t ts_ns)
{
	if (ts_ns == 0 || now_ns < ts_ns)
		fprintf(out, "  %8s", "-");
	else
		fprintf(out, "  %8llu", (unsigned long long)((now_ns - ts_ns) / 1000000));
}

int bandit_view_print_text(const struct bandit_view *v, FILE *out)
{
	const struct bandit_config *c = &v->config;

	fprintf(out, "mode %s  c %.3f", bandit_mode_name(c->mode), c->c);
	if (c->mode == BANDIT_MODE_DISCOUNTED)
		fprintf(out, "  gamma %.4f", c->gamma);
	if (c->mode == BANDIT_MODE_SLIDING_WINDOW)
		fprintf(out, "  window %u", c->window);
	fprintf(out, "  bonus_scale %.3f  herd_slack %.3f  dead_after_ms %llu\n\n",
		c->bonus_scale, c->herd_slack,
		(unsigned long long)(c->dead_after_ns / 1000000));

	fprintf(out, "%-15s  %-9s  %10s  %10s  %9s  %14s  %6s  %14s  %-15s  %8s\n", "PATH",
		"AVAILABLE", "RTT_US", "RTT_VAR_US", "LOSS_RATE", "THROUGHPUT_BPS", "FLOWS",
		"CAPACITY_SHARE", "ADMITS_NEW_FLOW", "AGE_MS");
	for (uint32_t p = 0; p < v->n_paths && p < BANDIT_MAX_PATHS; p++) {
		const struct bandit_path_view *pv = &v->path[p];
		const struct path_metrics *m = &pv->metrics;

		fprintf(out, "%-15.15s  %-9s  %10.0f  %10.0f  %9.4f  %14.0f  %6u  %14.3f  %-15s",
			pv->name, m->available ? "yes" : "no", m->rtt_us, m->rtt_var_us,
			m->loss_rate, m->throughput_bps, pv->flows, pv->capacity_share,
			pv->admits_new_flow ? "yes" : "no");
		print_age_ms(out, v->now_ns, m->last_update_ns);
		fputc('\n', out);
	}

	fprintf(out, "\n%-9s  %-15s  %10s  %11s  %11s  %7s  %9s  %6s\n", "CLASS", "PATH", "PULLS",
		"PULLS_TOTAL", "MEAN_REWARD", "BONUS", "UCB_INDEX", "FLOWS");
	for (int k = 0; k < TRAFFIC_CLASS_COUNT; k++) {
		for (uint32_t p = 0; p < v->n_paths && p < BANDIT_MAX_PATHS; p++) {
			const struct bandit_arm_view *a = &v->arm[k][p];

			fprintf(out, "%-9s  %-15.15s  %10.2f  %11llu", traffic_class_name(k),
				v->path[p].name, a->pulls, (unsigned long long)a->pulls_total);
			if (isfinite(a->mean_reward))
				fprintf(out, "  %11.4f", a->mean_reward);
			else
				fprintf(out, "  %11s", "-");
			fprintf(out, "  %7.4f", a->bonus);
			if (isfinite(a->ucb_index))
				fprintf(out, "  %9.4f", a->ucb_index);
			else
				fprintf(out, "  %9s", "untried");
			fprintf(out, "  %6u\n", a->flows);
		}
	}
	return ferror(out) ? -EIO : 0;
}

/* An untried arm's mean and index are not numbers: json_write_number prints null. */
static void json_path(FILE *out, const struct bandit_path_view *pv)
{
	const struct path_metrics *m = &pv->metrics;

	fputs("{\"path\":", out);
	json_write_string(out, pv->name, sizeof(pv->name));
	fprintf(out, ",\"available\":%s,\"rtt_us\":", m->available ? "true" : "false");
	json_write_number(out, m->rtt_us);
	fputs(",\"rtt_var_us\":", out);
	json_write_number(out, m->rtt_var_us);
	fputs(",\"loss_rate\":", out);
	json_write_number(out, m->loss_rate);
	fputs(",\"throughput_bps\":", out);
	json_write_number(out, m->throughput_bps);
	fprintf(out, ",\"last_update_ns\":%llu,\"last_delivery_ns\":%llu,\"flows\":%u,"
		"\"capacity_share\":", (unsigned long long)m->last_update_ns,
		(unsigned long long)m->last_delivery_ns, pv->flows);
	json_write_number(out, pv->capacity_share);
	fprintf(out, ",\"admits_new_flow\":%s}", pv->admits_new_flow ? "true" : "false");
}

static void json_arm(FILE *out, const char *path, const struct bandit_arm_view *a)
{
	fputs("{\"path\":", out);
	json_write_string(out, path, BANDIT_PATH_NAME_LEN);
	fputs(",\"pulls\":", out);
	json_write_number(out, a->pulls);
	fprintf(out, ",\"pulls_total\":%llu,\"mean_reward\":", (unsigned long long)a->pulls_total);
	json_write_number(out, a->mean_reward);
	fputs(",\"bonus\":", out);
	json_write_number(out, a->bonus);
	fputs(",\"ucb_index\":", out);
	json_write_number(out, a->ucb_index);
	fprintf(out, ",\"flows\":%u}", a->flows);
}

int bandit_view_print_json(const struct bandit_view *v, FILE *out)
{
	const struct bandit_config *c = &v->config;
	uint32_t n = v->n_paths < BANDIT_MAX_PATHS ? v->n_paths : BANDIT_MAX_PATHS;

	fprintf(out, "{\"mode\":\"%s\",\"c\":", bandit_mode_name(c->mode));
	json_write_number(out, c->c);
	fputs(",\"gamma\":", out);
	json_write_number(out, c->gamma);
	fprintf(out, ",\"window\":%u,\"bonus_scale\":", c->window);
	json_write_number(out, c->bonus_scale);
	fputs(",\"herd_slack\":", out);
	json_write_number(out, c->herd_slack);
	fprintf(out, ",\"dead_after_ns\":%llu,\"now_ns\":%llu,\"paths\":[",
		(unsigned long long)c->dead_after_ns, (unsigned long long)v->now_ns);
	for (uint32_t p = 0; p < n; p++) {
		if (p)
			fputc(',', out);
		json_path(out, &v->path[p]);
	}
	fputs("],\"classes\":[", out);
	for (int k = 0; k < TRAFFIC_CLASS_COUNT; k++) {
		fprintf(out, "%s{\"class\":\"%s\",\"arms\":[", k ? "," : "", traffic_class_name(k));
		for (uint32_t p = 0; p < n; p++) {
			if (p)
				fputc(',', out);
			json_arm(out, v->path[p].name, &v->arm[k][p]);
		}
		fputs("]}", out);
	}
	fputs("]}\n", out);
	return ferror(out) ? -EIO : 0;
}
