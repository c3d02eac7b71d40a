/*
 * Model drift: how far the inputs a model sees now are from its training inputs (the
 * model's reference section), as the population stability index (PSI) of each
 * feature over the last window_s seconds, and a guard that hands the model's
 * decisions to the heuristic while the drift stays high.
 *
 * PSI of one feature = sum over bins of (live - ref) x ln(live / ref), live and ref
 * being the fraction of windows in the bin, each floored at DRIFT_FRACTION_FLOOR so an
 * empty bin counts as rare rather than impossible. 0 = the same distribution; 0.1 to
 * 0.25 is the usual "moderate shift", above 0.25 "significant". The model's total is
 * the mean over its features, so one feature that the training data never varied
 * does not on its own hand a model over.
 */
#ifndef REFLEX_DRIFT_H
#define REFLEX_DRIFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

#define DRIFT_FRACTION_FLOOR 1e-4
/* Fewer windows than this in the last window_s say nothing: no PSI, no hand-over. */
#define DRIFT_MIN_WINDOWS 30
/* The way back: the total must stay below threshold x DRIFT_RETURN_RATIO for hold_s. */
#define DRIFT_RETURN_RATIO 0.5
/* The default: the threshold the forge calibrated into the model's reference (the
 * PSI its own 60 s blocks of windows reach, README Model health); a model without one
 * is measured and never handed over, since live PSI on the very traffic a tree was
 * trained on measured 0.4-6 and no fixed value fits every model. */
#define DRIFT_THRESHOLD_FROM_MODEL (-1.0)
#define DRIFT_DEFAULT_WINDOW_S 60
#define DRIFT_DEFAULT_HOLD_S 10
#define DRIFT_MAX_WINDOW_S 3600

/* PSI of live against ref over bins bins (counts; a zero total reads as all-floor). */
double drift_psi(const uint32_t *ref, uint32_t ref_total, const uint32_t *live, uint32_t live_total,
		 unsigned bins);

/* The last window_s seconds of one model's inputs, binned by its reference. */
struct drift {
	const struct model *model;   /* its reference is the baseline */
	unsigned window_s;
	uint64_t head_s;             /* the second the newest bucket holds */
	uint32_t *buckets;           /* [window_s][feature_count][bin_count], a ring by second */
	uint32_t *bucket_n;          /* [window_s] windows per bucket */
	double psi[MODEL_MAX_FEATURES];
	double total;
	uint32_t windows;            /* in the last computation */
};

/* 0, -EINVAL (no reference, bad window), or -ENOMEM. */
int drift_init(struct drift *d, const struct model *m, unsigned window_s);
void drift_free(struct drift *d);
/* One window's quantized inputs (model feature order) seen at second now_s. */
void drift_add(struct drift *d, uint64_t now_s, const int16_t *q);
/* Recomputes psi[] and total over (now_s - window_s, now_s]; false (psi and total 0)
 * when fewer than DRIFT_MIN_WINDOWS windows fell in it. */
bool drift_compute(struct drift *d, uint64_t now_s);
/* The indexes of the n features of largest PSI, largest first (n <= feature_count). */
void drift_top_features(const struct drift *d, unsigned *idx, unsigned n);

/* Hand-over with hysteresis: over threshold for hold_s hands over; below
 * threshold x DRIFT_RETURN_RATIO for hold_s hands back. */
struct drift_guard {
	double threshold;
	unsigned hold_s;
	bool handed_over;
	bool timing;          /* a crossing is being timed since since_s */
	uint64_t since_s;
	uint64_t handovers;   /* to the heuristic */
	uint64_t returns;     /* back to the model */
};

enum drift_event { DRIFT_NONE = 0, DRIFT_HANDOVER, DRIFT_RETURN };

/* valid: drift_compute's answer (no verdict without enough windows: timing restarts). */
enum drift_event drift_guard_update(struct drift_guard *g, uint64_t now_s, bool valid, double total);

#endif
