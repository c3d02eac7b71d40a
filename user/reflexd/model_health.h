/*
 * Model health in reflexd: the drift of each loaded tree model (drift.h) against its
 * training reference, and the hand-over of its decisions to the heuristic (the cwnd
 * tree) or to the knobs in force (the batching tree) while the drift stays high.
 * A model without a reference (older files, the DQN) is never handed over.
 */
#ifndef REFLEX_MODEL_HEALTH_H
#define REFLEX_MODEL_HEALTH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/feature_schema.h"
#include "model/model.h"
#include "reflexd/drift.h"

/* Per-flow anomaly: a flow whose windows score above the threshold against the cwnd
 * tree's isolation forest (model.h, `anomaly` section) for hold windows in a row is
 * decided by the heuristic, and by the tree again after hold windows below it. */
#define ANOMALY_DEFAULT_THRESHOLD 0.65
#define ANOMALY_DEFAULT_HOLD 10
#define ANOMALY_MAX_HOLD 6000
#define ANOMALY_SCALE 1000          /* scores are kept in thousandths */
#define ANOMALY_NOT_SCORED (-1)

struct model_health_opts {
	double threshold; /* total PSI; 0: drift not acted on; DRIFT_THRESHOLD_FROM_MODEL */
	unsigned window_s;
	unsigned hold_s;
	double anomaly_threshold; /* score in 0..1; 0: off */
	unsigned anomaly_hold;    /* windows */
};

#define MODEL_HEALTH_DEFAULTS                                                                          \
	{ .threshold = DRIFT_THRESHOLD_FROM_MODEL, .window_s = DRIFT_DEFAULT_WINDOW_S,                \
	  .hold_s = DRIFT_DEFAULT_HOLD_S, .anomaly_threshold = ANOMALY_DEFAULT_THRESHOLD,             \
	  .anomaly_hold = ANOMALY_DEFAULT_HOLD }

/* One flow's anomaly state, small enough for every flow of the controller's table. */
struct flow_anomaly {
	int16_t score;  /* of its last window, in 1/ANOMALY_SCALE; ANOMALY_NOT_SCORED before one */
	uint16_t run;   /* FLOW_ANOMALY_HANDED: the heuristic decides it; low bits: windows in a
			   row on the far side of the threshold (above it, or below it once handed) */
};
#define FLOW_ANOMALY_HANDED 0x8000u

enum anomaly_event { ANOMALY_NONE = 0, ANOMALY_HANDOVER, ANOMALY_RETURN };

/* Scores q (the model's quantized inputs) with forest a and moves fa's run; threshold
 * in 1/ANOMALY_SCALE (0: scored, never handed over). */
enum anomaly_event flow_anomaly_observe(struct flow_anomaly *fa, const struct model_anomaly *a, const int16_t *q,
					int threshold, unsigned hold);
static inline bool flow_anomaly_handed(const struct flow_anomaly *fa)
{
	return fa->run & FLOW_ANOMALY_HANDED;
}

/* One model's drift watch. */
struct model_drift {
	const char *role;          /* "cwnd", "batching": the metrics' model label */
	const struct model *model; /* the one drift was set up for; NULL: none */
	double threshold_opt;      /* --drift-threshold, or DRIFT_THRESHOLD_FROM_MODEL */
	bool active;               /* model has a reference */
	unsigned window_s;
	uint64_t last_s;           /* the second drift was last computed */
	bool valid;                /* enough windows in the last computation */
	struct drift drift;
	struct drift_guard guard;
};

void model_drift_init(struct model_drift *md, const char *role, const struct model_health_opts *opt);
void model_drift_free(struct model_drift *md);
/*
 * One window's inputs (window_inputs order) for model m at ts_ns, mapped by map; a
 * new m (a reload) restarts the watch. Returns whether m may decide (false while its
 * decisions are handed over). Each hand-over and return is one line on log.
 */
bool model_drift_observe(struct model_drift *md, const struct model *m, const int *map,
			 const double raw[WINDOW_INPUTS], uint64_t ts_ns, FILE *log);

#endif
