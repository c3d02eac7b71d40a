/*
 * Semantic rules of a model, shared by the loader and the builders. Error offsets
 * point into the loaded file, or into the file model_serialize would produce.
 */
#include <math.h>
#include <string.h>

#include "model/model.h"
#include "model/model_internal.h"

/* Where model_serialize puts each section's payload. */
static void layout_of_built(const struct model *m, struct model_layout *lay)
{
	lay->features = MODEL_HEADER_SIZE + MODEL_SECTION_HEADER_SIZE;
	lay->outputs = lay->features + (size_t)m->feature_count * FEATURE_RECORD_SIZE +
		       MODEL_SECTION_HEADER_SIZE;
	lay->body = lay->outputs + (size_t)m->output_count * OUTPUT_RECORD_SIZE +
		    MODEL_SECTION_HEADER_SIZE;
	lay->metadata = lay->body + model_body_section_size(m) + MODEL_SECTION_HEADER_SIZE;
	lay->reference = (m->metadata_len ? lay->metadata + m->metadata_len : lay->metadata) +
			 (m->metadata_len ? MODEL_SECTION_HEADER_SIZE : 0);
	lay->anomaly = m->reference ? lay->reference + model_reference_section_size(m) + MODEL_SECTION_HEADER_SIZE
				    : lay->reference;
}

/* --- semantic checks (loader and builders) -------------------------------- */

static bool name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

int model_check_name(const char *name, const char *what, unsigned idx, long off,
		      struct reflex_err *err)
{
	size_t len = strnlen(name, MODEL_NAME_SIZE);

	if (len == 0)
		return model_fail(err, off, "%s %u: empty name", what, idx);
	if (len >= MODEL_NAME_SIZE)
		return model_fail(err, off, "%s %u: name longer than %d bytes", what, idx,
				  MODEL_NAME_SIZE - 1);
	for (size_t i = 0; i < len; i++)
		if (!name_char_ok(name[i]))
			return model_fail(err, off + (long)i,
					  "%s %u: name byte 0x%02x is not one of [A-Za-z0-9_.-]",
					  what, idx, (unsigned char)name[i]);
	return 0;
}

static int check_features(const struct model *m, const struct model_layout *lay,
			  struct reflex_err *err)
{
	for (unsigned i = 0; i < m->feature_count; i++) {
		const struct model_feature *f = &m->features[i];
		long off = (long)(lay->features + (size_t)i * FEATURE_RECORD_SIZE);
		int rc = model_check_name(f->name, "feature", i, off, err);

		if (rc)
			return rc;
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(m->features[j].name, f->name))
				return model_fail(err, off, "feature %u: name '%s' repeats feature %u",
						  i, f->name, j);
		if (!isfinite(f->min))
			return model_fail(err, off + 32, "feature %u (%s): min is not finite", i, f->name);
		if (!isfinite(f->max))
			return model_fail(err, off + 40, "feature %u (%s): max is not finite", i, f->name);
		if (!(f->max > f->min) || !isfinite(f->max - f->min))
			return model_fail(err, off + 40,
					  "feature %u (%s): max %g must be above min %g (and max - min finite)",
					  i, f->name, f->max, f->min);
	}
	return 0;
}

static int check_outputs(const struct model *m, const struct model_layout *lay,
			 struct reflex_err *err)
{
	for (unsigned i = 0; i < m->output_count; i++) {
		const struct model_output *o = &m->outputs[i];
		long off = (long)(lay->outputs + (size_t)i * OUTPUT_RECORD_SIZE);
		int32_t qmin, qmax;
		int rc = model_check_name(o->name, "output", i, off, err);

		if (rc)
			return rc;
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(m->outputs[j].name, o->name))
				return model_fail(err, off, "output %u: name '%s' repeats output %u",
						  i, o->name, j);
		if (!isfinite(o->min) || !isfinite(o->max) || o->min > o->max)
			return model_fail(err, off + 32,
					  "output %u (%s): bounds [%g, %g] must be finite with min <= max",
					  i, o->name, o->min, o->max);
		if (!isfinite(o->scale) || !(o->scale > 0))
			return model_fail(err, off + 48, "output %u (%s): scale %g must be finite and > 0",
					  i, o->name, o->scale);
		model_output_qrange(m->kind, o->min, o->max, o->scale, &qmin, &qmax);
		if (qmin > qmax)
			return model_fail(err, off + 32,
					  "output %u (%s): no value representable at scale %g lies in [%g, %g]",
					  i, o->name, o->scale, o->min, o->max);
		if (qmin != o->qmin || qmax != o->qmax)
			return model_fail(err, off + 32,
					  "output %u (%s): qmin/qmax %d..%d do not match the bounds (%d..%d); set them with model_set_output",
					  i, o->name, o->qmin, o->qmax, qmin, qmax);
	}
	return 0;
}

static int check_child(const char *what, unsigned t, unsigned j, const char *side, uint16_t child,
		       uint16_t count, uint8_t *parents, uint8_t *depth, uint8_t max_depth, long off,
		       struct reflex_err *err)
{
	if (child <= j)
		return model_fail(err, off, "%s %u node %u: %s child %u does not point forward",
				  what, t, j, side, child);
	if (child >= count)
		return model_fail(err, off, "%s %u node %u: %s child %u is outside the tree (%u nodes)",
				  what, t, j, side, child, count);
	if (parents[child]++)
		return model_fail(err, off, "%s %u node %u: %s child %u already has a parent",
				  what, t, j, side, child);
	depth[child] = depth[j] + 1;
	if (depth[child] > max_depth)
		return model_fail(err, off, "%s %u node %u: %s child %u at depth %u exceeds max_depth %u",
				  what, t, j, side, child, depth[child], max_depth);
	return 0;
}

int model_check_tree_shape(const struct model_tree *tree, const char *what, unsigned t, uint8_t max_depth,
			   uint16_t feature_count, size_t tree_off, uint8_t *depth, struct reflex_err *err)
{
	uint8_t parents[MODEL_MAX_TREE_NODES];
	unsigned cap = (1u << (max_depth + 1)) - 1;
	int rc;

	if (tree->node_count == 0 || !tree->nodes)
		return model_fail(err, (long)tree_off, "%s %u: no nodes", what, t);
	if (tree->node_count > cap)
		return model_fail(err, (long)tree_off,
				  "%s %u: %u nodes, more than %u allowed at max_depth %u", what, t,
				  tree->node_count, cap, max_depth);
	memset(parents, 0, tree->node_count);
	depth[0] = 0;
	for (unsigned j = 0; j < tree->node_count; j++) {
		const struct model_tree_node *nd = &tree->nodes[j];
		long off = (long)(tree_off + TREE_HEADER_SIZE + (size_t)j * NODE_SIZE);

		if (j > 0 && !parents[j])
			return model_fail(err, off, "%s %u node %u: unreachable (no parent)", what, t, j);
		if (nd->feature_idx == MODEL_LEAF) {
			if (nd->threshold || nd->left || nd->right)
				return model_fail(err, off + 2, "%s %u node %u: leaf has a nonzero threshold or child",
						  what, t, j);
			continue;
		}
		if (nd->feature_idx >= feature_count)
			return model_fail(err, off, "%s %u node %u: feature_idx %u >= feature_count %u",
					  what, t, j, nd->feature_idx, feature_count);
		if (nd->leaf_value)
			return model_fail(err, off + 8, "%s %u node %u: internal node has leaf_value %d",
					  what, t, j, nd->leaf_value);
		rc = check_child(what, t, j, "left", nd->left, tree->node_count, parents, depth,
				 max_depth, off + 4, err);
		if (!rc)
			rc = check_child(what, t, j, "right", nd->right, tree->node_count, parents, depth,
					 max_depth, off + 6, err);
		if (rc)
			return rc;
	}
	return 0;
}

static int check_tree(const struct model *m, unsigned t, size_t tree_off, struct reflex_err *err)
{
	const struct model_tree *tree = &m->trees[t];
	const struct model_output *o = &m->outputs[t];
	uint8_t depth[MODEL_MAX_TREE_NODES];
	int rc = model_check_tree_shape(tree, "tree", t, m->max_depth, m->feature_count, tree_off, depth, err);

	for (unsigned j = 0; !rc && j < tree->node_count; j++) {
		const struct model_tree_node *nd = &tree->nodes[j];

		if (nd->feature_idx == MODEL_LEAF && (nd->leaf_value < o->qmin || nd->leaf_value > o->qmax))
			return model_fail(err, (long)(tree_off + TREE_HEADER_SIZE + (size_t)j * NODE_SIZE + 8),
					  "tree %u node %u: leaf value %d (%g %s) outside the bounds %d..%d ([%g, %g])",
					  t, j, nd->leaf_value, nd->leaf_value * o->scale, o->name, o->qmin,
					  o->qmax, o->min, o->max);
	}
	return rc;
}

static int check_trees(const struct model *m, const struct model_layout *lay,
		       struct reflex_err *err)
{
	size_t off = lay->body + TREES_HEADER_SIZE;
	int rc;

	if (m->max_depth > MODEL_MAX_DEPTH_LIMIT)
		return model_fail(err, (long)lay->body, "max_depth %u exceeds the format limit %d",
				  m->max_depth, MODEL_MAX_DEPTH_LIMIT);
	for (unsigned t = 0; t < m->output_count; t++) {
		rc = check_tree(m, t, off, err);
		if (rc)
			return rc;
		off += TREE_HEADER_SIZE + (size_t)m->trees[t].node_count * NODE_SIZE;
	}
	return 0;
}

static int check_layer(const struct model *m, unsigned l, size_t off, struct reflex_err *err)
{
	const struct model_layer *ly = &m->layers[l];
	unsigned want_in = l == 0 ? m->feature_count : m->layers[l - 1].out_count;
	bool last = l + 1 == m->layer_count;
	size_t bias_off = off + LAYER_HEADER_SIZE + (size_t)ly->in_count * ly->out_count;

	if (ly->in_count == 0 || ly->in_count > MODEL_MAX_UNITS || ly->out_count == 0 ||
	    ly->out_count > MODEL_MAX_UNITS)
		return model_fail(err, (long)off, "layer %u: %u -> %u units, each must be 1..%d", l,
				  ly->in_count, ly->out_count, MODEL_MAX_UNITS);
	if (ly->in_count != want_in)
		return model_fail(err, (long)off, "layer %u: in_count %u, expected %u (%s)", l,
				  ly->in_count, want_in, l == 0 ? "feature_count" : "previous out_count");
	if (last && ly->out_count != m->output_count)
		return model_fail(err, (long)off + 2, "layer %u: out_count %u, expected output_count %u",
				  l, ly->out_count, m->output_count);
	if (last && (ly->requant_mult || ly->requant_shift))
		return model_fail(err, (long)off + 4, "layer %u: last layer must have requant 0 >> 0", l);
	if (!last && (ly->requant_mult < 1 || ly->requant_mult > INT32_MAX))
		return model_fail(err, (long)off + 4, "layer %u: requant_mult %u outside 1..%d", l,
				  ly->requant_mult, INT32_MAX);
	if (!last && (ly->requant_shift < 1 || ly->requant_shift > 62))
		return model_fail(err, (long)off + 8, "layer %u: requant_shift %u outside 1..62", l,
				  ly->requant_shift);
	if (!isfinite(ly->weight_scale) || !(ly->weight_scale > 0))
		return model_fail(err, (long)off + 16, "layer %u: weight_scale %g must be finite and > 0",
				  l, ly->weight_scale);
	if (!ly->weights || !ly->biases)
		return model_fail(err, (long)off, "layer %u: no weights or biases", l);
	for (unsigned o = 0; o < ly->out_count; o++)
		if (ly->biases[o] < -MODEL_MAX_BIAS || ly->biases[o] > MODEL_MAX_BIAS)
			return model_fail(err, (long)(bias_off + 4 * o),
					  "layer %u: bias %u = %d outside +-%d", l, o, ly->biases[o],
					  MODEL_MAX_BIAS);
	return 0;
}

static int check_mlp(const struct model *m, const struct model_layout *lay, struct reflex_err *err)
{
	size_t off = lay->body + MLP_HEADER_SIZE;
	int rc;

	if (m->layer_count < 1 || m->layer_count > MODEL_MAX_LAYERS)
		return model_fail(err, (long)lay->body, "layer_count %u outside 1..%d", m->layer_count,
				  MODEL_MAX_LAYERS);
	for (unsigned l = 0; l < m->layer_count; l++) {
		rc = check_layer(m, l, off, err);
		if (rc)
			return rc;
		off += model_layer_size(&m->layers[l]);
	}
	return 0;
}

static int check_metadata(const struct model *m, const struct model_layout *lay,
			  struct reflex_err *err)
{
	const char *nul;

	if (!m->metadata_len)
		return 0;
	if (m->metadata_len > MODEL_MAX_METADATA)
		return model_fail(err, (long)lay->metadata, "metadata is %zu bytes, over the %d cap",
				  m->metadata_len, MODEL_MAX_METADATA);
	nul = memchr(m->metadata, '\0', m->metadata_len);
	if (nul)
		return model_fail(err, (long)(lay->metadata + (size_t)(nul - m->metadata)),
				  "metadata contains a NUL byte");
	if (!model_utf8_valid(m->metadata, m->metadata_len))
		return model_fail(err, (long)(lay->metadata + model_utf8_error_at(m->metadata,
										 m->metadata_len)),
				  "metadata is not valid UTF-8");
	return 0;
}

int model_check(const struct model *m, const struct model_layout *lay,
		       struct reflex_err *err)
{
	int rc;

	if (m->kind != MODEL_KIND_TREES && m->kind != MODEL_KIND_MLP)
		return model_fail(err, -1, "unknown model kind %d", (int)m->kind);
	if (m->feature_count < 1 || m->feature_count > MODEL_MAX_FEATURES)
		return model_fail(err, 8, "feature_count %u outside 1..%d", m->feature_count,
				  MODEL_MAX_FEATURES);
	if (m->output_count < 1 || m->output_count > MODEL_MAX_OUTPUTS)
		return model_fail(err, 10, "output_count %u outside 1..%d", m->output_count,
				  MODEL_MAX_OUTPUTS);
	rc = check_features(m, lay, err);
	if (!rc)
		rc = check_outputs(m, lay, err);
	if (!rc)
		rc = m->kind == MODEL_KIND_TREES ? check_trees(m, lay, err) : check_mlp(m, lay, err);
	if (!rc)
		rc = check_metadata(m, lay, err);
	if (!rc)
		rc = model_reference_check(m, lay->reference, err);
	if (!rc)
		rc = model_anomaly_check(m, lay->anomaly, err);
	return rc;
}

int model_validate(const struct model *m, struct reflex_err *err)
{
	struct model_layout lay;

	if (!m)
		return model_fail(err, -1, "no model");
	/* Counts first: the layout of a model with bad counts is meaningless. */
	if (m->output_count > MODEL_MAX_OUTPUTS || m->layer_count > MODEL_MAX_LAYERS)
		return model_fail(err, -1, "output_count %u or layer_count %u over the caps",
				  m->output_count, m->layer_count);
	layout_of_built(m, &lay);
	return model_check(m, &lay, err);
}

