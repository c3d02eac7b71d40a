/*
 * The forge's `train` step, on any CSV with a header: one CART regression tree per
 * target, fitted on quantized features so every threshold is exact in int16, leaves
 * quantized to each output's scale, validated through the loader and the integer
 * inference reflexd runs, and written as a `.reflex` file.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/prng.h"
#include "forge/cart.h"
#include "forge/forge.h"
#include "model/model.h"
#include "model/model_fast.h"

#define NO_COLUMN ((size_t)-1)

/* Outputs reflex acts on: their legal ranges, whatever the training data says. */
static const struct knob {
	const char *name;
	double min, max;
} knobs[] = {
	{ "flush_threshold", 1, 64 },
	{ "max_batch_delay_us", 50, 4000 },
	{ "cwnd_bdp_multiple", 0, 4 }, /* 0 = no cap, else 0.5..4 */
};

/* A `J@OUT=V;OUT=V` column: the J of one candidate choice of every target. */
struct candidate {
	size_t col;
	double value[FORGE_MAX_TARGETS];
};

struct train_data {
	const struct csv_table *t;
	size_t n, nf, nt, nc;
	size_t fcol[MODEL_MAX_FEATURES];
	size_t tcol[FORGE_MAX_TARGETS];
	size_t jcol;
	struct candidate *cand;
	double *x;      /* [n][nf] raw */
	double *q;      /* [n][nf] quantized, as the runtime computes it */
	double *y;      /* [n][nt] */
	double *jbest;  /* [n] the oracle's J: the J column, else the least candidate J */
	double *jc;     /* [n][nc] */
	size_t *train_rows, n_train;
	size_t *eval_rows, n_eval;   /* the training rows again when nothing is held out */
	bool validated;
};

/* What one target became. */
struct target_fit {
	double *distinct; /* sorted values of the target in the training rows */
	size_t n_distinct;
	bool discrete;
	double min, max, scale;
	struct cart_tree tree;
	int32_t *leaf_q;       /* per tree node: its int16 value if every leaf under it has it */
	struct model_tree_node *nodes; /* the file's tree: cart's, without splits that change nothing */
	uint16_t node_count;
	size_t leaves;
	unsigned depth;
	double quant_max_error;
};

#define NOT_CONSTANT INT32_MIN

static int fail(struct reflex_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct reflex_err *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reflex_err_vset(err, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int header_error(const struct csv_table *t, size_t col, struct reflex_err *err, const char *what)
{
	reflex_err_set_file(err, t->source, "%s", what);
	reflex_err_at_line(err, 1, (long)col + 1);
	reflex_err_at_field(err, "column '%.40s'", t->header[col]);
	return -EINVAL;
}

/* --- columns ----------------------------------------------------------------- */

static bool is_j_column(const char *name)
{
	return !strcmp(name, "J") || !strncmp(name, "J@", 2);
}

static int target_index(const struct forge_train_opts *o, const char *name, size_t len)
{
	for (size_t i = 0; i < o->target_count; i++)
		if (strlen(o->targets[i]) == len && !strncmp(o->targets[i], name, len))
			return (int)i;
	return -1;
}

/* "J@a=1;b=2" with a key for every target, each once; false for anything else. */
static bool parse_candidate(const char *name, const struct forge_train_opts *o, struct candidate *c)
{
	bool seen[FORGE_MAX_TARGETS] = { false };
	const char *s = name + 2;
	size_t found = 0;

	if (strncmp(name, "J@", 2))
		return false;
	while (*s) {
		const char *eq = strchr(s, '='), *end;
		char num[64];
		char *stop;
		int ti;

		if (!eq)
			return false;
		ti = target_index(o, s, (size_t)(eq - s));
		if (ti < 0 || seen[ti])
			return false;
		end = strchr(eq + 1, ';');
		if (!end)
			end = eq + 1 + strlen(eq + 1);
		if ((size_t)(end - eq - 1) >= sizeof(num) || end == eq + 1)
			return false;
		memcpy(num, eq + 1, (size_t)(end - eq - 1));
		num[end - eq - 1] = '\0';
		c->value[ti] = strtod(num, &stop);
		if (*stop || !isfinite(c->value[ti]))
			return false;
		seen[ti] = true;
		found++;
		s = *end ? end + 1 : end;
	}
	return found == o->target_count;
}

static int resolve_targets(struct train_data *d, const struct forge_train_opts *o, struct reflex_err *err)
{
	if (!o->target_count || o->target_count > FORGE_MAX_TARGETS)
		return fail(err, "%s: need 1..%d targets", d->t->source, FORGE_MAX_TARGETS);
	for (size_t i = 0; i < o->target_count; i++) {
		if (csv_require_column(d->t, o->targets[i], &d->tcol[i], err))
			return -EINVAL;
		for (size_t k = 0; k < i; k++)
			if (d->tcol[k] == d->tcol[i])
				return fail(err, "target '%s' given twice", o->targets[i]);
		if (is_j_column(o->targets[i]))
			return header_error(d->t, d->tcol[i], err, "J columns are outcomes, not targets");
	}
	d->nt = o->target_count;
	return 0;
}

static bool is_target_col(const struct train_data *d, size_t col)
{
	for (size_t i = 0; i < d->nt; i++)
		if (d->tcol[i] == col)
			return true;
	return false;
}

static int add_feature(struct train_data *d, size_t col, struct reflex_err *err)
{
	if (d->nf == MODEL_MAX_FEATURES)
		return header_error(d->t, col, err, "more than 64 feature columns: choose them with --features");
	d->fcol[d->nf++] = col;
	return 0;
}

static int resolve_features(struct train_data *d, const struct forge_train_opts *o, struct reflex_err *err)
{
	int ret = 0;

	if (o->features) {
		for (size_t i = 0; i < o->feature_count && !ret; i++) {
			size_t col;

			if (csv_require_column(d->t, o->features[i], &col, err))
				return -EINVAL;
			if (is_target_col(d, col))
				return header_error(d->t, col, err, "is a target, it cannot be a feature too");
			for (size_t k = 0; k < d->nf; k++)
				if (d->fcol[k] == col)
					return header_error(d->t, col, err, "given twice in --features");
			ret = add_feature(d, col, err);
		}
		return ret;
	}
	for (size_t col = 0; col < d->t->col_count && !ret; col++)
		if (!is_target_col(d, col) && !is_j_column(d->t->header[col]))
			ret = add_feature(d, col, err);
	if (!ret && !d->nf)
		return fail(err, "%s: no feature columns besides the targets", d->t->source);
	return ret;
}

static int resolve_j(struct train_data *d, const struct forge_train_opts *o)
{
	int j = csv_column(d->t, "J");

	d->jcol = j >= 0 ? (size_t)j : NO_COLUMN;
	d->cand = calloc(d->t->col_count, sizeof(*d->cand));
	if (!d->cand)
		return -ENOMEM;
	for (size_t col = 0; col < d->t->col_count; col++) {
		if (parse_candidate(d->t->header[col], o, &d->cand[d->nc])) {
			d->cand[d->nc].col = col;
			d->nc++;
		}
	}
	return 0;
}

/* --- values -------------------------------------------------------------------- */

static int read_values(struct train_data *d, struct reflex_err *err)
{
	size_t n = d->t->row_count;
	int ret = 0;

	d->n = n;
	d->x = calloc(n * d->nf, sizeof(double));
	d->q = calloc(n * d->nf, sizeof(double));
	d->y = calloc(n * d->nt, sizeof(double));
	d->jbest = calloc(n, sizeof(double));
	d->jc = calloc(n * (d->nc ? d->nc : 1), sizeof(double));
	if (!d->x || !d->q || !d->y || !d->jbest || !d->jc)
		return -ENOMEM;
	for (size_t r = 0; r < n && !ret; r++) {
		for (size_t f = 0; f < d->nf && !ret; f++)
			ret = csv_get_double(d->t, r, d->fcol[f], &d->x[r * d->nf + f], err);
		for (size_t i = 0; i < d->nt && !ret; i++)
			ret = csv_get_double(d->t, r, d->tcol[i], &d->y[r * d->nt + i], err);
		for (size_t c = 0; c < d->nc && !ret; c++) {
			double *v = &d->jc[r * d->nc + c];

			ret = csv_get_double(d->t, r, d->cand[c].col, v, err);
			if (!ret && (!c || *v < d->jbest[r]))
				d->jbest[r] = *v;
		}
		if (!ret && d->jcol != NO_COLUMN)
			ret = csv_get_double(d->t, r, d->jcol, &d->jbest[r], err);
	}
	return ret;
}

/* --- split ------------------------------------------------------------------------ */

static int split_rows(struct train_data *d, const struct forge_train_opts *o, struct reflex_err *err)
{
	size_t block = o->split_block ? o->split_block : 1;
	size_t blocks = (d->n + block - 1) / block, want = 0, got = 0;
	size_t *order = NULL;
	bool *held = NULL;
	struct prng rng;

	if (!(o->holdout >= 0 && o->holdout < 1))
		return fail(err, "holdout %g is outside [0, 1)", o->holdout);
	if (o->holdout > 0) {
		want = (size_t)llround(o->holdout * (double)d->n);
		if (!want)
			want = 1;
	}
	order = malloc(blocks * sizeof(*order));
	held = calloc(d->n, sizeof(*held));
	d->train_rows = malloc(d->n * sizeof(size_t));
	d->eval_rows = malloc(d->n * sizeof(size_t));
	if (!order || !held || !d->train_rows || !d->eval_rows) {
		free(order);
		free(held);
		return -ENOMEM;
	}
	for (size_t b = 0; b < blocks; b++)
		order[b] = b;
	prng_seed(&rng, o->seed);
	for (size_t b = blocks; b > 1; b--) {
		size_t k = (size_t)prng_below(&rng, b), tmp = order[b - 1];

		order[b - 1] = order[k];
		order[k] = tmp;
	}
	for (size_t b = 0; b < blocks && got < want; b++)
		for (size_t r = order[b] * block; r < d->n && r < (order[b] + 1) * block; r++, got++)
			held[r] = true;
	for (size_t r = 0; r < d->n; r++) {
		if (held[r])
			d->eval_rows[d->n_eval++] = r;
		else
			d->train_rows[d->n_train++] = r;
	}
	free(order);
	free(held);
	if (!d->n_train)
		return fail(err, "%s: %zu rows leave no training rows with holdout %g in blocks of %zu rows",
			    d->t->source, d->n, o->holdout, block);
	d->validated = d->n_eval > 0;
	if (!d->n_eval) {
		/* holdout 0: the figures describe the fit itself */
		memcpy(d->eval_rows, d->train_rows, d->n_train * sizeof(size_t));
		d->n_eval = d->n_train;
	}
	return 0;
}

/* --- fitting ---------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int find_distinct(const struct train_data *d, size_t ti, struct target_fit *fit)
{
	double *v = malloc(d->n_train * sizeof(*v));
	size_t n = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_train; i++)
		v[i] = d->y[d->train_rows[i] * d->nt + ti];
	qsort(v, d->n_train, sizeof(*v), cmp_double);
	for (size_t i = 0; i < d->n_train; i++)
		if (!n || v[i] != v[n - 1])
			v[n++] = v[i];
	fit->distinct = v;
	fit->n_distinct = n;
	fit->discrete = n <= FORGE_DISCRETE_MAX;
	return 0;
}

/* Nearest of the sorted values; ties go to the lower one. */
static double snap(const double *values, size_t n, double x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (values[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == n)
		return values[n - 1];
	if (lo == 0)
		return values[0];
	return x - values[lo - 1] <= values[lo] - x ? values[lo - 1] : values[lo];
}

/* The smallest power of two that fits the largest bound into int16. */
static double output_scale(double min, double max)
{
	double m = fmax(fabs(min), fabs(max)), s;

	if (m == 0)
		return 1;
	s = ldexp(1.0, (int)ceil(log2(m / MODEL_Q_MAX)));
	while (m / s > MODEL_Q_MAX)
		s *= 2;
	while (m / (s / 2) <= MODEL_Q_MAX)
		s /= 2;
	return s;
}

static void output_bounds(const struct train_data *d, size_t ti, const char *name, struct target_fit *fit)
{
	for (size_t k = 0; k < sizeof(knobs) / sizeof(knobs[0]); k++) {
		if (!strcmp(knobs[k].name, name)) {
			fit->min = knobs[k].min;
			fit->max = knobs[k].max;
			fit->scale = output_scale(fit->min, fit->max);
			return;
		}
	}
	fit->min = fit->max = d->y[ti];
	for (size_t r = 0; r < d->n; r++) {
		double v = d->y[r * d->nt + ti];

		fit->min = fmin(fit->min, v);
		fit->max = fmax(fit->max, v);
	}
	fit->scale = output_scale(fit->min, fit->max);
}

/* The int16 leaf a trained leaf becomes: snapped (discrete), clamped, quantized. */
static int16_t leaf_q(const struct target_fit *fit, const struct model_output *o, double value, double *error)
{
	double v = fit->discrete ? snap(fit->distinct, fit->n_distinct, value) : value;
	long long q;

	v = fmin(fmax(v, fit->min), fit->max);
	q = llround(v / fit->scale);
	if (q < o->qmin)
		q = o->qmin;
	if (q > o->qmax)
		q = o->qmax;
	*error = fabs((double)q * fit->scale - v);
	return (int16_t)q;
}

/* Fills leaf_q bottom-up; a subtree whose leaves all quantize alike collapses to one leaf. */
static int32_t collapse(struct target_fit *fit, const struct model_output *o, size_t idx)
{
	const struct cart_node *cn = &fit->tree.nodes[idx];
	int32_t left, right;
	double error;

	if (cn->feature == CART_LEAF) {
		fit->leaf_q[idx] = leaf_q(fit, o, cn->value, &error);
		fit->quant_max_error = fmax(fit->quant_max_error, error);
		return fit->leaf_q[idx];
	}
	left = collapse(fit, o, cn->left);
	right = collapse(fit, o, cn->right);
	fit->leaf_q[idx] = left != NOT_CONSTANT && left == right ? left : NOT_CONSTANT;
	return fit->leaf_q[idx];
}

/* Appends the subtree at cart node idx in pre-order, so children follow parents. */
static void emit_node(struct target_fit *fit, size_t idx, unsigned depth)
{
	const struct cart_node *cn = &fit->tree.nodes[idx];
	struct model_tree_node *mn = &fit->nodes[fit->node_count++];

	if (depth > fit->depth)
		fit->depth = depth;
	if (fit->leaf_q[idx] != NOT_CONSTANT) {
		mn->feature_idx = MODEL_LEAF;
		mn->leaf_value = (int16_t)fit->leaf_q[idx];
		fit->leaves++;
		return;
	}
	/* The features are integers, so q <= floor(t) splits them exactly as q <= t. */
	mn->feature_idx = (uint16_t)cn->feature;
	mn->threshold = (int16_t)floor(cn->threshold);
	mn->left = fit->node_count;
	emit_node(fit, cn->left, depth + 1);
	mn->right = fit->node_count;
	emit_node(fit, cn->right, depth + 1);
}

static int convert_tree(struct target_fit *fit, const struct model_output *o)
{
	fit->leaf_q = calloc(fit->tree.node_count, sizeof(*fit->leaf_q));
	fit->nodes = calloc(fit->tree.node_count, sizeof(*fit->nodes));
	if (!fit->leaf_q || !fit->nodes)
		return -ENOMEM;
	collapse(fit, o, 0);
	emit_node(fit, 0, 0);
	return 0;
}

static int copy_model_error(const struct reflex_err *me, struct reflex_err *err)
{
	reflex_err_copy(err, me);
	return -EINVAL;
}

static int setup_features(struct train_data *d, struct model *m, struct reflex_err *err)
{
	struct reflex_err me = { 0 };

	for (size_t f = 0; f < d->nf; f++) {
		double lo = d->x[f], hi = d->x[f];

		for (size_t r = 1; r < d->n; r++) {
			lo = fmin(lo, d->x[r * d->nf + f]);
			hi = fmax(hi, d->x[r * d->nf + f]);
		}
		/* A constant feature quantizes to 0 everywhere; any wider range will do. */
		if (!(hi > lo))
			hi = lo + 1;
		if (model_set_feature(m, (unsigned)f, d->t->header[d->fcol[f]], lo, hi, &me))
			return header_error(d->t, d->fcol[f], err, me.what);
	}
	for (size_t r = 0; r < d->n; r++)
		for (size_t f = 0; f < d->nf; f++)
			d->q[r * d->nf + f] = model_quantize_norm(model_feature_normalize(&m->features[f], d->x[r * d->nf + f]));
	return 0;
}

/* What reflexd checks live traffic against: the training rows' distribution (drift),
 * the PSI that the model's own windows show (the drift threshold), and an isolation
 * forest grown on the training rows (anomaly). */
static int set_health(const struct train_data *d, struct model *m, const struct forge_train_opts *o,
		      struct forge_train_report *rep, struct reflex_err *err)
{
	struct reflex_err me = { 0 };
	int16_t *q = malloc(d->n * d->nf * sizeof(*q)), *train = malloc(d->n_train * d->nf * sizeof(*train));
	int ret = -ENOMEM;

	if (!q || !train)
		goto cleanup;
	for (size_t i = 0; i < d->n * d->nf; i++)
		q[i] = (int16_t)d->q[i];
	for (size_t i = 0; i < d->n_train; i++)
		memcpy(&train[i * d->nf], &q[d->train_rows[i] * d->nf], d->nf * sizeof(*q));
	ret = model_reference_build(m, train, d->n_train, MODEL_REF_DEFAULT_BINS, &me);
	if (ret) {
		ret = ret == -ENOMEM ? ret : copy_model_error(&me, err);
		goto cleanup;
	}
	ret = forge_drift_calibrate(m, q, d->n, &rep->drift);
	if (ret)
		goto cleanup;
	m->reference->psi_threshold = rep->drift.threshold;
	if (d->n_train < 2)
		goto cleanup;
	ret = forge_iforest_build(train, d->n_train, (unsigned)d->nf, FORGE_IFOREST_TREES, FORGE_IFOREST_SAMPLE,
				  o->seed, &m->anomaly);
	if (ret)
		goto cleanup;
	rep->anomaly_train_median = forge_anomaly_median(m->anomaly, q, (unsigned)d->nf, d->train_rows, d->n_train);
	rep->anomaly_val_median = forge_anomaly_median(m->anomaly, q, (unsigned)d->nf, d->eval_rows, d->n_eval);
cleanup:
	free(q);
	free(train);
	return ret;
}

static int fit_target(struct train_data *d, size_t ti, const struct forge_train_opts *o, struct model *m,
		      struct target_fit *fit, struct reflex_err *err)
{
	struct cart_params params = { .max_depth = o->max_depth, .min_samples_leaf = o->min_samples_leaf };
	struct cart_data data = { .x = d->q, .feature_count = d->nf, .rows = d->train_rows, .row_count = d->n_train };
	const char *name = d->t->header[d->tcol[ti]];
	struct reflex_err me = { 0 };
	double *y = malloc(d->n * sizeof(*y));
	int ret;

	if (!y)
		return -ENOMEM;
	for (size_t r = 0; r < d->n; r++)
		y[r] = d->y[r * d->nt + ti];
	data.y = y;
	ret = find_distinct(d, ti, fit);
	if (!ret) {
		output_bounds(d, ti, name, fit);
		if (model_set_output(m, (unsigned)ti, name, fit->min, fit->max, fit->scale, &me))
			ret = header_error(d->t, d->tcol[ti], err, me.what);
	}
	if (!ret) {
		ret = cart_fit(&data, &params, &fit->tree);
		if (ret == -EINVAL)
			ret = fail(err, "cannot fit a tree for '%s' (max depth %u, min leaf %zu)", name, o->max_depth,
				   o->min_samples_leaf);
	}
	if (!ret)
		ret = convert_tree(fit, &m->outputs[ti]);
	if (!ret && model_set_tree(m, (unsigned)ti, fit->nodes, fit->node_count, &me))
		ret = copy_model_error(&me, err);
	free(y);
	return ret;
}

/* --- evaluation ----------------------------------------------------------------- */

static bool same_value(double a, double b)
{
	return fabs(a - b) <= 1e-9 * fmax(1.0, fmax(fabs(a), fabs(b)));
}

static long candidate_of(const struct train_data *d, const double *choice)
{
	for (size_t c = 0; c < d->nc; c++) {
		size_t i;

		for (i = 0; i < d->nt; i++)
			if (!same_value(d->cand[c].value[i], choice[i]))
				break;
		if (i == d->nt)
			return (long)c;
	}
	return -1;
}

static double majority(const struct train_data *d, size_t ti, const struct target_fit *fit)
{
	size_t best = 0, best_count = 0;

	for (size_t k = 0; k < fit->n_distinct; k++) {
		size_t count = 0;

		for (size_t i = 0; i < d->n_train; i++)
			count += d->y[d->train_rows[i] * d->nt + ti] == fit->distinct[k];
		if (count > best_count) {
			best = k;
			best_count = count;
		}
	}
	return fit->distinct[best];
}

static double train_mean(const struct train_data *d, size_t ti)
{
	double sum = 0;

	for (size_t i = 0; i < d->n_train; i++)
		sum += d->y[d->train_rows[i] * d->nt + ti];
	return sum / (double)d->n_train;
}

static void constant_baseline(const struct train_data *d, struct forge_train_report *rep, size_t *best)
{
	double best_sum = INFINITY;

	*best = 0;
	for (size_t c = 0; c < d->nc; c++) {
		double sum = 0;

		for (size_t i = 0; i < d->n_train; i++)
			sum += d->jc[d->train_rows[i] * d->nc + c];
		if (sum < best_sum) {
			best_sum = sum;
			*best = c;
		}
	}
	snprintf(rep->constant_choice, sizeof(rep->constant_choice), "%s", d->t->header[d->cand[*best].col] + 2);
}

/* Runs the loaded file on every evaluation row through reflexd's own path
 * (model_quantize, model_eval) and checks it against the trained trees. */
static int evaluate(const struct train_data *d, const struct model *m, struct target_fit *fits,
		    struct forge_train_report *rep, struct reflex_err *err)
{
	double mean[FORGE_MAX_TARGETS], major[FORGE_MAX_TARGETS];
	size_t constant = 0, hits[FORGE_MAX_TARGETS] = { 0 }, major_hits[FORGE_MAX_TARGETS] = { 0 };
	int32_t value[MODEL_MAX_OUTPUTS];

	for (size_t ti = 0; ti < d->nt; ti++) {
		mean[ti] = train_mean(d, ti);
		major[ti] = majority(d, ti, &fits[ti]);
	}
	if (d->nc)
		constant_baseline(d, rep, &constant);
	for (size_t e = 0; e < d->n_eval; e++) {
		size_t r = d->eval_rows[e];
		double choice[FORGE_MAX_TARGETS];
		long c;

		model_decide(m, &d->x[r * d->nf], NULL, value);
		for (size_t ti = 0; ti < d->nt; ti++) {
			struct forge_output_report *o = &rep->out[ti];
			const struct target_fit *fit = &fits[ti];
			size_t leaf = cart_leaf(&fit->tree, &d->q[r * d->nf]);
			double pred = model_value_raw(m, (unsigned)ti, value[ti]), truth = d->y[r * d->nt + ti];

			if (value[ti] != fit->leaf_q[leaf])
				return fail(err, "internal error: the written model disagrees with the trained tree of '%s' on line %zu",
					    o->name, d->t->row_line[r]);
			o->val_mse += (pred - truth) * (pred - truth);
			o->val_mse_mean += (mean[ti] - truth) * (mean[ti] - truth);
			choice[ti] = fit->discrete ? snap(fit->distinct, fit->n_distinct, pred) : pred;
			hits[ti] += choice[ti] == truth;
			major_hits[ti] += major[ti] == truth;
		}
		c = d->nc ? candidate_of(d, choice) : -1;
		if (c >= 0) {
			rep->regret_mean += d->jc[r * d->nc + (size_t)c] - d->jbest[r];
			rep->regret_constant += d->jc[r * d->nc + constant] - d->jbest[r];
			rep->regret_rows++;
		}
	}
	for (size_t ti = 0; ti < d->nt; ti++) {
		rep->out[ti].val_mse /= (double)d->n_eval;
		rep->out[ti].val_mse_mean /= (double)d->n_eval;
		rep->out[ti].val_accuracy = (double)hits[ti] / (double)d->n_eval;
		rep->out[ti].val_accuracy_majority = (double)major_hits[ti] / (double)d->n_eval;
	}
	rep->have_regret = rep->regret_rows > 0;
	if (rep->have_regret) {
		rep->regret_mean /= (double)rep->regret_rows;
		rep->regret_constant /= (double)rep->regret_rows;
	}
	return 0;
}

/* --- metadata ------------------------------------------------------------------- */

static int meta(struct model *m, const char *key, const char *value, struct reflex_err *err)
{
	struct reflex_err me = { 0 };

	if (model_meta_set(m, key, value, &me))
		return copy_model_error(&me, err);
	return 0;
}

static int meta_num(struct model *m, const char *prefix, const char *name, double v, struct reflex_err *err)
{
	char key[96], text[32];

	snprintf(key, sizeof(key), "%s%s", prefix, name);
	/* Metadata keys are [A-Za-z0-9_]; output names may also hold '.' and '-'. */
	for (char *k = key; *k; k++)
		if (*k == '.' || *k == '-')
			*k = '_';
	snprintf(text, sizeof(text), "%.6g", v);
	return meta(m, key, text, err);
}

static bool reflex_features_only(const struct model *m)
{
	for (unsigned f = 0; f < m->feature_count; f++)
		if (feature_index(m->features[f].name) < 0)
			return false;
	return true;
}

static int write_metadata(struct model *m, const struct forge_train_opts *o, const struct forge_train_report *rep,
			  struct reflex_err *err)
{
	const char *fig = rep->validated ? "val_" : "fit_";
	char text[64];
	int ret;

	ret = meta(m, "created_at", o->created_at, err);
	if (!ret)
		ret = meta(m, "telemetry_hash", o->telemetry_hash, err);
	if (!ret)
		ret = meta(m, "trainer_commit", forge_trainer_commit(), err);
	snprintf(text, sizeof(text), "%d", FEATURE_SCHEMA_VERSION);
	if (!ret)
		ret = meta(m, "feature_schema", reflex_features_only(m) ? text : "custom", err);
	for (size_t i = 0; i < o->meta_count && !ret; i++)
		ret = meta(m, o->meta_keys[i], o->meta_values[i], err);
	if (!ret)
		ret = meta_num(m, "", "max_depth", o->max_depth, err);
	if (!ret)
		ret = meta_num(m, "", "min_samples_leaf", (double)o->min_samples_leaf, err);
	if (!ret)
		ret = meta_num(m, "", "holdout", o->holdout, err);
	if (!ret)
		ret = meta_num(m, "", "seed", (double)o->seed, err);
	if (!ret)
		ret = meta_num(m, "", "split_block", (double)(o->split_block ? o->split_block : 1), err);
	if (!ret)
		ret = meta_num(m, "", "training_rows", (double)rep->train_rows, err);
	if (!ret)
		ret = meta_num(m, "", "validation_rows", (double)rep->val_rows, err);
	for (size_t i = 0; i < rep->output_count && !ret; i++) {
		const struct forge_output_report *out = &rep->out[i];
		char prefix[16];

		snprintf(prefix, sizeof(prefix), "%smse_", fig);
		ret = meta_num(m, prefix, out->name, out->val_mse, err);
		if (!ret && out->discrete) {
			snprintf(prefix, sizeof(prefix), "%saccuracy_", fig);
			ret = meta_num(m, prefix, out->name, out->val_accuracy, err);
		}
		if (!ret)
			ret = meta_num(m, "quant_max_error_", out->name, out->quant_max_error, err);
	}
	if (!ret && rep->drift.threshold > 0) {
		ret = meta_num(m, "", "drift_psi_block_windows", (double)rep->drift.block, err);
		if (!ret)
			ret = meta_num(m, "", "drift_psi_p50", rep->drift.p50, err);
		if (!ret)
			ret = meta_num(m, "", "drift_psi_p99", rep->drift.p99, err);
	}
	if (!ret && m->anomaly) {
		ret = meta_num(m, "", "anomaly_train_median", rep->anomaly_train_median, err);
		if (!ret)
			ret = meta_num(m, fig, "anomaly_median", rep->anomaly_val_median, err);
	}
	if (!ret && rep->have_regret) {
		ret = meta_num(m, fig, "j_regret_mean", rep->regret_mean, err);
		if (!ret)
			ret = meta_num(m, fig, "j_regret_constant", rep->regret_constant, err);
	}
	return ret;
}

/* --- driver ------------------------------------------------------------------------ */

static void fill_report(const struct train_data *d, const struct model *m, const struct target_fit *fits,
			struct forge_train_report *rep)
{
	rep->rows = d->n;
	rep->train_rows = d->n_train;
	rep->val_rows = d->validated ? d->n_eval : 0;
	rep->validated = d->validated;
	rep->feature_count = d->nf;
	for (size_t f = 0; f < d->nf && f < 64; f++)
		snprintf(rep->feature_names[f], sizeof(rep->feature_names[f]), "%s", m->features[f].name);
	rep->output_count = d->nt;
	for (size_t ti = 0; ti < d->nt; ti++) {
		struct forge_output_report *o = &rep->out[ti];
		const struct target_fit *fit = &fits[ti];

		snprintf(o->name, sizeof(o->name), "%s", m->outputs[ti].name);
		o->discrete = fit->discrete;
		o->distinct = fit->n_distinct;
		o->min = fit->min;
		o->max = fit->max;
		o->scale = fit->scale;
		o->nodes = fit->node_count;
		o->depth = fit->depth;
		o->leaves = fit->leaves;
		o->quant_max_error = fit->quant_max_error;
	}
}

static void free_data(struct train_data *d)
{
	free(d->cand);
	free(d->x);
	free(d->q);
	free(d->y);
	free(d->jbest);
	free(d->jc);
	free(d->train_rows);
	free(d->eval_rows);
}

int forge_train(const struct csv_table *t, const struct forge_train_opts *o, const char *out_path,
		struct forge_train_report *rep, struct reflex_err *err)
{
	struct train_data d = { .t = t };
	struct target_fit fits[FORGE_MAX_TARGETS];
	struct model *m = NULL, *loaded = NULL;
	struct reflex_err me = { 0 };
	uint8_t *image = NULL;
	size_t image_len = 0;
	int ret;

	memset(rep, 0, sizeof(*rep));
	memset(fits, 0, sizeof(fits));
	if (o->max_depth > MODEL_MAX_DEPTH_LIMIT || !o->min_samples_leaf) {
		ret = fail(err, "max depth must be 0..%d and min samples per leaf >= 1", MODEL_MAX_DEPTH_LIMIT);
		goto cleanup;
	}
	ret = resolve_targets(&d, o, err);
	if (!ret)
		ret = resolve_features(&d, o, err);
	if (!ret)
		ret = resolve_j(&d, o);
	if (!ret)
		ret = read_values(&d, err);
	if (!ret)
		ret = split_rows(&d, o, err);
	if (ret)
		goto cleanup;
	m = model_create(MODEL_KIND_TREES, (uint16_t)d.nf, (uint16_t)d.nt);
	if (!m) {
		ret = -ENOMEM;
		goto cleanup;
	}
	m->max_depth = (uint8_t)(o->max_depth ? o->max_depth : 1);
	ret = setup_features(&d, m, err);
	if (!ret)
		ret = set_health(&d, m, o, rep, err);
	for (size_t ti = 0; ti < d.nt && !ret; ti++)
		ret = fit_target(&d, ti, o, m, &fits[ti], err);
	if (ret)
		goto cleanup;

	/* Figures come from the file as reflexd will load it, not from the trainer's memory. */
	if (model_serialize(m, &image, &image_len, &me) || model_load_buffer(image, image_len, 0, &loaded, &me)) {
		ret = copy_model_error(&me, err);
		goto cleanup;
	}
	fill_report(&d, m, fits, rep);
	ret = evaluate(&d, loaded, fits, rep, err);
	if (!ret)
		ret = write_metadata(m, o, rep, err);
	if (!ret && model_write_file(m, out_path, &me))
		ret = fail(err, "%s: %s", out_path, me.msg);
cleanup:
	if (ret == -ENOMEM)
		fail(err, "out of memory");
	for (size_t ti = 0; ti < FORGE_MAX_TARGETS; ti++) {
		free(fits[ti].distinct);
		free(fits[ti].leaf_q);
		free(fits[ti].nodes);
		cart_free(&fits[ti].tree);
	}
	free(image);
	model_free(loaded);
	model_free(m);
	free_data(&d);
	return ret ? (ret == -ENOMEM ? ret : -EINVAL) : 0;
}

void forge_train_report_print(FILE *out, const struct forge_train_report *r)
{
	const char *on = r->validated ? "validation" : "training rows (holdout 0, no validation)";

	fprintf(out, "rows: %zu (%zu training, %zu validation)\n", r->rows, r->train_rows, r->val_rows);
	fprintf(out, "features (%zu):", r->feature_count);
	for (size_t f = 0; f < r->feature_count && f < 64; f++)
		fprintf(out, "%s %s", f ? "," : "", r->feature_names[f]);
	fputc('\n', out);
	for (size_t i = 0; i < r->output_count; i++) {
		const struct forge_output_report *o = &r->out[i];

		fprintf(out, "output %s: %s, bounds [%g, %g], scale %g, tree of %zu nodes (%zu leaves, depth %u)\n",
			o->name, o->discrete ? "discrete" : "continuous", o->min, o->max, o->scale, o->nodes, o->leaves,
			o->depth);
		fprintf(out, "  %s MSE %.6g (predicting the training mean: %.6g)\n", on, o->val_mse, o->val_mse_mean);
		if (o->discrete)
			fprintf(out, "  %s accuracy %.1f%% of %zu values (always the most common: %.1f%%)\n", on,
				100 * o->val_accuracy, o->distinct, 100 * o->val_accuracy_majority);
		fprintf(out, "  largest int16 rounding of a leaf: %.6g (scale/2 = %g)\n", o->quant_max_error, o->scale / 2);
	}
	if (r->have_regret)
		fprintf(out, "J regret on %s, mean J(model's choice) - J(oracle's): %.6g over %zu rows "
			"(best constant choice %s: %.6g)\n", on, r->regret_mean, r->regret_rows, r->constant_choice,
			r->regret_constant);
	else
		fprintf(out, "J regret: n/a (needs J@TARGET=VALUE;... candidate columns for every target)\n");
	if (r->drift.threshold > 0)
		fprintf(out, "drift: PSI of %zu blocks of %zu consecutive windows: median %.3f, p99 %.3f, max %.3f; "
			"threshold %.3f (p99 x %.1f)\n", r->drift.blocks, r->drift.block, r->drift.p50, r->drift.p99,
			r->drift.max, r->drift.threshold, FORGE_DRIFT_MARGIN);
	else
		fprintf(out, "drift: too few windows to calibrate a threshold\n");
	fprintf(out, "anomaly: median score %.3f on the training rows, %.3f on %s\n", r->anomaly_train_median,
		r->anomaly_val_median, on);
}
