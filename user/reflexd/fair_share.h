/*
 * The caps of reflexd's flows that share a queue. A cut proportional to each flow's
 * own rate (its cap x min RTT / median RTT) keeps whatever split startup left: four
 * flows through one bottleneck kept Jain's index at 0.69-0.86 in the arena. Flows of
 * one bottleneck see its queue in the same second and, from one host, have about the
 * same min RTT; so the caps of the capped flows that saw a queue are summed per band
 * of min RTT (FAIR_RTT_RATIO wide) over the last two epochs of FAIR_EPOCH_MS. A flow
 * whose band (or a neighbour) holds another flow's queue is in a shared queue, and
 * its cut applies the same factor to the group's mean cap instead of its own: one
 * cut evens the caps, and the group's sum is what proportional cuts would leave. A
 * flow over the mean is cut to it even where its own rate calls for no cut.
 * Flows on two bottlenecks that look alike (same min RTT band, queues in the same
 * second) are taken for one group: the faster one's cap comes down to the mean, then
 * finds no queue and probes back up (controller.h, PROBE_STEP).
 */
#ifndef REFLEX_FAIR_SHARE_H
#define REFLEX_FAIR_SHARE_H

#include <stdbool.h>
#include <stdint.h>

#define FAIR_EPOCH_MS 1000
#define FAIR_RTT_RATIO 1.25
#define FAIR_BANDS 64 /* 1.25^64: bands wrap only between min RTTs 10^6 apart */

struct fair_epoch {
	double cap_sum;      /* caps summed over the windows noted */
	uint32_t windows;
	uint32_t first_slot; /* the first flow noted (its control slot) */
	bool several;        /* another flow noted too */
};

struct fair_band {
	uint32_t epoch; /* of cur: ms / FAIR_EPOCH_MS */
	struct fair_epoch cur, prev;
};

struct fair_share {
	struct fair_band band[FAIR_BANDS];
};

/* A capped flow (slot: its control slot, never 0) saw a queue in a window at now_ms. */
void fair_share_note(struct fair_share *fs, double min_rtt_us, uint32_t cap, uint32_t slot, uint32_t now_ms);

/* The mean cap of the flows in a queue shared with the flow in slot: 0 if no other
 * flow of its min RTT band or the two beside it saw a queue in this epoch or the last. */
double fair_share_mean(const struct fair_share *fs, double min_rtt_us, uint32_t slot, uint32_t now_ms);

#endif
