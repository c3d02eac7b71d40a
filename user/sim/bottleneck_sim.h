/*
 * bsim: the bottleneck-queue simulator shared by the forge's `cwnd` oracle and the
 * DQN trainer.
 *
 * Model (deterministic for a given config and seed):
 * - One FIFO drop-tail queue in front of a link of link_bps. A packet accepted at
 *   time t leaves the link at d = max(t, previous departure) + mss*8/link_bps
 *   (store-and-forward, so its own serialization counts). A packet that does not
 *   fit in buffer_bytes (queued bytes, including the packet in transmission) is
 *   dropped at the tail.
 * - After the link, every packet is lost at random with probability loss_rate (it
 *   used the link, then vanished on the wire).
 * - The ACK of a delivered packet reaches its sender at d + base_rtt_us: the RTT
 *   sample is base_rtt + queueing wait + serialization. base_rtt_us is the
 *   propagation round trip only; the least RTT a packet can see is
 *   bsim_min_rtt_us() = base_rtt + one MSS serialization.
 * - A lost packet (tail drop or random) is detected by its sender at the time its
 *   ACK would have arrived (fast retransmit with SACK, no RTO): it leaves the
 *   flight, counts one loss, and is sent again as a retransmission when the window
 *   allows. At most one window reduction per round trip (losses of packets sent
 *   before the last reduction are not reduced for again).
 * - Senders are window limited (no pacing) and act on a time grid of tick_us: at
 *   each tick the sim first delivers every ACK/loss event due by then (in event
 *   order, at their exact times), then lets every flow send while its packets in
 *   flight are below its cwnd. When tick_us divides both base_rtt_us and the
 *   serialization time the sim is exact; otherwise a sender reacts up to one tick
 *   late.
 * - Congestion control per flow: Reno (slow start, +1 MSS per RTT, halve on loss),
 *   CUBIC (RFC 9438 window curve, C = 0.4, beta = 0.7, Reno-friendly region, no
 *   HyStart), or external (cwnd is whatever bsim_set_cwnd() set; losses do not
 *   change it) for an agent that controls cwnd directly.
 * - cwnd_clamp (packets, 0 = none) acts like bpf_setsockopt(TCP_BPF_SNDCWND_CLAMP):
 *   setting it sets ssthresh = clamp and keeps cwnd <= clamp from then on.
 * - Optional unresponsive constant-rate cross traffic (cross_bps, MSS packets
 *   evenly spaced) shares the queue, to model a standing queue or an overload.
 * - Optional one-time link rate change at rate_change_at_us; packets already
 *   queued keep the departure times they were given.
 * - Optional capacity schedule instead (rate_schedule_bps, e.g. a mahimahi trace's
 *   capacity per step from bsim_schedule_from_trace()): the link rate of each step,
 *   looping. A packet's serialization integrates the rates of the steps it spans
 *   (the schedule is known ahead), so packets queued before a rate change leave at
 *   the new rate from the change on, as on a real link; a step's rate is the same
 *   for every packet in it.
 * - Bytes are wire bytes: a packet is mss bytes on the link, no header overhead.
 * - No jitter: periodic timings can phase-lock. Cross traffic whose period is
 *   commensurate with the departures may take every freed slot before a flow can
 *   (drop-tail lock-out), which real jitter would break.
 *
 * Times in the API are microseconds since the start of the run; rates are bits/s.
 * All flows share base_rtt_us. Nothing here does I/O or reads a clock.
 */
#ifndef REFLEX_BOTTLENECK_SIM_H
#define REFLEX_BOTTLENECK_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "lib/prng.h"

#define BSIM_MAX_FLOWS 64
#define BSIM_MAX_CWND (1u << 20)   /* packets; cwnd and clamps are limited to this */
#define BSIM_DEFAULT_MSS 1500
#define BSIM_DEFAULT_INIT_CWND 10

enum bsim_cc {
	BSIM_CC_CUBIC = 0,
	BSIM_CC_RENO = 1,
	BSIM_CC_EXTERNAL = 2, /* cwnd set by bsim_set_cwnd() only */
};

struct bsim_config {
	uint64_t link_bps;          /* bottleneck rate, > 0 */
	uint32_t base_rtt_us;       /* propagation round trip, > 0 */
	uint64_t buffer_bytes;      /* drop-tail limit, >= mss */
	double loss_rate;           /* random loss per packet after the link, [0, 1) */
	uint32_t mss;               /* bytes per packet on the wire, 0 = BSIM_DEFAULT_MSS */
	uint32_t flows;             /* 1..BSIM_MAX_FLOWS responsive flows */
	uint32_t flow_start_gap_us; /* flow i starts at i * gap (0 = all at time 0) */
	enum bsim_cc cc;
	uint32_t init_cwnd;         /* packets, 0 = BSIM_DEFAULT_INIT_CWND */
	uint32_t cwnd_clamp;        /* packets per flow applied at start, 0 = none */
	uint64_t cross_bps;         /* unresponsive constant-rate traffic into the same queue, 0 = none */
	uint64_t rate_change_at_us; /* 0 = never */
	uint64_t rate_change_bps;   /* the link rate from rate_change_at_us on */
	/* Capacity schedule, NULL = none: rate_schedule_bps[i] (> 0) during step i of
	 * rate_schedule_step_us from time 0, looping after rate_schedule_len steps; not with
	 * rate_change_at_us. link_bps still sets the BDP figures. The array is the caller's
	 * and must outlive the sim. */
	const uint64_t *rate_schedule_bps;
	uint32_t rate_schedule_len;
	uint32_t rate_schedule_step_us;
	uint32_t tick_us;           /* sender time grid, 0 = auto: base_rtt/100 clamped to [10, 1000] */
	uint64_t seed;              /* random loss stream */
	int record_rtt;             /* keep every RTT sample for bsim_rtt_percentile() */
};

struct trace;

/* A trace's capacity (lib/trace.h) as `steps` rates of step_ms each, from offset_ms:
 * the opportunities in each step x 1500 bytes. A step without any becomes one packet
 * per step (the sim gives every queued packet a departure time, so it cannot hold a
 * packet through an outage). 0, or -EINVAL for step_ms == 0 or steps == 0. */
int bsim_schedule_from_trace(const struct trace *t, uint64_t offset_ms, uint32_t step_ms,
			     uint32_t steps, uint64_t *rates_bps);

/* Fills a config with a single CUBIC flow over 100 Mbit/s, 20 ms, 1 BDP of buffer. */
void bsim_config_default(struct bsim_config *cfg);

/* 0 if usable; else -EINVAL and a message naming the field in err. */
int bsim_config_check(const struct bsim_config *cfg, char *err, size_t err_len);

/* Bandwidth-delay product of the initial link rate and base_rtt_us. */
double bsim_bdp_bytes(const struct bsim_config *cfg);
double bsim_bdp_packets(const struct bsim_config *cfg);
/* The clamp for a cap of `bdp_multiple` BDPs as reflexd would set it on this link
 * (lib/bdp.h: link rate, bsim_min_rtt_us, the mss); 0 for bdp_multiple <= 0 (no clamp). */
uint32_t bsim_clamp_for_bdp(const struct bsim_config *cfg, double bdp_multiple);
/* Least RTT a packet can see: base_rtt + one MSS serialization at the initial rate. */
double bsim_min_rtt_us(const struct bsim_config *cfg);

struct bsim;

/* -EINVAL (bad config; bsim_config_check() says why) or -ENOMEM on failure. */
int bsim_new(const struct bsim_config *cfg, struct bsim **out);
void bsim_free(struct bsim *sim);

/* Advance one tick / until the sim time is >= t_us. */
void bsim_tick(struct bsim *sim);
void bsim_run_until(struct bsim *sim, uint64_t t_us);
uint64_t bsim_now_us(const struct bsim *sim);
uint32_t bsim_tick_us(const struct bsim *sim);

/* Per-flow controls; flow < cfg->flows, otherwise -EINVAL. */
int bsim_set_cwnd_clamp(struct bsim *sim, uint32_t flow, uint32_t clamp_pkts); /* 0 removes it */
int bsim_set_cwnd(struct bsim *sim, uint32_t flow, uint32_t cwnd_pkts);        /* >= 1, capped by clamp */

/* Cumulative since the start of the run (counters only grow; diff two snapshots
 * for an interval), plus the flow's current state. */
struct bsim_flow_stats {
	uint64_t sent_pkts;       /* including retransmissions */
	uint64_t retrans_pkts;
	uint64_t delivered_pkts;  /* acked, each packet once */
	uint64_t delivered_bytes;
	uint64_t lost_pkts;       /* losses detected by the sender */
	uint64_t tail_drops;      /* of which dropped at the queue */
	uint64_t rtt_samples;
	uint64_t rtt_sum_us;      /* sum of the samples, for a mean over an interval */
	uint32_t cwnd;            /* packets (floor of the internal window) */
	uint32_t ssthresh;        /* packets, UINT32_MAX before the first reduction */
	uint32_t cwnd_clamp;      /* 0 = none */
	uint32_t inflight;        /* packets sent, neither acked nor detected lost */
	uint32_t srtt_us;         /* kernel-style EWMA, gain 1/8 */
	uint32_t rttvar_us;       /* kernel-style mdev, gain 1/4 */
	uint32_t min_rtt_us;      /* least sample so far, 0 before the first */
	uint32_t last_rtt_us;     /* latest sample, 0 before the first */
};

struct bsim_link_stats {
	uint64_t now_us;
	uint64_t link_bps;           /* current rate */
	uint64_t queue_bytes;        /* backlog now, including the packet in transmission */
	uint32_t queue_pkts;
	uint64_t capacity_bytes;     /* integral of the link rate since the start, / 8 */
	uint64_t flow_delivered_bytes;  /* sum over the flows */
	uint64_t cross_sent_pkts;
	uint64_t cross_delivered_bytes; /* cross traffic that left the link and survived */
	uint64_t tail_drops;         /* all traffic */
	uint64_t random_losses;      /* all traffic */
};

int bsim_flow_stats(const struct bsim *sim, uint32_t flow, struct bsim_flow_stats *out);
void bsim_link_stats(const struct bsim *sim, struct bsim_link_stats *out);

/*
 * RTT samples of all flows (one per delivered packet, in us, rounded to nearest),
 * kept only with cfg->record_rtt. Percentile q in [0, 1] by the nearest-rank
 * method over the samples since the last clear: -ENODATA if there are none,
 * -EINVAL if recording is off or q is outside [0, 1], -ENOMEM if the log could
 * not grow (percentiles over a truncated log would be wrong).
 */
void bsim_rtt_clear(struct bsim *sim);
size_t bsim_rtt_count(const struct bsim *sim);
int bsim_rtt_percentile(struct bsim *sim, double q, uint32_t *rtt_us);

/*
 * The `cwnd` oracle's question: run cfg (record_rtt forced on) with every flow
 * clamped to bsim_clamp_for_bdp(cfg, cap_bdp) (cap_bdp <= 0: cfg->cwnd_clamp is
 * used as given), discard the first warmup_us, and measure the next duration_us.
 */
struct bsim_eval {
	uint32_t cwnd_clamp;     /* packets applied, 0 = none */
	uint32_t rtt_p50_us;
	uint32_t rtt_p95_us;
	double min_rtt_us;       /* bsim_min_rtt_us(cfg) */
	double rtt_ratio;        /* rtt_p95_us / min_rtt_us, >= 1 */
	double throughput_bps;   /* the flows' delivered bytes * 8 / duration */
	double capacity_bps;     /* link capacity over the interval minus delivered cross traffic */
	double shortfall;        /* max(0, 1 - throughput / capacity), in [0, 1] */
	uint64_t lost_pkts;      /* detected by the flows in the interval */
	uint64_t tail_drops;     /* flows' packets dropped at the queue in the interval */
	uint64_t queue_bytes_max; /* largest backlog seen at a tick in the interval */
};

/* 0, -EINVAL (bad config or duration_us == 0), -ENOMEM, or -ENODATA (no packet
 * was delivered in the interval). */
int bsim_eval_clamp(const struct bsim_config *cfg, double cap_bdp, uint64_t warmup_us,
		    uint64_t duration_us, struct bsim_eval *out);

#endif /* REFLEX_BOTTLENECK_SIM_H */
