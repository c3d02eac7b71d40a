/*
 * The forge's oracles: for one telemetry window, try every candidate policy in a
 * simulator and score it with an objective J (lower is better). The label of the
 * window is the candidate with the least J (ties: the first in candidate order).
 *
 * Recipe `batching` (the telemetry pipeline's own knobs):
 *   flush_threshold    in {1, 4, 8, 16, 32, 64}        records per forced ring-buffer wakeup
 *   max_batch_delay_us in {50, 200, 1000, 4000}        reflexd's ring-buffer poll timeout, us
 *   J = p95_latency_us + lambda * batch_overhead
 *   p95_latency_us: 95th percentile (nearest rank) of the delivery delay of a record,
 *                   from its BPF timestamp to the end of its processing by reflexd, us
 *   batch_overhead: consumer wakeups per record (poll returns, forced or timed out,
 *                   divided by the window's records; by 1 if it had none)
 *   J is in microseconds; lambda in microseconds per (wakeup per record).
 *
 * Recipe `cwnd` (a per-flow cap, written by reflexd as a clamp):
 *   cwnd_bdp_multiple in {0.5, 0.75, 1, 1.25, 1.5, 2, 4, 0}; 0 means no cap
 *   J = rtt_p95 / min_rtt + lambda * throughput_shortfall_pct
 *   throughput_shortfall_pct: 100 * max(0, 1 - throughput / capacity), 0..100
 *   J is dimensionless; lambda per percent of shortfall.
 */
#ifndef REFLEX_ORACLE_H
#define REFLEX_ORACLE_H

#include <stddef.h>
#include <stdint.h>

#include "sim/bottleneck_sim.h"

#define ORACLE_DEFAULT_LAMBDA 0.1

/* --- batching ------------------------------------------------------------- */

#define BATCHING_THRESHOLDS 6
#define BATCHING_DELAYS 4
#define BATCHING_CANDIDATES (BATCHING_THRESHOLDS * BATCHING_DELAYS)
/* Wakeup counters the replay keeps apart: one per (ring, cpu) like ring_pending. */
#define BATCHING_MAX_COUNTERS 1024

extern const unsigned batching_thresholds[BATCHING_THRESHOLDS];
extern const unsigned batching_delays_us[BATCHING_DELAYS];

/*
 * The replay's model of the pipeline (see batching_simulate):
 * - BPF: each record increments the pending count of its counter (ring and CPU, as
 *   the ring_pending map does); the record that brings it to flush_threshold is
 *   submitted with BPF_RB_FORCE_WAKEUP and resets it, every other one with
 *   BPF_RB_NO_WAKEUP. Counts start at 0 at the window start.
 * - reflexd: polls with a max_batch_delay timeout from the window start. A poll
 *   returns at the first forced wakeup or at its timeout; reflexd then runs after
 *   wakeup_cost_ns, and handles every record that has arrived (including those
 *   arriving meanwhile) at record_cost_ns each, then polls again. A record is
 *   delivered when its handling ends.
 * - The run covers the window and goes on past its end only until every record
 *   in it is delivered; wakeups in that tail count too.
 */
struct batching_params {
	double lambda;
	uint64_t wakeup_cost_ns;  /* scheduling + epoll return per wakeup */
	uint64_t record_cost_ns;  /* reflexd's handling of one record */
};

#define BATCHING_DEFAULT_WAKEUP_COST_NS 10000
#define BATCHING_DEFAULT_RECORD_COST_NS 1000

void batching_params_default(struct batching_params *p);

struct record_arrival {
	uint64_t ts_ns;
	uint32_t counter; /* < BATCHING_MAX_COUNTERS */
};

struct batching_outcome {
	size_t records;
	uint64_t wakeups;
	double p95_latency_us;
	double batch_overhead;
	double j;
};

/* Replays arrivals (sorted by ts_ns, all in [start_ns, end_ns)) under one pair.
 * 0, -EINVAL (threshold 0, unsorted or out-of-window arrivals), or -ENOMEM. */
int batching_simulate(const struct record_arrival *arrivals, size_t n, uint64_t start_ns, uint64_t end_ns,
		      unsigned flush_threshold, uint64_t max_batch_delay_ns, const struct batching_params *p,
		      struct batching_outcome *out);

/* Every candidate (index = threshold_idx * BATCHING_DELAYS + delay_idx) and the best. */
struct batching_label {
	struct batching_outcome candidate[BATCHING_CANDIDATES];
	unsigned best;
};

int batching_label_window(const struct record_arrival *arrivals, size_t n, uint64_t start_ns, uint64_t end_ns,
			  const struct batching_params *p, struct batching_label *out);

/* n arrivals evenly spaced over [start_ns, end_ns), at the middle of n equal slices,
 * all on counter 0: what a window's `records` count says when no records file exists. */
void batching_even_arrivals(size_t n, uint64_t start_ns, uint64_t end_ns, struct record_arrival *out);

/* --- cwnd ----------------------------------------------------------------- */

#define CWND_CANDIDATES 8
/* 0 = no cap; the last candidate, so ties prefer a cap. */
extern const double cwnd_bdp_multiples[CWND_CANDIDATES];

/*
 * The scenario a flow window stands for, in bsim terms: one CUBIC flow through a
 * drop-tail bottleneck of link_bps = the flow's delivery rate, base RTT = its
 * minimum RTT, and a buffer of the largest of: the root-qdisc backlog, the bytes
 * the flow's queueing delay implies ((latency_p95 - min_rtt) * rate), and one BDP.
 */
struct cwnd_params {
	double lambda;
	double min_rate_bps;      /* windows slower than this are not labelled (idle flows) */
	uint32_t warmup_rtts;     /* discarded start of each run, in base RTTs */
	uint32_t measure_rtts;    /* measured part, in base RTTs */
	uint64_t min_measure_us;  /* lower bounds of both, for short RTTs */
	uint64_t max_packets;     /* bound on the packets one run may carry (CPU time) */
	uint64_t seed;
	uint32_t horizon_ms;      /* forge: rates the flow reaches this far ahead (0: none) */
};

#define CWND_DEFAULT_MIN_RATE_BPS 1e6

void cwnd_params_default(struct cwnd_params *p);

/* The scenario of one window; -ERANGE if it is not labelled (too slow, no RTT). */
int cwnd_scenario(double delivery_rate_bps, double min_rtt_us, double latency_p95_us, double backlog_bytes,
		  const struct cwnd_params *p, struct bsim_config *cfg, uint64_t *warmup_us,
		  uint64_t *measure_us);

struct cwnd_label;

/*
 * A window on a link whose rate moves: each candidate's cap is set from the rate the
 * flow measured (rate_now_bps, as reflexd sets it), then run on a link at each of
 * rates_bps[] (the rates the flow reached soon after); a candidate's rtt ratio and
 * shortfall are their means over those runs. Rates under p->min_rate_bps are left
 * out; -ERANGE if rate_now_bps is one of them (as cwnd_scenario).
 */
int cwnd_label_rates(double rate_now_bps, const double *rates_bps, unsigned n, double min_rtt_us,
		     double latency_p95_us, double backlog_bytes, const struct cwnd_params *p,
		     struct cwnd_label *out);

struct cwnd_outcome {
	double rtt_ratio;
	double shortfall_pct;
	double j;
	uint32_t clamp_pkts;
};

struct cwnd_label {
	struct cwnd_outcome candidate[CWND_CANDIDATES];
	unsigned best;
};

/* 0, -EINVAL, -ENOMEM, or -ENODATA (the sim delivered nothing). */
int cwnd_label_scenario(const struct bsim_config *cfg, uint64_t warmup_us, uint64_t measure_us,
			const struct cwnd_params *p, struct cwnd_label *out);

#endif /* REFLEX_ORACLE_H */
