/*
 * Sliding feature windows: 200 ms long, every 100 ms (feature_schema.h). Samples are
 * binned by their own timestamp into 100 ms steps, so late or out-of-order records
 * land in the step they belong to; a window is the two steps before its end.
 * Pure computation (no I/O): reflexd feeds it live, tests and the forge offline.
 */
#ifndef REFLEX_WINDOW_H
#define REFLEX_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/feature_schema.h"

/* The window's two steps and the one after it, which takes the records that arrive
 * in the grace before the window is computed (a record two steps past a window not
 * yet computed, after a stall of the reader, pushes the window's first step out). */
#define WINDOW_BINS 3
#define WINDOW_RTT_KEEP 256 /* most RTT measurements a step keeps (the interface's) */

/* 64 bits at 4-byte alignment: a bin of 32-bit sums then needs no padding. */
typedef uint64_t uint64_align4_t __attribute__((aligned(4)));

/* One 100 ms step of one scope; which step follows from the series' newest (the
 * bins hold the WINDOW_BINS steps up to it, step index % WINDOW_BINS). Per-step sums
 * are 32-bit (4 GB a step is 343 Gbit/s; they saturate there) but for the squares of
 * packet sizes (GSO packets of 64 KB). The sum of packet sizes is bytes_in +
 * bytes_out. */
struct window_bin {
	uint64_align4_t size_sq_sum;
	uint32_t rtt_seen; /* the first rtt_keep of them are kept, then a uniform sample */
	uint32_t packets_in, packets_out;
	uint32_t bytes_in, bytes_out;
	uint32_t bytes_acked;
	uint32_t delivered;
	uint32_t retrans;
	uint32_t records;
};

/* A kept RTT measurement in microseconds, lib/log16.h-packed (a flow keeps 33 of
 * them, and reflexd up to 100k flows): exact under 2.048 ms, at most 0.1 % under
 * above. The series' min and EWMA take each measurement whole. */
typedef uint16_t rtt_kept_t;

/* The sliding window of one scope (the interface, or one flow). Each step keeps at
 * most rtt_keep RTT measurements (a uniform sample beyond) in rtt_us, storage the
 * owner provides: WINDOW_BINS x rtt_keep values. */
struct window_series {
	struct window_bin bins[WINDOW_BINS];
	uint32_t newest;        /* index of the newest step seen (ts_ns / WINDOW_STEP_NS: 13 years) */
	rtt_kept_t *rtt_us;
	float rtt_ewma_us;      /* gain 1/8, like the kernel's srtt; float's step is 0.06 µs at 1 s */
	uint32_t min_rtt_us;
	uint32_t srtt_us;
	uint32_t snd_cwnd;
	uint32_t late_samples;  /* older than any step still held: counted, not used */
	uint16_t rtt_keep;
	bool started;
};

/* Root-qdisc counters at one instant (qdisc_stats.c reads them). */
struct queue_snapshot {
	bool valid;
	uint64_t ts_ns;
	uint64_t sent_bytes;
	uint64_t sent_packets;
	uint64_t drops;
	uint64_t requeues;
	uint64_t overlimits;
	uint64_t backlog_bytes;
	uint64_t backlog_packets;
};

/* rtt_us: WINDOW_BINS x rtt_keep values (rtt_keep at most WINDOW_RTT_KEEP). */
void window_series_init(struct window_series *ws, rtt_kept_t *rtt_us, unsigned rtt_keep);

/* The step holding ts_ns, or NULL (and late_samples++) if it is already gone. */
struct window_bin *window_bin_at(struct window_series *ws, uint64_t ts_ns);

void window_add_rtt(struct window_series *ws, uint64_t ts_ns, uint32_t rtt_us);
void window_add_traffic(struct window_series *ws, uint64_t ts_ns, uint64_t packets_in, uint64_t packets_out,
			uint64_t bytes_in, uint64_t bytes_out, uint64_t size_sq_sum);
void window_add_delivery(struct window_series *ws, uint64_t ts_ns, uint64_t bytes_acked, uint64_t delivered,
			 uint64_t retrans);
void window_add_record(struct window_series *ws, uint64_t ts_ns);
/*
 * A delivery reported at to_ns that happened over [from_ns, to_ns), spread over the
 * steps it spans in proportion to time. The shares of the steps before to_ns's go to
 * them now if they are still held (older ones are dropped: their windows are out);
 * to_ns's own share is left in *bytes_acked and *delivered, for window_add_delivery at
 * to_ns once the windows the report completes were computed.
 */
void window_spread_delivery(struct window_series *ws, uint64_t from_ns, uint64_t to_ns, uint64_t *bytes_acked,
			    uint64_t *delivered);

/* True if any sample fell into the window ending at end_ns. */
bool window_active(const struct window_series *ws, uint64_t end_ns);

/*
 * The window [end_ns - WINDOW_LEN_NS, end_ns) of a series; end_ns must be a multiple
 * of WINDOW_STEP_NS. q_start/q_end are the root qdisc at both ends (either may be
 * invalid: then the queue features come from the series' own traffic).
 */
void window_compute(const struct window_series *ws, uint64_t end_ns, enum window_scope scope,
		    const struct queue_snapshot *q_start, const struct queue_snapshot *q_end,
		    struct feature_window *out);

#endif
