/*
 * When a decision may change. A new value must differ from the one in force by more
 * than `margin` (relative) and keep doing so for `hold_ns`; a change of direction
 * (a reversal: up after down, or down after up) comes at least
 * `quick_reversal_gap_ns` after the last one, and within `reversal_gap_ns` of it only
 * if the run it turns back (the changes in one direction since the last reversal)
 * moved the value by more than `quick_reversal_factor`. So a value swinging inside
 * any band narrower than that factor reverses at most once per `reversal_gap_ns`, and
 * no value reverses more than once per `quick_reversal_gap_ns`: a cap that followed
 * the link down 4x may follow it back up a second later, noise may not.
 * A `measured` reversal, one the flow's own measurements call for (controller.h:
 * a probe of a capped flow with no queue, a cut while a queue builds), waits only
 * `quick_reversal_gap_ns`: on a cellular link the rate swings by less than the
 * factor every few seconds, and a cap that may not follow it back up for 30 s
 * locks low (the arena's LTE downlink: 14 packets for 17 s at 0.45 utilization).
 * Withdrawing a decision (to 0 = none), the first decision and a measured cut of it
 * (the queue the first cap left, startup's) are never held back.
 */
#ifndef REFLEX_HYSTERESIS_H
#define REFLEX_HYSTERESIS_H

#include <stdbool.h>
#include <stdint.h>

struct hysteresis_params {
	double margin;            /* e.g. 0.10: changes of 10 % or less are ignored */
	uint64_t hold_ns;         /* how long a proposal must stand before it is taken */
	uint64_t reversal_gap_ns; /* minimum time between two reversals ... */
	uint64_t quick_reversal_gap_ns; /* ... unless the run reversed moved more than */
	double quick_reversal_factor;   /* this factor: then this minimum time */
};

#define HYSTERESIS_DEFAULTS { .margin = 0.10, .hold_ns = 300ULL * 1000 * 1000, \
			      .reversal_gap_ns = 30ULL * 1000 * 1000 * 1000, \
			      .quick_reversal_gap_ns = 1000ULL * 1000 * 1000, .quick_reversal_factor = 2.0 }

/* One per controlled flow, so kept narrow (40 bytes, was 72): the values are caps in
 * packets, which the controller computes as uint32_t, the counters grow by at most
 * one per window offered (10 a second: 32 bits last 13 years), and times are in ms,
 * wrapping after 49 days (compare differences). */
struct hysteresis {
	uint32_t current;          /* the value in force; 0 = none */
	uint32_t run_start;        /* the value in force when the current direction began */
	uint32_t pending;          /* proposal waiting out hold_ns; 0 = none */
	uint32_t changes;
	uint32_t reversals;
	uint32_t reversals_refused;
	uint32_t changed_ms;       /* when current was last set */
	uint32_t reversed_ms;      /* when the last reversal was taken (reversals > 0) */
	uint32_t pending_since_ms; /* when pending was first offered */
	int8_t last_direction;     /* +1 up, -1 down, 0 none yet */
	bool pending_measured;     /* the pending proposal's `measured` */
};

/* Offers a proposal at time now; returns true if the value in force changed (to h->current). */
bool hysteresis_offer(struct hysteresis *h, const struct hysteresis_params *p, uint32_t proposal, uint64_t now_ns,
		      bool measured);

/* At a time no measurement speaks to (a window without an RTT sample): the pending
 * proposal neither stands down nor is confirmed, and is taken if it has stood hold_ns
 * since it was first offered. Returns true if the value in force changed. */
bool hysteresis_unmeasured(struct hysteresis *h, const struct hysteresis_params *p, uint64_t now_ns);

#endif
