/*
 * When a decision may change. A new value must differ from the one in force by more
 * than `margin` (relative) and keep doing so for `hold_ns`; a change of direction
 * (a reversal: up after down, or down after up) is allowed at most once per
 * `reversal_gap_ns`, so oscillation stays within that bound by construction.
 * Withdrawing a decision (to 0 = none) and the first decision are never held back.
 */
#ifndef REFLEX_HYSTERESIS_H
#define REFLEX_HYSTERESIS_H

#include <stdbool.h>
#include <stdint.h>

struct hysteresis_params {
	double margin;            /* e.g. 0.10: changes of 10 % or less are ignored */
	uint64_t hold_ns;         /* how long a proposal must stand before it is taken */
	uint64_t reversal_gap_ns; /* minimum time between two reversals */
};

#define HYSTERESIS_DEFAULTS { .margin = 0.10, .hold_ns = 300ULL * 1000 * 1000, \
			      .reversal_gap_ns = 30ULL * 1000 * 1000 * 1000 }

struct hysteresis {
	double current;            /* the value in force; 0 = none */
	int last_direction;        /* +1 up, -1 down, 0 none yet */
	uint64_t last_reversal_ns; /* 0 = never */
	double pending;            /* proposal waiting out hold_ns; 0 = none */
	uint64_t pending_since_ns;
	uint64_t changes;
	uint64_t reversals;
	uint64_t reversals_refused;
};

/* Offers a proposal at time now; returns true if the value in force changed (to h->current). */
bool hysteresis_offer(struct hysteresis *h, const struct hysteresis_params *p, double proposal, uint64_t now_ns);

#endif
