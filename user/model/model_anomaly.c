/*
 * The anomaly forest of a model (the optional `anomaly` section, FORMAT.md): an
 * isolation forest over the quantized features. A window unlike the training windows
 * is isolated by few random splits, so its mean path length is short and its score
 * 2^(-E[h] / c(psi)) close to 1; an ordinary window scores 0.5 or below.
 */
#include <math.h>
#include <stdlib.h>

#include "model/model.h"
#include "model/model_internal.h"

#define EULER_GAMMA 0.5772156649015329

double model_anomaly_c(unsigned n)
{
	if (n <= 1)
		return 0;
	if (n == 2)
		return 1;
	return 2 * (log(n - 1.0) + EULER_GAMMA) - 2.0 * (n - 1.0) / n;
}

static int16_t tree_path(const struct model_tree *tree, const int16_t *q)
{
	const struct model_tree_node *nd = &tree->nodes[0];

	/* The loader checked every child points forward: this ends within node_count steps. */
	while (nd->feature_idx != MODEL_LEAF)
		nd = &tree->nodes[q[nd->feature_idx] <= nd->threshold ? nd->left : nd->right];
	return nd->leaf_value;
}

uint32_t model_anomaly_path_sum(const struct model_anomaly *a, const int16_t *q)
{
	uint32_t sum = 0;

	for (unsigned t = 0; t < a->tree_count; t++)
		sum += (uint32_t)tree_path(&a->trees[t], q);
	return sum;
}

double model_anomaly_score(const struct model_anomaly *a, uint32_t path_sum)
{
	double mean = (double)path_sum / MODEL_ANOMALY_PATH_UNIT / a->tree_count;

	return exp2(-mean / model_anomaly_c(a->sample_size));
}

void model_anomaly_free(struct model_anomaly *a)
{
	if (!a)
		return;
	for (unsigned t = 0; t < MODEL_ANOMALY_MAX_TREES; t++)
		free(a->trees[t].nodes);
	free(a);
}

size_t model_anomaly_section_size(const struct model *m)
{
	size_t n = ANOMALY_HEADER_SIZE;

	if (!m->anomaly)
		return 0;
	for (unsigned t = 0; t < m->anomaly->tree_count; t++)
		n += TREE_HEADER_SIZE + (size_t)m->anomaly->trees[t].node_count * NODE_SIZE;
	return n;
}

/* A leaf's path length is its depth plus c(samples there), and at most psi samples
 * reach any leaf: anything outside that range was not grown from training windows. */
static int check_paths(const struct model_anomaly *a, unsigned t, size_t tree_off, const uint8_t *depth,
		       struct reflex_err *err)
{
	const struct model_tree *tree = &a->trees[t];
	double c_max = model_anomaly_c(a->sample_size);

	for (unsigned j = 0; j < tree->node_count; j++) {
		const struct model_tree_node *nd = &tree->nodes[j];
		long lo = (long)depth[j] * MODEL_ANOMALY_PATH_UNIT;
		long hi = (long)ceil((depth[j] + c_max) * MODEL_ANOMALY_PATH_UNIT);

		if (nd->feature_idx == MODEL_LEAF && (nd->leaf_value < lo || nd->leaf_value > hi))
			return model_fail(err, (long)(tree_off + TREE_HEADER_SIZE + (size_t)j * NODE_SIZE + 8),
					  "anomaly tree %u node %u: path length %d/%d outside %ld..%ld/%d (depth %u + c(0..%u))",
					  t, j, nd->leaf_value, MODEL_ANOMALY_PATH_UNIT, lo, hi, MODEL_ANOMALY_PATH_UNIT,
					  depth[j], a->sample_size);
	}
	return 0;
}

int model_anomaly_check(const struct model *m, size_t off, struct reflex_err *err)
{
	const struct model_anomaly *a = m->anomaly;
	uint8_t depth[MODEL_MAX_TREE_NODES];
	int rc;

	if (!a)
		return 0;
	if (a->tree_count < 1 || a->tree_count > MODEL_ANOMALY_MAX_TREES)
		return model_fail(err, (long)off + 2, "anomaly: tree_count %u outside 1..%d", a->tree_count,
				  MODEL_ANOMALY_MAX_TREES);
	if (a->max_depth < 1 || a->max_depth > MODEL_MAX_DEPTH_LIMIT)
		return model_fail(err, (long)off + 3, "anomaly: max_depth %u outside 1..%d", a->max_depth,
				  MODEL_MAX_DEPTH_LIMIT);
	if (a->sample_size < MODEL_ANOMALY_MIN_SAMPLE || a->sample_size > MODEL_ANOMALY_MAX_SAMPLE)
		return model_fail(err, (long)off + 4, "anomaly: sample_size %u outside %d..%d", a->sample_size,
				  MODEL_ANOMALY_MIN_SAMPLE, MODEL_ANOMALY_MAX_SAMPLE);
	off += ANOMALY_HEADER_SIZE;
	for (unsigned t = 0; t < a->tree_count; t++) {
		rc = model_check_tree_shape(&a->trees[t], "anomaly tree", t, a->max_depth, m->feature_count, off,
					    depth, err);
		if (!rc)
			rc = check_paths(a, t, off, depth, err);
		if (rc)
			return rc;
		off += TREE_HEADER_SIZE + (size_t)a->trees[t].node_count * NODE_SIZE;
	}
	return 0;
}
