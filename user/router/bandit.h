/*
 * Path selector of the edge router: per traffic class, a multi-armed bandit over
 * up to BANDIT_MAX_PATHS uplinks ("paths"). reflexd asks it for the path of each
 * new flow, feeds it one reward per observed flow interval and keeps the path
 * metrics current from tc telemetry; `reflexctl paths` prints its table.
 *
 * Index of path p for class k (modes ucb1, discounted, sliding-window):
 *
 *   UCB(p) = mean_reward(p) + c * sqrt(ln(N) / n(p)) + bonus(k, p)
 *
 * n(p) is the path's pull count in that class (a pull = one reward), N the sum
 * over the class's paths and mean_reward = reward sum / n(p); the three modes
 * differ only in how n and the sum remember:
 *   ucb1            every reward ever (Auer et al. 2002, the seed's formula);
 *   discounted      before each reward of the class, every path's n and sum
 *                   are multiplied by gamma (Garivier & Moulines 2011), so a
 *                   reward k updates old weighs gamma^k: memory ~1/(1-gamma);
 *                   a path whose n falls below 1e-9 is forgotten (n = sum = 0);
 *   sliding-window  the class's last `window` rewards only.
 * A path with n(p) == 0 has an infinite index: untried paths are tried first
 * (among them: the one with the fewest live flows of the class, then the lowest
 * path index). Equal indexes go to the lowest path index. ln(N) is taken as 0
 * while N < 1. Mode round-robin is the heuristic fallback: available paths in
 * turn, no learning, no herding rule.
 *
 * Contextual bonus (bonus_scale * one weighted sum in [0, 1], so at most
 * bonus_scale reward units: a prior and tie-breaker the learned means outweigh).
 * Over the available paths whose metric is known:
 *   L(p) = (min rtt_us + 1000) / (rtt_us(p) + 1000)              latency score
 *   J(p) = (min rtt_var_us + 1000) / (rtt_var_us(p) + 1000)      jitter score
 *   B(p) = throughput_bps(p) / max throughput_bps                bandwidth score
 *   (1000 us: differences under a millisecond do not matter; an unknown
 *   metric scores 0)
 *   bonus(k, p) = bonus_scale * (wL*L + wJ*J + wB*B), weights per class in
 *   bandit_bonus_weights: gaming .5/.5/0, voip .4/.6/0, streaming 0/.2/.8,
 *   bulk 0/0/1, web .5/0/.5.
 *
 * Reward of an observed flow interval, in [0, 1] (bandit_reward_of):
 *   s_rtt  = 1 / (1 + rtt_us / rtt_ref_us)             1 at 0, 1/2 at the reference
 *   s_loss = 1 - min(1, loss_rate / loss_max)          0 at and past loss_max
 *   s_tput = throughput_bps / (throughput_bps + throughput_ref_bps)
 *   reward = w_rtt*s_rtt + w_loss*s_loss + w_throughput*s_tput (weights sum to 1)
 * constants per class in bandit_reward_params.
 *
 * Anti-herding: a path may take a new flow of any class only if
 *   flows(p) == 0  or  (flows(p) + 1) / (F + 1) <= share(p) + herd_slack
 * where F is the live flows on all available paths and
 *   share(p) = throughput_bps(p) / sum of throughput_bps over available paths
 * (1 / number of available paths while that sum is 0). The bandit picks among
 * the admitted paths; if none is admitted, it picks among the available paths
 * with the smallest excess (flows(p) + 1) / (F + 1) - share(p). flows(p) == 0
 * always admits so that a path without a throughput estimate gets measured.
 * Comparisons allow 1e-9, so a share met exactly admits.
 *
 * Availability: a path is unavailable while set so (bandit_path_set_available,
 * e.g. link down) or once traffic was sent on it and nothing was delivered for
 * dead_after_ns (bandit_expire); a sample with delivered bytes makes it
 * available again. An idle path stays available. Unavailable paths are never
 * selected.
 *
 * Not thread-safe: one thread (reflexd's loop) owns a struct bandit.
 */
#ifndef REFLEX_BANDIT_H
#define REFLEX_BANDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "router/classify.h"

#define BANDIT_MAX_PATHS 4
#define BANDIT_PATH_NAME_LEN 16 /* NUL included, like IFNAMSIZ */
#define BANDIT_MAX_WINDOW 16384

enum bandit_mode {
	BANDIT_MODE_UCB1 = 0,
	BANDIT_MODE_DISCOUNTED,
	BANDIT_MODE_SLIDING_WINDOW,
	BANDIT_MODE_ROUND_ROBIN,
	BANDIT_MODE_COUNT
};

/* "ucb1", "discounted", "sliding-window", "round-robin". */
const char *bandit_mode_name(enum bandit_mode mode);
/* The mode of a name as bandit_mode_name spells it; -1 if unknown. */
int bandit_mode_from_name(const char *name);

/*
 * Defaults (bandit_config_default) and why:
 *   c            ucb1: sqrt(2), Auer's constant, which bounds regret for any
 *                rewards in [0, 1]. discounted and sliding-window: 0.2. Their
 *                counts stay near the memory length, and with sqrt(2) the bonus
 *                never falls below the gaps between paths, so they would explore
 *                forever. Over c in 0.1..1.4 on the changing-link runs of
 *                tests/bench/bench_bandit.c (rewards +-0.15 and +-0.3 noise) regret
 *                was lowest at 0.1-0.2; 0.2 keeps a margin for noisier rewards.
 *   gamma        0.998: memory ~500 rewards, a changed path is re-learned within
 *                a few hundred rewards of its class (a few seconds of flows).
 *   window       1000 rewards, the sliding-window counterpart of gamma 0.998.
 *   bonus_scale  0.1; herd_slack 0.1; dead_after_ns 1 s.
 */
struct bandit_config {
	enum bandit_mode mode;
	double c;               /* exploration weight, >= 0 */
	double gamma;           /* discounted: factor per reward of the class, (0, 1) */
	uint32_t window;        /* sliding-window: rewards per class, 1..BANDIT_MAX_WINDOW */
	double bonus_scale;     /* weight of the contextual bonus, >= 0 */
	double herd_slack;      /* anti-herding slack over the capacity share, [0, 1] */
	uint64_t dead_after_ns; /* unavailable after sending without delivery this long, > 0 */
};

/* The defaults for mode; every field is set and valid whatever the mode. */
void bandit_config_default(struct bandit_config *cfg, enum bandit_mode mode);
/* 0 if cfg is usable, else -EINVAL and a message naming the field in err. */
int bandit_config_check(const struct bandit_config *cfg, char *err, size_t err_len);

/* What tc telemetry saw on one path over one interval (counts are deltas). */
struct path_sample {
	uint64_t ts_ns;           /* end of the interval, CLOCK_MONOTONIC */
	uint64_t interval_ns;     /* its length; 0 = no throughput information */
	double rtt_us;            /* one RTT measurement, 0 = none in this interval */
	uint64_t sent_packets;    /* packets forwarded onto the path */
	uint64_t retrans_packets; /* of which retransmissions (the loss signal) */
	uint64_t delivered_bytes; /* bytes the far side acknowledged or sent back through it */
};

/* EWMA estimates of one path, kept by path_metrics_update. */
struct path_metrics {
	double rtt_us;             /* smoothed RTT, gain 1/8 (RFC 6298); 0 = no sample yet */
	double rtt_var_us;         /* jitter: mean deviation of RTT samples, gain 1/4 (RFC 6298) */
	double loss_rate;          /* retrans/sent per interval, gain 1/8, [0, 1] */
	double throughput_bps;     /* delivered bits per second per interval, gain 1/4 */
	bool available;
	uint64_t last_update_ns;   /* ts_ns of the newest sample */
	uint64_t last_delivery_ns; /* ts_ns of the newest sample that delivered bytes */
	uint64_t pending_since_ns; /* first sample that sent without delivery since then; 0 = none */
};

/* Fold one sample into m. Idle intervals (nothing sent or delivered) leave the
 * throughput estimate alone, so an unused path keeps its last known capacity. */
void path_metrics_update(struct path_metrics *m, const struct path_sample *s);

/* Per class: the reward's constants (see the top of this file). */
struct bandit_reward_params {
	double rtt_ref_us;
	double loss_max;
	double throughput_ref_bps;
	double w_rtt;
	double w_loss;
	double w_throughput;
};

/* Per class: weights of the contextual bonus's latency, jitter and bandwidth scores. */
struct bandit_bonus_weights {
	double latency;
	double jitter;
	double bandwidth;
};

extern const struct bandit_reward_params bandit_reward_params[TRAFFIC_CLASS_COUNT];
extern const struct bandit_bonus_weights bandit_bonus_weights[TRAFFIC_CLASS_COUNT];

/* The reward in [0, 1] of a flow interval of class cls. Negative or NaN inputs
 * count as the worst value of their term; loss_rate above 1 counts as 1. */
double bandit_reward_of(enum traffic_class cls, double rtt_us, double loss_rate,
			double throughput_bps);

struct bandit;

/* NULL with errno EINVAL (bad config) or ENOMEM. */
struct bandit *bandit_new(const struct bandit_config *cfg);
void bandit_free(struct bandit *b);

/* Add a path; returns its index (0, 1, ... in order of addition) or -EINVAL
 * (name not 1-15 characters of A-Z a-z 0-9 _ . -), -EEXIST, -ENOSPC. A new
 * path is available, untried and without metrics. */
int bandit_add_path(struct bandit *b, const char *name);
int bandit_path_count(const struct bandit *b);
const char *bandit_path_name(const struct bandit *b, int path);
const struct path_metrics *bandit_path_metrics(const struct bandit *b, int path);

/* Fold a telemetry sample into the path's metrics; -EINVAL for a bad path. */
int bandit_path_update(struct bandit *b, int path, const struct path_sample *s);
/* Force availability (link state from netlink, operator action). */
int bandit_path_set_available(struct bandit *b, int path, bool available);
/* Mark paths that sent without delivery for dead_after_ns unavailable; returns
 * the bit mask (1 << path) of the paths this call marked, whose flows must move. */
uint32_t bandit_expire(struct bandit *b, uint64_t now_ns);

/* The path for a new flow of class cls (see the top of this file), or -ENOENT if
 * no path is available, -EINVAL for a bad class. Changes no state except the
 * round-robin cursor. */
int bandit_select(struct bandit *b, enum traffic_class cls);
/* The same decision computed from scratch, without the terms bandit_select caches
 * between calls (for tests and the benchmark's baseline). */
int bandit_select_uncached(struct bandit *b, enum traffic_class cls);

/* Record one reward in [0, 1] for path of class cls; -EINVAL if out of range. */
int bandit_reward(struct bandit *b, enum traffic_class cls, int path, double reward);

/* Live-flow accounting that the anti-herding rule and the table use: start when
 * a flow is placed on a path, end when it closes or moves. -EINVAL on bad
 * arguments or an end without a start. */
int bandit_flow_start(struct bandit *b, enum traffic_class cls, int path);
int bandit_flow_end(struct bandit *b, enum traffic_class cls, int path);

/* The pieces of the decision, for tests and the table. */
double bandit_bonus(const struct bandit *b, enum traffic_class cls, int path);
double bandit_index(const struct bandit *b, enum traffic_class cls, int path); /* INFINITY if untried */
double bandit_capacity_share(const struct bandit *b, int path); /* 0 for an unavailable path */
bool bandit_admits(const struct bandit *b, int path);

/* ---- the table of `reflexctl paths` (plain data: can be copied or sent as is) ---- */

struct bandit_arm_view {
	double pulls;         /* n(p) as the index uses it (discounted or windowed per mode) */
	uint64_t pulls_total; /* rewards ever received */
	double mean_reward;   /* NAN while pulls == 0 */
	double bonus;
	double ucb_index;     /* INFINITY while pulls == 0 */
	uint32_t flows;
};

struct bandit_path_view {
	char name[BANDIT_PATH_NAME_LEN];
	struct path_metrics metrics;
	uint32_t flows;        /* live flows of every class */
	double capacity_share;
	bool admits_new_flow;
};

struct bandit_view {
	struct bandit_config config;
	uint64_t now_ns;       /* when the snapshot was taken, for ages */
	uint32_t n_paths;
	struct bandit_path_view path[BANDIT_MAX_PATHS];
	struct bandit_arm_view arm[TRAFFIC_CLASS_COUNT][BANDIT_MAX_PATHS];
};

void bandit_snapshot(const struct bandit *b, uint64_t now_ns, struct bandit_view *view);
int bandit_view_print_text(const struct bandit_view *view, FILE *out);
int bandit_view_print_json(const struct bandit_view *view, FILE *out);

#endif /* REFLEX_BANDIT_H */
