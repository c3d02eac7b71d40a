/*
 * What the forge stores so reflexd can tell when a model is out of its depth
 * (README, Model health): the drift threshold calibrated on the model's own windows,
 * and the isolation forest that scores each live window's anomaly.
 */
#ifndef REFLEX_FORGE_HEALTH_H
#define REFLEX_FORGE_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

/* 60 s of one flow's 100 ms windows: what reflexd's drift window holds for one flow. */
#define FORGE_DRIFT_BLOCK 600
/* The smallest block worth a PSI (reflexd's DRIFT_MIN_WINDOWS). */
#define FORGE_DRIFT_MIN_BLOCK 30
/* The threshold: this quantile of in-distribution PSI, times the margin. */
#define FORGE_DRIFT_QUANTILE 0.99
#define FORGE_DRIFT_MARGIN 1.5

struct forge_drift_calibration {
	size_t block;   /* windows per block */
	size_t blocks;  /* PSIs measured */
	double p50, p99, max;
	double threshold; /* 0 when there were too few windows */
};

/*
 * The mean PSI (reflexd's measure) against m's reference of every run of `block`
 * consecutive rows of q[n][feature_count] (rows in flow and time order, so a block
 * is what one flow shows reflexd in a drift window), a block starting every block/4
 * rows; the threshold is the FORGE_DRIFT_QUANTILE of them times FORGE_DRIFT_MARGIN.
 * block is FORGE_DRIFT_BLOCK, or n / 4 when that is smaller (at least
 * FORGE_DRIFT_MIN_BLOCK: fewer rows calibrate nothing). -ENOMEM or 0.
 */
int forge_drift_calibrate(const struct model *m, const int16_t *q, size_t n, struct forge_drift_calibration *cal);

#define FORGE_IFOREST_TREES 32
#define FORGE_IFOREST_SAMPLE 256

/*
 * An isolation forest of tree_count trees over rows q[n][feature_count], each grown
 * on sample (or n, if fewer) rows drawn without replacement to depth ceil(log2
 * sample): at each node a feature drawn among those not constant there and a
 * threshold drawn uniformly between their least and largest value. 0, -EINVAL (n < 2
 * or bad counts) or -ENOMEM; *out is the caller's (model_anomaly_free).
 */
int forge_iforest_build(const int16_t *q, size_t n, unsigned feature_count, unsigned tree_count, unsigned sample,
			uint64_t seed, struct model_anomaly **out);

/* The median of the anomaly scores of rows[0..count) of q (count > 0). */
double forge_anomaly_median(const struct model_anomaly *a, const int16_t *q, unsigned feature_count,
			    const size_t *rows, size_t count);

#endif
