#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "forge/cart.h"

struct builder {
	const struct cart_data *data;
	const struct cart_params *params;
	struct cart_node *nodes;
	size_t node_count;
	size_t node_cap;
	size_t *sorted;  /* scratch: one node's rows sorted by one feature */
	unsigned depth;
};

struct split {
	int feature;
	double threshold;
	double sse; /* left + right */
};

static double xval(const struct cart_data *d, size_t row, size_t feature)
{
	return d->x[row * d->feature_count + feature];
}

struct sort_ctx {
	const struct cart_data *data;
	size_t feature;
};

static int by_value_then_row(const void *a, const void *b, void *arg)
{
	const struct sort_ctx *ctx = arg;
	size_t ra = *(const size_t *)a, rb = *(const size_t *)b;
	double va = xval(ctx->data, ra, ctx->feature), vb = xval(ctx->data, rb, ctx->feature);

	if (va != vb)
		return va < vb ? -1 : 1;
	return (ra > rb) - (ra < rb);
}

static void node_stats(const struct cart_data *d, const size_t *rows, size_t n, double *mean, double *sse)
{
	double sum = 0, sq = 0;

	for (size_t i = 0; i < n; i++)
		sum += d->y[rows[i]];
	*mean = sum / n;
	for (size_t i = 0; i < n; i++) {
		double e = d->y[rows[i]] - *mean;

		sq += e * e;
	}
	*sse = sq;
}

/* Best threshold on one feature; targets are centred on the node mean so the
 * prefix sums stay small and SSE = sum(e^2) - sum(e)^2 / n loses little. */
static void best_on_feature(struct builder *b, const size_t *rows, size_t n, size_t feature, double mean,
			    struct split *best)
{
	const struct cart_data *d = b->data;
	struct sort_ctx ctx = { .data = d, .feature = feature };
	size_t min_leaf = b->params->min_samples_leaf;
	double total = 0, total_sq = 0, left = 0, left_sq = 0;

	memcpy(b->sorted, rows, n * sizeof(*rows));
	qsort_r(b->sorted, n, sizeof(*rows), by_value_then_row, &ctx);
	for (size_t i = 0; i < n; i++) {
		double e = d->y[b->sorted[i]] - mean;

		total += e;
		total_sq += e * e;
	}
	for (size_t i = 1; i < n; i++) {
		double e = d->y[b->sorted[i - 1]] - mean;
		double lo = xval(d, b->sorted[i - 1], feature), hi = xval(d, b->sorted[i], feature);
		double nl = (double)i, nr = (double)(n - i), sse, mid;

		left += e;
		left_sq += e * e;
		if (i < min_leaf || n - i < min_leaf || lo == hi)
			continue;
		sse = (left_sq - left * left / nl) + ((total_sq - left_sq) - (total - left) * (total - left) / nr);
		if (sse < 0)
			sse = 0;
		if (sse < best->sse) {
			mid = lo + (hi - lo) / 2;
			if (!(mid < hi))
				mid = lo;
			best->feature = (int)feature;
			best->threshold = mid;
			best->sse = sse;
		}
	}
}

static int push_node(struct builder *b, size_t *index)
{
	if (b->node_count == b->node_cap) {
		size_t cap = b->node_cap ? b->node_cap * 2 : 16;
		struct cart_node *grown = realloc(b->nodes, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		b->nodes = grown;
		b->node_cap = cap;
	}
	memset(&b->nodes[b->node_count], 0, sizeof(b->nodes[0]));
	*index = b->node_count++;
	return 0;
}

/* Stable partition of rows by the split: left part first; returns its size. */
static size_t partition(const struct cart_data *d, size_t *rows, size_t n, const struct split *s, size_t *scratch)
{
	size_t nl = 0, nr = 0;

	for (size_t i = 0; i < n; i++) {
		if (xval(d, rows[i], (size_t)s->feature) <= s->threshold)
			rows[nl++] = rows[i];
		else
			scratch[nr++] = rows[i];
	}
	memcpy(rows + nl, scratch, nr * sizeof(*rows));
	return nl;
}

static int grow(struct builder *b, size_t *rows, size_t n, unsigned depth, size_t *out_index)
{
	struct split best = { .feature = CART_LEAF };
	double mean, sse;
	size_t idx, nl, child;
	int ret;

	ret = push_node(b, &idx);
	if (ret)
		return ret;
	node_stats(b->data, rows, n, &mean, &sse);
	b->nodes[idx].feature = CART_LEAF;
	b->nodes[idx].value = mean;
	b->nodes[idx].samples = n;
	b->nodes[idx].sse = sse;
	b->nodes[idx].depth = depth;
	if (depth > b->depth)
		b->depth = depth;
	*out_index = idx;

	if (depth >= b->params->max_depth || n < 2 * b->params->min_samples_leaf || !(sse > 0))
		return 0;
	best.sse = sse;
	for (size_t f = 0; f < b->data->feature_count; f++)
		best_on_feature(b, rows, n, f, mean, &best);
	/* A split must remove a real part of the error, not rounding noise. */
	if (best.feature == CART_LEAF || !(sse - best.sse > sse * 1e-12))
		return 0;

	nl = partition(b->data, rows, n, &best, b->sorted);
	b->nodes[idx].feature = best.feature;
	b->nodes[idx].threshold = best.threshold;
	ret = grow(b, rows, nl, depth + 1, &child);
	if (ret)
		return ret;
	b->nodes[idx].left = (uint32_t)child;
	ret = grow(b, rows + nl, n - nl, depth + 1, &child);
	if (ret)
		return ret;
	b->nodes[idx].right = (uint32_t)child;
	return 0;
}

static bool data_valid(const struct cart_data *d)
{
	if (!d->row_count || !d->feature_count || !d->x || !d->y || !d->rows)
		return false;
	for (size_t i = 0; i < d->row_count; i++) {
		size_t r = d->rows[i];

		if (!isfinite(d->y[r]))
			return false;
		for (size_t f = 0; f < d->feature_count; f++)
			if (!isfinite(xval(d, r, f)))
				return false;
	}
	return true;
}

int cart_fit(const struct cart_data *data, const struct cart_params *params, struct cart_tree *out)
{
	struct builder b = { .data = data, .params = params };
	size_t *rows = NULL, root;
	int ret;

	memset(out, 0, sizeof(*out));
	if (params->max_depth > CART_MAX_DEPTH || !params->min_samples_leaf || !data_valid(data))
		return -EINVAL;
	rows = malloc(data->row_count * sizeof(*rows));
	b.sorted = malloc(data->row_count * sizeof(*b.sorted));
	if (!rows || !b.sorted) {
		ret = -ENOMEM;
		goto cleanup;
	}
	memcpy(rows, data->rows, data->row_count * sizeof(*rows));
	ret = grow(&b, rows, data->row_count, 0, &root);
	if (ret)
		goto cleanup;
	out->nodes = b.nodes;
	out->node_count = b.node_count;
	out->depth = b.depth;
	out->feature_count = data->feature_count;
	b.nodes = NULL;
cleanup:
	free(b.nodes);
	free(b.sorted);
	free(rows);
	return ret;
}

size_t cart_leaf(const struct cart_tree *tree, const double *x)
{
	size_t i = 0;

	/* Children always follow their parent, so this ends within node_count steps. */
	while (tree->nodes[i].feature != CART_LEAF)
		i = x[tree->nodes[i].feature] <= tree->nodes[i].threshold ? tree->nodes[i].left : tree->nodes[i].right;
	return i;
}

double cart_predict(const struct cart_tree *tree, const double *x)
{
	return tree->nodes[cart_leaf(tree, x)].value;
}

void cart_free(struct cart_tree *tree)
{
	free(tree->nodes);
	memset(tree, 0, sizeof(*tree));
}
