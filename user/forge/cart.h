/*
 * CART regression trees (Breiman et al.): each split is the (feature, threshold)
 * that most reduces the sum of squared errors of the target, leaves predict the
 * mean target of their samples.
 *
 * Deterministic: features are tried in index order, thresholds in increasing
 * order, samples sorted by (value, row index); a candidate replaces the best only
 * if it is strictly better, so ties go to the lowest feature, then the lowest
 * threshold. The same data in the same row order gives the same tree, bit for bit.
 */
#ifndef REFLEX_CART_H
#define REFLEX_CART_H

#include <stddef.h>
#include <stdint.h>

#define CART_MAX_DEPTH 16
#define CART_LEAF (-1)

struct cart_params {
	unsigned max_depth;      /* root is depth 0; at most 2^max_depth leaves; <= CART_MAX_DEPTH */
	size_t min_samples_leaf; /* every leaf keeps at least this many samples; >= 1 */
};

/* The training data: x is row-major [rows][feature_count]; only `rows` (indexes
 * into x and y, in this order) are used, so a holdout needs no copy. */
struct cart_data {
	const double *x;
	const double *y;
	size_t feature_count;
	const size_t *rows;
	size_t row_count;
};

struct cart_node {
	int feature;       /* CART_LEAF for a leaf */
	double threshold;  /* go left when x[feature] <= threshold: the midpoint of two training values */
	uint32_t left;     /* children come after their parent (pre-order) */
	uint32_t right;
	double value;      /* mean target of the node's training samples */
	size_t samples;
	double sse;        /* sum of squared errors around value */
	unsigned depth;
};

struct cart_tree {
	struct cart_node *nodes; /* nodes[0] is the root */
	size_t node_count;
	unsigned depth;          /* of the deepest leaf */
	size_t feature_count;
};

/* 0, -EINVAL (bad params, no rows, a non-finite value), or -ENOMEM. */
int cart_fit(const struct cart_data *data, const struct cart_params *params, struct cart_tree *out);
/* The leaf's value for one row of feature_count values. */
double cart_predict(const struct cart_tree *tree, const double *x);
/* Index of the leaf a row lands in. */
size_t cart_leaf(const struct cart_tree *tree, const double *x);
void cart_free(struct cart_tree *tree);

#endif /* REFLEX_CART_H */
