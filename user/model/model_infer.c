/*
 * Inference on a validated model: quantize the raw features once (the only floating
 * point before the result), then integer-only tree walks or an int8 MLP, outputs
 * clamped to their bounds. Every loop is bounded by the format's caps, and the
 * loader has proven every index in range, so nothing here re-checks the model.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model/model.h"
#include "model/model_internal.h"

double model_feature_normalize(const struct model_feature *f, double x)
{
	/* Written so that NaN takes the first branch: a missing measurement reads as min. */
	if (!(x > f->min))
		return 0.0;
	if (x >= f->max)
		return 1.0;
	return (x - f->min) / (f->max - f->min);
}

int16_t model_quantize_norm(double norm)
{
	if (!(norm > 0.0))
		return 0;
	if (norm >= 1.0)
		return MODEL_Q_MAX;
	return (int16_t)floor(norm * MODEL_Q_MAX + 0.5);
}

double model_threshold_raw(const struct model_feature *f, int16_t threshold)
{
	/* q <= t  <=>  norm * 32767 + 0.5 < t + 1  <=>  x < min + (t + 0.5) / 32767 * (max - min) */
	if (threshold < 0)
		return -INFINITY;
	if (threshold >= MODEL_Q_MAX)
		return INFINITY;
	return f->min + (threshold + 0.5) / MODEL_Q_MAX * (f->max - f->min);
}

int model_map_features(const struct model *m, const char *const *names, size_t name_count,
		       int *map, struct reflex_err *err)
{
	for (unsigned i = 0; i < m->feature_count; i++) {
		map[i] = -1;
		for (size_t k = 0; k < name_count; k++)
			if (names[k] && !strcmp(names[k], m->features[i].name)) {
				map[i] = (int)k;
				break;
			}
		if (map[i] < 0)
			return model_fail(err, -1, "model feature %u '%s' is not among the %zu provided inputs",
					  i, m->features[i].name, name_count);
	}
	return 0;
}

void model_quantize(const struct model *m, const double *raw, const int *map, int16_t *q)
{
	for (unsigned i = 0; i < m->feature_count; i++) {
		double x = raw[map ? map[i] : (int)i];

		q[i] = model_quantize_norm(model_feature_normalize(&m->features[i], x));
	}
}

static int32_t clamp32(int32_t v, int32_t lo, int32_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* Index of the leaf q leads to; at most max_depth + 1 steps (validated depth). */
static uint16_t tree_leaf(const struct model_tree *tree, unsigned max_depth, const int16_t *q)
{
	uint16_t idx = 0;

	for (unsigned step = 0; step < max_depth && tree->nodes[idx].feature_idx != MODEL_LEAF; step++) {
		const struct model_tree_node *nd = &tree->nodes[idx];

		idx = q[nd->feature_idx] <= nd->threshold ? nd->left : nd->right;
	}
	return idx;
}

static void mlp_eval(const struct model *m, const int16_t *q, int32_t *value)
{
	int8_t act[2][MODEL_MAX_UNITS];
	unsigned cur = 0;

	for (unsigned i = 0; i < m->feature_count; i++) {
		int32_t qi = clamp32(q[i], 0, MODEL_Q_MAX);

		act[0][i] = (int8_t)((qi * 127 + MODEL_Q_MAX / 2) / MODEL_Q_MAX);
	}
	for (unsigned l = 0; l < m->layer_count; l++) {
		const struct model_layer *ly = &m->layers[l];
		bool last = l + 1 == m->layer_count;

		for (unsigned o = 0; o < ly->out_count; o++) {
			const int8_t *w = ly->weights + (size_t)o * ly->in_count;
			const int8_t *a = act[cur];
			int32_t acc = ly->biases[o];
			int64_t v;

			/* |bias| < 2^30 and 256 * 128 * 128 < 2^23: no int32 overflow. */
			for (unsigned i = 0; i < ly->in_count; i++)
				acc += (int32_t)w[i] * a[i];
			if (last) {
				value[o] = clamp32(acc, m->outputs[o].qmin, m->outputs[o].qmax);
				continue;
			}
			if (acc < 0)
				acc = 0;
			v = ((int64_t)acc * ly->requant_mult + ((int64_t)1 << (ly->requant_shift - 1))) >>
			    ly->requant_shift;
			act[cur ^ 1][o] = (int8_t)(v > 127 ? 127 : v);
		}
		cur ^= 1;
	}
}

void model_eval(const struct model *m, const int16_t *q, int32_t *value)
{
	if (m->kind == MODEL_KIND_MLP) {
		mlp_eval(m, q, value);
		return;
	}
	for (unsigned t = 0; t < m->output_count; t++) {
		const struct model_tree *tree = &m->trees[t];
		int16_t leaf = tree->nodes[tree_leaf(tree, m->max_depth, q)].leaf_value;

		value[t] = clamp32(leaf, m->outputs[t].qmin, m->outputs[t].qmax);
	}
}

double model_value_raw(const struct model *m, unsigned output, int32_t value)
{
	return value * m->outputs[output].scale;
}

unsigned model_argmax(const int32_t *value, unsigned count)
{
	unsigned best = 0;

	for (unsigned i = 1; i < count; i++)
		if (value[i] > value[best])
			best = i;
	return best;
}

int model_explain_tree(const struct model *m, unsigned output, const int16_t *q,
		       struct model_explain *ex)
{
	const struct model_tree *tree;
	uint16_t idx = 0;

	if (m->kind != MODEL_KIND_TREES || output >= m->output_count)
		return -EINVAL;
	tree = &m->trees[output];
	memset(ex, 0, sizeof(*ex));
	while (ex->step_count < m->max_depth && tree->nodes[idx].feature_idx != MODEL_LEAF) {
		const struct model_tree_node *nd = &tree->nodes[idx];
		struct model_explain_step *st = &ex->steps[ex->step_count++];

		st->node = idx;
		st->feature_idx = nd->feature_idx;
		st->threshold = nd->threshold;
		st->q = q[nd->feature_idx];
		st->went_left = st->q <= nd->threshold;
		idx = st->went_left ? nd->left : nd->right;
	}
	ex->leaf_node = idx;
	ex->leaf_value = tree->nodes[idx].leaf_value;
	ex->value = clamp32(ex->leaf_value, m->outputs[output].qmin, m->outputs[output].qmax);
	return 0;
}

struct text {
	char *buf;
	size_t size;
	size_t len; /* what would have been written */
};

__attribute__((format(printf, 2, 3))) static void text_add(struct text *t, const char *fmt, ...)
{
	size_t room = t->len < t->size ? t->size - t->len : 0;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(room ? t->buf + t->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->len += (size_t)n;
}

int model_explain_format(const struct model *m, unsigned output, const struct model_explain *ex,
			 const double *raw, char *buf, size_t size)
{
	const struct model_output *o = &m->outputs[output];
	struct text t = { .buf = buf, .size = size };

	if (size)
		buf[0] = '\0';
	for (unsigned s = 0; s < ex->step_count; s++) {
		const struct model_explain_step *st = &ex->steps[s];
		const struct model_feature *f = &m->features[st->feature_idx];

		text_add(&t, "  node %u: %s q=%d %s %d", st->node, f->name, st->q,
			 st->went_left ? "<=" : ">", st->threshold);
		if (raw)
			text_add(&t, " (raw %g %s %g)", raw[st->feature_idx], st->went_left ? "<" : ">=",
				 model_threshold_raw(f, st->threshold));
		text_add(&t, " -> %s\n", st->went_left ? "left" : "right");
	}
	text_add(&t, "  leaf node %u: value %d", ex->leaf_node, ex->value);
	if (ex->value != ex->leaf_value)
		text_add(&t, " (clamped from %d)", ex->leaf_value);
	text_add(&t, " -> %s = %g\n", o->name, model_value_raw(m, output, ex->value));
	return (int)t.len;
}
