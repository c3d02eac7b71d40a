/*
 * Shadow mode's verdict on a cwnd policy: for flow windows under a decision, the
 * forge's bottleneck simulator replays the window's scenario (its delivery rate,
 * minimum RTT and queue) with the decided cap and without one; the expected change
 * of p95 RTT is the mean over those windows. The promotion gate is the seed's:
 * expected delta p95 <= -10 % and at most one oscillation (reversal) per 30 s.
 */
#ifndef REFLEX_SHADOW_H
#define REFLEX_SHADOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/feature_schema.h"

#define SHADOW_GATE_DELTA_P95 (-0.10)
#define SHADOW_GATE_OSCILLATIONS_PER_30S 1.0
/* Simulate one in this many windows of a flow under decision (CPU). */
#define SHADOW_EVAL_EVERY 5

struct shadow_report {
	uint64_t evaluated;
	double delta_p95_sum;
	double flow_seconds;          /* time flows spent under a decision */
	uint64_t reversals;
	uint32_t max_reversals_30s;   /* most reversals one flow made within any 30 s */
	uint64_t reversals_held_back; /* reversals the hysteresis refused */
};

/* Records a flow's reversal, since_prev_ns after its previous one (UINT64_MAX: none).
 * A measured one (hysteresis.h: a probe with no queue, a cut while a queue builds) is
 * counted but is no oscillation for the gate: it is the control loop following the
 * link, as BBR's gain cycle is, not the policy changing its mind. */
void shadow_note_reversal(struct shadow_report *r, uint64_t since_prev_ns, bool measured);

/* The expected relative change of p95 RTT, (p95 capped / p95 uncapped) - 1, for the
 * scenario of window w under a cap of cap_multiple BDPs. -ERANGE if w cannot be
 * simulated (idle, no RTT), other negative errno on failure. */
int shadow_expected_delta(const struct feature_window *w, double cap_multiple, double *delta);

double shadow_delta_p95(const struct shadow_report *r);
/* The most reversals (direction changes of a flow's cap) one flow made within 30 s. */
double shadow_oscillations_per_30s(const struct shadow_report *r);
/* true if the gate passes; why says what was measured and, if it fails, what failed. */
bool shadow_gate(const struct shadow_report *r, char *why, size_t len);

#endif
