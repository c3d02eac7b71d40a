/* The forge's model-health parts (forge_health.h): drift calibration, isolation forest. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "forge/forge_health.h"
#include "lib/prng.h"
#include "reflexd/drift.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The q-quantile of n sorted values, by the nearest-rank rule. */
static double quantile(const double *sorted, size_t n, double q)
{
	size_t rank = (size_t)ceil(q * (double)n);

	return sorted[rank ? rank - 1 : 0];
}

/* reflexd's total: the mean over features of each feature's PSI against the reference. */
static double block_psi(const struct model *m, const int16_t *q, size_t first, size_t block)
{
	const struct model_reference *r = m->reference;
	uint32_t live[MODEL_REF_MAX_BINS];
	double total = 0;

	for (unsigned f = 0; f < m->feature_count; f++) {
		memset(live, 0, sizeof(live));
		for (size_t i = first; i < first + block; i++)
			live[model_reference_bin(r, f, q[i * m->feature_count + f])]++;
		total += drift_psi(r->counts[f], r->sample_count, live, (uint32_t)block, r->bin_count);
	}
	return total / m->feature_count;
}

int forge_drift_calibrate(const struct model *m, const int16_t *q, size_t n, struct forge_drift_calibration *cal)
{
	size_t block = n / 4 < FORGE_DRIFT_BLOCK ? n / 4 : FORGE_DRIFT_BLOCK, stride, count;
	double *psi;

	memset(cal, 0, sizeof(*cal));
	if (!m->reference || block < FORGE_DRIFT_MIN_BLOCK)
		return 0;
	stride = block / 4;
	count = (n - block) / stride + 1;
	psi = malloc(count * sizeof(*psi));
	if (!psi)
		return -ENOMEM;
	for (size_t k = 0; k < count; k++)
		psi[k] = block_psi(m, q, k * stride, block);
	qsort(psi, count, sizeof(*psi), cmp_double);
	cal->block = block;
	cal->blocks = count;
	cal->p50 = quantile(psi, count, 0.5);
	cal->p99 = quantile(psi, count, FORGE_DRIFT_QUANTILE);
	cal->max = psi[count - 1];
	cal->threshold = fmin(cal->p99 * FORGE_DRIFT_MARGIN, MODEL_REF_MAX_PSI);
	free(psi);
	return 0;
}

/* --- isolation forest ---------------------------------------------------------------- */

struct grow {
	const int16_t *q;
	unsigned nf;
	unsigned max_depth;
	struct prng *rng;
	struct model_tree_node *nodes;
	uint16_t count;
};

static int16_t leaf_path(unsigned depth, size_t size)
{
	return (int16_t)lround((depth + model_anomaly_c((unsigned)size)) * MODEL_ANOMALY_PATH_UNIT);
}

/* Grows the subtree of rows[0..size) at depth in pre-order; returns its root's index. */
static uint16_t grow(struct grow *g, size_t *rows, size_t size, unsigned depth)
{
	uint16_t self = g->count++;
	unsigned usable[MODEL_MAX_FEATURES], n_usable = 0, f;
	int16_t lo[MODEL_MAX_FEATURES], hi[MODEL_MAX_FEATURES], t;
	size_t left = 0;

	for (f = 0; f < g->nf && size > 1 && depth < g->max_depth; f++) {
		lo[f] = hi[f] = g->q[rows[0] * g->nf + f];
		for (size_t i = 1; i < size; i++) {
			int16_t v = g->q[rows[i] * g->nf + f];

			lo[f] = v < lo[f] ? v : lo[f];
			hi[f] = v > hi[f] ? v : hi[f];
		}
		if (hi[f] > lo[f])
			usable[n_usable++] = f;
	}
	if (!n_usable) {
		g->nodes[self] = (struct model_tree_node){ .feature_idx = MODEL_LEAF,
							   .leaf_value = leaf_path(depth, size) };
		return self;
	}
	f = usable[prng_below(g->rng, n_usable)];
	/* q <= t goes left: t in [lo, hi - 1] leaves both sides non-empty. */
	t = (int16_t)(lo[f] + (int16_t)prng_below(g->rng, (uint64_t)(hi[f] - lo[f])));
	for (size_t i = 0; i < size; i++)
		if (g->q[rows[i] * g->nf + f] <= t) {
			size_t tmp = rows[left];

			rows[left++] = rows[i];
			rows[i] = tmp;
		}
	g->nodes[self].feature_idx = (uint16_t)f;
	g->nodes[self].threshold = t;
	g->nodes[self].left = grow(g, rows, left, depth + 1);
	g->nodes[self].right = grow(g, rows + left, size - left, depth + 1);
	return self;
}

static unsigned depth_for(size_t sample)
{
	unsigned d = 1;

	while (((size_t)1 << d) < sample)
		d++;
	return d;
}

int forge_iforest_build(const int16_t *q, size_t n, unsigned feature_count, unsigned tree_count, unsigned sample,
			uint64_t seed, struct model_anomaly **out)
{
	struct model_anomaly *a;
	struct prng rng;
	size_t *pool;
	struct grow g = { .q = q, .nf = feature_count, .rng = &rng };

	if (n < 2 || !feature_count || feature_count > MODEL_MAX_FEATURES || !tree_count ||
	    tree_count > MODEL_ANOMALY_MAX_TREES || sample < MODEL_ANOMALY_MIN_SAMPLE || sample > MODEL_ANOMALY_MAX_SAMPLE)
		return -EINVAL;
	if (sample > n)
		sample = (unsigned)n;
	g.max_depth = depth_for(sample);
	if (g.max_depth > MODEL_MAX_DEPTH_LIMIT)
		g.max_depth = MODEL_MAX_DEPTH_LIMIT;
	a = calloc(1, sizeof(*a));
	pool = malloc(n * sizeof(*pool));
	if (!a || !pool)
		goto nomem;
	a->tree_count = (uint8_t)tree_count;
	a->max_depth = (uint8_t)g.max_depth;
	a->sample_size = (uint16_t)sample;
	for (size_t i = 0; i < n; i++)
		pool[i] = i;
	prng_seed(&rng, seed);
	for (unsigned t = 0; t < tree_count; t++) {
		/* The first `sample` of a partial Fisher-Yates shuffle: a draw without replacement. */
		for (size_t i = 0; i < sample; i++) {
			size_t k = i + (size_t)prng_below(&rng, n - i), tmp = pool[i];

			pool[i] = pool[k];
			pool[k] = tmp;
		}
		g.nodes = calloc(((size_t)1 << (g.max_depth + 1)) - 1, sizeof(*g.nodes));
		if (!g.nodes)
			goto nomem;
		g.count = 0;
		grow(&g, pool, sample, 0);
		a->trees[t].nodes = g.nodes;
		a->trees[t].node_count = g.count;
	}
	free(pool);
	*out = a;
	return 0;
nomem:
	free(pool);
	model_anomaly_free(a);
	return -ENOMEM;
}

double forge_anomaly_median(const struct model_anomaly *a, const int16_t *q, unsigned feature_count,
			    const size_t *rows, size_t count)
{
	double *score = malloc(count * sizeof(*score)), median;

	if (!score)
		return NAN;
	for (size_t i = 0; i < count; i++)
		score[i] = model_anomaly_score(a, model_anomaly_path_sum(a, &q[rows[i] * feature_count]));
	qsort(score, count, sizeof(*score), cmp_double);
	median = count % 2 ? score[count / 2] : (score[count / 2 - 1] + score[count / 2]) / 2;
	free(score);
	return median;
}
