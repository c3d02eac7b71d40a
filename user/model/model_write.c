/*
 * Building models in memory, serializing them (models/FORMAT.md) and writing them
 * atomically: a reader sees the old file or the new one, never a half-written one.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "lib/fileio.h"
#include "model/model.h"
#include "model/model_fast.h"
#include "model/model_internal.h"

static void wr16(uint8_t *p, uint16_t v) { p[0] = v & 0xff; p[1] = v >> 8; }
static void wr32(uint8_t *p, uint32_t v)
{
	wr16(p, v & 0xffff);
	wr16(p + 2, v >> 16);
}
static void wr64(uint8_t *p, uint64_t v)
{
	wr32(p, (uint32_t)v);
	wr32(p + 4, (uint32_t)(v >> 32));
}
static void wrf64(uint8_t *p, double v)
{
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	wr64(p, bits);
}

/* --- serializing and writing ---------------------------------------------- */

static uint8_t *put_section(uint8_t *p, uint16_t type, size_t length)
{
	wr16(p, type);
	wr16(p + 2, 0);
	wr32(p + 4, (uint32_t)length);
	return p + MODEL_SECTION_HEADER_SIZE;
}

static uint8_t *put_tree(const struct model_tree *tree, uint8_t *p)
{
	wr16(p, tree->node_count);
	p += TREE_HEADER_SIZE;
	for (unsigned j = 0; j < tree->node_count; j++, p += NODE_SIZE) {
		const struct model_tree_node *nd = &tree->nodes[j];

		wr16(p, nd->feature_idx);
		wr16(p + 2, (uint16_t)nd->threshold);
		wr16(p + 4, nd->left);
		wr16(p + 6, nd->right);
		wr16(p + 8, (uint16_t)nd->leaf_value);
	}
	return p;
}

static uint8_t *put_trees(const struct model *m, uint8_t *p)
{
	p = put_section(p, MODEL_SECTION_TREES, model_tree_section_size(m));
	p[0] = m->max_depth;
	p += TREES_HEADER_SIZE;
	for (unsigned t = 0; t < m->output_count; t++)
		p = put_tree(&m->trees[t], p);
	return p;
}

static uint8_t *put_anomaly(const struct model *m, uint8_t *p)
{
	const struct model_anomaly *a = m->anomaly;

	p = put_section(p, MODEL_SECTION_ANOMALY, model_anomaly_section_size(m));
	wr16(p, MODEL_ANOMALY_VERSION);
	p[2] = a->tree_count;
	p[3] = a->max_depth;
	wr16(p + 4, a->sample_size);
	p += ANOMALY_HEADER_SIZE;
	for (unsigned t = 0; t < a->tree_count; t++)
		p = put_tree(&a->trees[t], p);
	return p;
}

static uint8_t *put_mlp(const struct model *m, uint8_t *p)
{
	p = put_section(p, MODEL_SECTION_MLP, model_mlp_section_size(m));
	p[0] = m->layer_count;
	p += MLP_HEADER_SIZE;
	for (unsigned l = 0; l < m->layer_count; l++) {
		const struct model_layer *ly = &m->layers[l];
		size_t nw = (size_t)ly->in_count * ly->out_count;

		wr16(p, ly->in_count);
		wr16(p + 2, ly->out_count);
		wr32(p + 4, ly->requant_mult);
		p[8] = ly->requant_shift;
		wrf64(p + 16, ly->weight_scale);
		memcpy(p + LAYER_HEADER_SIZE, ly->weights, nw);
		for (unsigned o = 0; o < ly->out_count; o++)
			wr32(p + LAYER_HEADER_SIZE + nw + 4 * o, (uint32_t)ly->biases[o]);
		p += model_layer_size(ly);
	}
	return p;
}

static uint8_t *put_reference(const struct model *m, uint8_t *p)
{
	const struct model_reference *r = m->reference;

	p = put_section(p, MODEL_SECTION_REFERENCE, model_reference_section_size(m));
	wr16(p, (uint16_t)model_reference_version(r));
	p[2] = r->bin_count;
	wr32(p + 4, r->sample_count);
	if (model_reference_version(r) == 2)
		wrf64(p + 8, r->psi_threshold);
	p += model_reference_header_size(r);
	for (unsigned f = 0; f < m->feature_count; f++) {
		for (unsigned b = 0; b + 1 < r->bin_count; b++, p += 2)
			wr16(p, (uint16_t)r->edges[f][b]);
		for (unsigned b = 0; b < r->bin_count; b++, p += 4)
			wr32(p, r->counts[f][b]);
	}
	return p;
}

int model_serialize(const struct model *m, uint8_t **bufp, size_t *lenp, struct reflex_err *err)
{
	size_t len, body = 0;
	unsigned sections;
	uint8_t *buf, *p;
	int rc = model_validate(m, err);

	if (rc)
		return rc;
	body = model_body_section_size(m);
	sections = 3 + (m->metadata_len ? 1 : 0) + (m->reference ? 1 : 0) + (m->anomaly ? 1 : 0);
	len = MODEL_HEADER_SIZE + sections * MODEL_SECTION_HEADER_SIZE +
	      (size_t)m->feature_count * FEATURE_RECORD_SIZE +
	      (size_t)m->output_count * OUTPUT_RECORD_SIZE + body + m->metadata_len +
	      model_reference_section_size(m) + model_anomaly_section_size(m) + MODEL_CRC_SIZE;
	if (len > MODEL_MAX_FILE_SIZE)
		return model_fail(err, -1, "model would be %zu bytes, over the %u-byte cap", len,
				  MODEL_MAX_FILE_SIZE);
	buf = calloc(1, len);
	if (!buf)
		return model_fail_errno(err, ENOMEM, "serializing model");
	memcpy(buf, MODEL_MAGIC, 4);
	wr16(buf + 4, MODEL_VERSION);
	wr16(buf + 6, MODEL_HEADER_SIZE);
	wr16(buf + 8, m->feature_count);
	wr16(buf + 10, m->output_count);
	wr16(buf + 12, (uint16_t)sections);
	wr32(buf + 16, (uint32_t)len);
	p = put_section(buf + MODEL_HEADER_SIZE, MODEL_SECTION_FEATURES,
			(size_t)m->feature_count * FEATURE_RECORD_SIZE);
	for (unsigned i = 0; i < m->feature_count; i++, p += FEATURE_RECORD_SIZE) {
		memcpy(p, m->features[i].name, strnlen(m->features[i].name, MODEL_NAME_SIZE - 1));
		wrf64(p + 32, m->features[i].min);
		wrf64(p + 40, m->features[i].max);
	}
	p = put_section(p, MODEL_SECTION_OUTPUTS, (size_t)m->output_count * OUTPUT_RECORD_SIZE);
	for (unsigned i = 0; i < m->output_count; i++, p += OUTPUT_RECORD_SIZE) {
		memcpy(p, m->outputs[i].name, strnlen(m->outputs[i].name, MODEL_NAME_SIZE - 1));
		wrf64(p + 32, m->outputs[i].min);
		wrf64(p + 40, m->outputs[i].max);
		wrf64(p + 48, m->outputs[i].scale);
	}
	p = m->kind == MODEL_KIND_TREES ? put_trees(m, p) : put_mlp(m, p);
	if (m->metadata_len) {
		p = put_section(p, MODEL_SECTION_METADATA, m->metadata_len);
		memcpy(p, m->metadata, m->metadata_len);
		p += m->metadata_len;
	}
	if (m->reference)
		p = put_reference(m, p);
	if (m->anomaly)
		p = put_anomaly(m, p);
	wr32(p, (uint32_t)crc32(0L, buf, (uInt)(len - MODEL_CRC_SIZE)));
	*bufp = buf;
	*lenp = len;
	return 0;
}

int model_write_file(const struct model *m, const char *path, struct reflex_err *err)
{
	struct reflex_err ferr = { 0 };
	uint8_t *buf = NULL;
	size_t len;
	int rc;

	rc = model_serialize(m, &buf, &len, err);
	if (rc)
		return rc;
	rc = fileio_write_atomic(path, buf, len, 0644, &ferr);
	if (rc)
		reflex_err_copy(err, &ferr);
	free(buf);
	return rc;
}

/* --- building ------------------------------------------------------------- */

struct model *model_create(enum model_kind kind, uint16_t feature_count, uint16_t output_count)
{
	struct model *m;

	if ((kind != MODEL_KIND_TREES && kind != MODEL_KIND_MLP) || feature_count < 1 ||
	    feature_count > MODEL_MAX_FEATURES || output_count < 1 || output_count > MODEL_MAX_OUTPUTS)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->kind = kind;
	m->feature_count = feature_count;
	m->output_count = output_count;
	m->max_depth = MODEL_DEFAULT_MAX_DEPTH;
	return m;
}

static int copy_name(char *dst, const char *name, const char *what, unsigned idx,
		     struct reflex_err *err)
{
	size_t len = strnlen(name, MODEL_NAME_SIZE);
	int rc;

	memset(dst, 0, MODEL_NAME_SIZE);
	if (len >= MODEL_NAME_SIZE)
		return model_fail(err, -1, "%s %u: name '%.40s' longer than %d bytes", what, idx, name,
				  MODEL_NAME_SIZE - 1);
	memcpy(dst, name, len);
	rc = model_check_name(dst, what, idx, -1, err);
	if (rc)
		memset(dst, 0, MODEL_NAME_SIZE);
	return rc;
}

int model_set_feature(struct model *m, unsigned idx, const char *name, double min, double max,
		      struct reflex_err *err)
{
	struct model_feature *f;
	int rc;

	if (idx >= m->feature_count)
		return model_fail(err, -1, "feature %u: the model has %u features", idx, m->feature_count);
	f = &m->features[idx];
	rc = copy_name(f->name, name, "feature", idx, err);
	if (rc)
		return rc;
	if (!isfinite(min) || !isfinite(max) || !(max > min) || !isfinite(max - min))
		return model_fail(err, -1, "feature %u (%s): need finite min < max, got [%g, %g]", idx,
				  name, min, max);
	f->min = min;
	f->max = max;
	return model_fast_prepare(m) ? model_fail_errno(err, ENOMEM, "feature %u", idx) : 0;
}

int model_set_output(struct model *m, unsigned idx, const char *name, double min, double max,
		     double scale, struct reflex_err *err)
{
	struct model_output *o;
	int rc;

	if (idx >= m->output_count)
		return model_fail(err, -1, "output %u: the model has %u outputs", idx, m->output_count);
	o = &m->outputs[idx];
	rc = copy_name(o->name, name, "output", idx, err);
	if (rc)
		return rc;
	if (!isfinite(min) || !isfinite(max) || min > max || !isfinite(scale) || !(scale > 0))
		return model_fail(err, -1, "output %u (%s): need finite min <= max and scale > 0", idx,
				  name);
	o->min = min;
	o->max = max;
	o->scale = scale;
	model_output_qrange(m->kind, min, max, scale, &o->qmin, &o->qmax);
	if (o->qmin > o->qmax)
		return model_fail(err, -1, "output %u (%s): no value at scale %g lies in [%g, %g]", idx,
				  name, scale, min, max);
	return model_fast_prepare(m) ? model_fail_errno(err, ENOMEM, "output %u", idx) : 0;
}

int model_set_tree(struct model *m, unsigned output, const struct model_tree_node *nodes,
		   uint16_t node_count, struct reflex_err *err)
{
	struct model_tree_node *copy;

	if (m->kind != MODEL_KIND_TREES)
		return model_fail(err, -1, "model_set_tree on a %s model", model_kind_name(m->kind));
	if (output >= m->output_count)
		return model_fail(err, -1, "tree %u: the model has %u outputs", output, m->output_count);
	if (node_count < 1 || node_count > MODEL_MAX_TREE_NODES)
		return model_fail(err, -1, "tree %u: node_count %u outside 1..%u", output, node_count,
				  MODEL_MAX_TREE_NODES);
	copy = malloc(node_count * sizeof(*copy));
	if (!copy)
		return model_fail_errno(err, ENOMEM, "tree %u", output);
	memcpy(copy, nodes, node_count * sizeof(*copy));
	free(m->trees[output].nodes);
	m->trees[output].nodes = copy;
	m->trees[output].node_count = node_count;
	return model_fast_prepare(m) ? model_fail_errno(err, ENOMEM, "tree %u", output) : 0;
}

int model_add_layer(struct model *m, uint16_t in_count, uint16_t out_count, uint32_t requant_mult,
		    uint8_t requant_shift, double weight_scale, const int8_t *weights,
		    const int32_t *biases, struct reflex_err *err)
{
	struct model_layer *ly;
	size_t nw = (size_t)in_count * out_count;

	if (m->kind != MODEL_KIND_MLP)
		return model_fail(err, -1, "model_add_layer on a %s model", model_kind_name(m->kind));
	if (m->layer_count >= MODEL_MAX_LAYERS)
		return model_fail(err, -1, "more than %d layers", MODEL_MAX_LAYERS);
	if (!in_count || in_count > MODEL_MAX_UNITS || !out_count || out_count > MODEL_MAX_UNITS)
		return model_fail(err, -1, "layer %u: %u -> %u units, each must be 1..%d",
				  m->layer_count, in_count, out_count, MODEL_MAX_UNITS);
	ly = &m->layers[m->layer_count];
	ly->weights = malloc(nw);
	ly->biases = malloc(out_count * sizeof(*ly->biases));
	if (!ly->weights || !ly->biases) {
		free(ly->weights);
		free(ly->biases);
		*ly = (struct model_layer){ 0 };
		return model_fail_errno(err, ENOMEM, "layer %u", m->layer_count);
	}
	memcpy(ly->weights, weights, nw);
	memcpy(ly->biases, biases, out_count * sizeof(*ly->biases));
	ly->in_count = in_count;
	ly->out_count = out_count;
	ly->requant_mult = requant_mult;
	ly->requant_shift = requant_shift;
	ly->weight_scale = weight_scale;
	m->layer_count++;
	return model_fast_prepare(m) ? model_fail_errno(err, ENOMEM, "layer %u", m->layer_count - 1) : 0;
}
