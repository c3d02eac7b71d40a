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

struct model_health_opts {
	double threshold; /* total PSI; 0: drift not checked */
	unsigned window_s;
	unsigned hold_s;
};

#define MODEL_HEALTH_DEFAULTS \
	{ .threshold = DRIFT_DEFAULT_THRESHOLD, .window_s = DRIFT_DEFAULT_WINDOW_S, .hold_s = DRIFT_DEFAULT_HOLD_S }

/* One model's drift watch. */
struct model_drift {
	const char *role;          /* "cwnd", "batching": the metrics' model label */
	const struct model *model; /* the one drift was set up for; NULL: none */
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
