/*
 * The bottom of the model folder: error reporting, names and the sizes of the
 * `.reflex` format (models/FORMAT.md). Every other model_*.c may call this file;
 * it calls none of them, so the calls between the files form a DAG:
 *   model.c (loader) -> model_check.c -> model_meta.c -> model_format.c
 *   model_write.c, model_mlp.c, model_infer.c -> the ones below them.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model/model.h"
#include "model/model_internal.h"

int model_fail(struct reflex_err *err, long offset, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reflex_err_vset(err, fmt, ap);
	va_end(ap);
	reflex_err_at_offset(err, offset);
	return -EINVAL;
}

int model_fail_errno(struct reflex_err *err, int errnum, const char *fmt, ...)
{
	char what[sizeof(err->what)];
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(what, sizeof(what), fmt, ap);
		va_end(ap);
		reflex_err_set(err, "%s: %s", what, strerror(errnum));
	}
	return -errnum;
}

const char *model_kind_name(enum model_kind kind)
{
	switch (kind) {
	case MODEL_KIND_TREES: return "trees";
	case MODEL_KIND_MLP: return "mlp";
	}
	return "unknown";
}

const char *model_section_name(uint16_t type)
{
	switch (type) {
	case MODEL_SECTION_FEATURES: return "features";
	case MODEL_SECTION_OUTPUTS: return "outputs";
	case MODEL_SECTION_TREES: return "trees";
	case MODEL_SECTION_MLP: return "mlp";
	case MODEL_SECTION_METADATA: return "metadata";
	case MODEL_SECTION_REFERENCE: return "reference";
	case MODEL_SECTION_ANOMALY: return "anomaly";
	}
	return (type & MODEL_SECTION_OPTIONAL) ? "unknown-optional" : "unknown";
}

/* --- derived values shared by loader and builders ------------------------- */

/* The integer range of an output: values v with min <= v * scale <= max. */
void model_output_qrange(enum model_kind kind, double min, double max, double scale,
			 int32_t *qmin, int32_t *qmax)
{
	double lo_cap = kind == MODEL_KIND_TREES ? INT16_MIN : (double)INT32_MIN;
	double hi_cap = kind == MODEL_KIND_TREES ? INT16_MAX : (double)INT32_MAX;
	/* The epsilon keeps e.g. 0.3 / 0.1 = 2.9999999999999996 from losing the value 3. */
	double lo = ceil(min / scale - 1e-9);
	double hi = floor(max / scale + 1e-9);

	lo = fmax(lo_cap, fmin(hi_cap, lo));
	hi = fmax(lo_cap, fmin(hi_cap, hi));
	*qmin = (int32_t)lo;
	*qmax = (int32_t)hi;
}

size_t model_tree_section_size(const struct model *m)
{
	size_t n = TREES_HEADER_SIZE;

	for (unsigned t = 0; t < m->output_count; t++)
		n += TREE_HEADER_SIZE + (size_t)m->trees[t].node_count * NODE_SIZE;
	return n;
}

size_t model_layer_size(const struct model_layer *l)
{
	return LAYER_HEADER_SIZE + (size_t)l->in_count * l->out_count + 4 * (size_t)l->out_count;
}

size_t model_mlp_section_size(const struct model *m)
{
	size_t n = MLP_HEADER_SIZE;

	for (unsigned l = 0; l < m->layer_count; l++)
		n += model_layer_size(&m->layers[l]);
	return n;
}

size_t model_body_section_size(const struct model *m)
{
	return m->kind == MODEL_KIND_TREES ? model_tree_section_size(m) : model_mlp_section_size(m);
}
