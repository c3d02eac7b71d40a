/*
 * `.reflex` loader: parses a file image (models/FORMAT.md names every offset used
 * here), then applies the semantic rules of model_check.c, which the writer shares,
 * so the loader accepts exactly the models the writer can produce. Nothing is handed
 * to the caller until every rule has passed.
 */
#include <errno.h>
#include <fcntl.h>
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

/* --- little-endian access ------------------------------------------------- */

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static double rdf64(const uint8_t *p)
{
	uint64_t bits = rd64(p);
	double v;

	memcpy(&v, &bits, sizeof(v));
	return v;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* --- parsing -------------------------------------------------------------- */

struct parse {
	const uint8_t *data;
	size_t end; /* offset of the CRC: sections end here */
	struct model *m;
	struct model_layout lay;
	const struct model_section *features, *outputs, *body, *metadata, *reference, *anomaly;
	struct reflex_err *err;
};

static int parse_name(struct parse *p, size_t off, char *name, const char *what, unsigned idx)
{
	const uint8_t *field = p->data + off;
	const uint8_t *nul = memchr(field, 0, MODEL_NAME_SIZE);

	if (!nul)
		return model_fail(p->err, (long)off, "%s %u: name is not NUL-terminated within %d bytes",
				  what, idx, MODEL_NAME_SIZE);
	if (!all_zero(nul, MODEL_NAME_SIZE - (size_t)(nul - field)))
		return model_fail(p->err, (long)(off + (size_t)(nul - field)),
				  "%s %u: name padding after the NUL is not zero", what, idx);
	memcpy(name, field, MODEL_NAME_SIZE);
	return 0;
}

static int expect_length(struct parse *p, const struct model_section *s, size_t want,
			 const char *why)
{
	if (s->length != want)
		return model_fail(p->err, (long)s->offset + 4, "%s section length %u, expected %zu (%s)",
				  model_section_name(s->type), s->length, want, why);
	return 0;
}

static int parse_features(struct parse *p)
{
	const struct model_section *s = p->features;
	size_t base = s->offset + MODEL_SECTION_HEADER_SIZE;
	int rc = expect_length(p, s, (size_t)p->m->feature_count * FEATURE_RECORD_SIZE,
			       "feature_count x 48");

	for (unsigned i = 0; !rc && i < p->m->feature_count; i++) {
		size_t off = base + (size_t)i * FEATURE_RECORD_SIZE;
		struct model_feature *f = &p->m->features[i];

		rc = parse_name(p, off, f->name, "feature", i);
		f->min = rdf64(p->data + off + 32);
		f->max = rdf64(p->data + off + 40);
	}
	return rc;
}

static int parse_outputs(struct parse *p)
{
	const struct model_section *s = p->outputs;
	size_t base = s->offset + MODEL_SECTION_HEADER_SIZE;
	int rc = expect_length(p, s, (size_t)p->m->output_count * OUTPUT_RECORD_SIZE,
			       "output_count x 56");

	for (unsigned i = 0; !rc && i < p->m->output_count; i++) {
		size_t off = base + (size_t)i * OUTPUT_RECORD_SIZE;
		struct model_output *o = &p->m->outputs[i];

		rc = parse_name(p, off, o->name, "output", i);
		o->min = rdf64(p->data + off + 32);
		o->max = rdf64(p->data + off + 40);
		o->scale = rdf64(p->data + off + 48);
		/* Derived from the raw fields; model_check refuses non-finite or empty ranges. */
		if (isfinite(o->min) && isfinite(o->max) && isfinite(o->scale) && o->scale > 0)
			model_output_qrange(p->m->kind, o->min, o->max, o->scale, &o->qmin, &o->qmax);
	}
	return rc;
}

/* One tree (node_count, reserved, nodes) at *offp, at most up to end. */
static int parse_tree(struct parse *p, const char *section, const char *what, unsigned t, size_t *offp, size_t end,
		      struct model_tree *tree)
{
	size_t off = *offp;
	uint16_t n;

	if (end - off < TREE_HEADER_SIZE)
		return model_fail(p->err, (long)off, "%s %u: header runs past the %s section", what, t, section);
	n = rd16(p->data + off);
	if (n == 0 || n > MODEL_MAX_TREE_NODES)
		return model_fail(p->err, (long)off, "%s %u: node_count %u outside 1..%u", what, t, n,
				  MODEL_MAX_TREE_NODES);
	if (rd16(p->data + off + 2))
		return model_fail(p->err, (long)off + 2, "%s %u: reserved field is not zero", what, t);
	off += TREE_HEADER_SIZE;
	if ((end - off) / NODE_SIZE < n)
		return model_fail(p->err, (long)off, "%s %u: %u nodes run past the %s section", what, t, n, section);
	tree->nodes = calloc(n, sizeof(*tree->nodes));
	if (!tree->nodes)
		return -ENOMEM;
	tree->node_count = n;
	for (unsigned j = 0; j < n; j++, off += NODE_SIZE) {
		const uint8_t *b = p->data + off;

		tree->nodes[j] = (struct model_tree_node){
			.feature_idx = rd16(b),
			.threshold = (int16_t)rd16(b + 2),
			.left = rd16(b + 4),
			.right = rd16(b + 6),
			.leaf_value = (int16_t)rd16(b + 8),
		};
	}
	*offp = off;
	return 0;
}

static int parse_trees(struct parse *p)
{
	const struct model_section *s = p->body;
	size_t off = s->offset + MODEL_SECTION_HEADER_SIZE;
	size_t end = off + s->length;
	struct model *m = p->m;
	int rc;

	if (s->length < TREES_HEADER_SIZE)
		return model_fail(p->err, (long)s->offset + 4, "trees section length %u, shorter than its %d-byte header",
				  s->length, TREES_HEADER_SIZE);
	m->max_depth = p->data[off];
	if (!all_zero(p->data + off + 1, 3))
		return model_fail(p->err, (long)off + 1, "trees section: reserved bytes are not zero");
	off += TREES_HEADER_SIZE;
	for (unsigned t = 0; t < m->output_count; t++) {
		rc = parse_tree(p, "trees", "tree", t, &off, end, &m->trees[t]);
		if (rc)
			return rc;
	}
	if (off != end)
		return model_fail(p->err, (long)off, "trees section: %zu bytes after the last tree",
				  end - off);
	return 0;
}

static int parse_layer(struct parse *p, unsigned l, size_t *offp, size_t end)
{
	struct model_layer *ly = &p->m->layers[l];
	size_t off = *offp;
	size_t nw;

	if (end - off < LAYER_HEADER_SIZE)
		return model_fail(p->err, (long)off, "layer %u: header runs past the mlp section", l);
	ly->in_count = rd16(p->data + off);
	ly->out_count = rd16(p->data + off + 2);
	ly->requant_mult = rd32(p->data + off + 4);
	ly->requant_shift = p->data[off + 8];
	ly->weight_scale = rdf64(p->data + off + 16);
	if (!all_zero(p->data + off + 9, 7))
		return model_fail(p->err, (long)off + 9, "layer %u: reserved bytes are not zero", l);
	if (ly->in_count == 0 || ly->in_count > MODEL_MAX_UNITS || ly->out_count == 0 ||
	    ly->out_count > MODEL_MAX_UNITS)
		return model_fail(p->err, (long)off, "layer %u: %u -> %u units, each must be 1..%d",
				  l, ly->in_count, ly->out_count, MODEL_MAX_UNITS);
	nw = (size_t)ly->in_count * ly->out_count;
	if (end - off < model_layer_size(ly))
		return model_fail(p->err, (long)off, "layer %u: %zu weights and %u biases run past the mlp section",
				  l, nw, ly->out_count);
	ly->weights = malloc(nw);
	ly->biases = calloc(ly->out_count, sizeof(*ly->biases));
	if (!ly->weights || !ly->biases)
		return -ENOMEM;
	memcpy(ly->weights, p->data + off + LAYER_HEADER_SIZE, nw);
	for (unsigned o = 0; o < ly->out_count; o++)
		ly->biases[o] = (int32_t)rd32(p->data + off + LAYER_HEADER_SIZE + nw + 4 * o);
	*offp = off + model_layer_size(ly);
	return 0;
}

static int parse_mlp(struct parse *p)
{
	const struct model_section *s = p->body;
	size_t off = s->offset + MODEL_SECTION_HEADER_SIZE;
	size_t end = off + s->length;
	struct model *m = p->m;
	unsigned count;
	int rc;

	if (s->length < MLP_HEADER_SIZE)
		return model_fail(p->err, (long)s->offset + 4, "mlp section length %u, shorter than its %d-byte header",
				  s->length, MLP_HEADER_SIZE);
	count = p->data[off];
	if (count < 1 || count > MODEL_MAX_LAYERS)
		return model_fail(p->err, (long)off, "layer_count %u outside 1..%d", count,
				  MODEL_MAX_LAYERS);
	if (!all_zero(p->data + off + 1, 3))
		return model_fail(p->err, (long)off + 1, "mlp section: reserved bytes are not zero");
	off += MLP_HEADER_SIZE;
	for (unsigned l = 0; l < count; l++) {
		m->layer_count = (uint8_t)(l + 1); /* so model_free releases a partial layer */
		rc = parse_layer(p, l, &off, end);
		if (rc)
			return rc;
	}
	if (off != end)
		return model_fail(p->err, (long)off, "mlp section: %zu bytes after the last layer",
				  end - off);
	return 0;
}

static int parse_metadata(struct parse *p)
{
	const struct model_section *s = p->metadata;

	if (s->length > MODEL_MAX_METADATA)
		return model_fail(p->err, (long)s->offset + 4, "metadata section length %u over the %d cap",
				  s->length, MODEL_MAX_METADATA);
	p->m->metadata = malloc((size_t)s->length + 1);
	if (!p->m->metadata)
		return -ENOMEM;
	memcpy(p->m->metadata, p->data + s->offset + MODEL_SECTION_HEADER_SIZE, s->length);
	p->m->metadata[s->length] = '\0';
	p->m->metadata_len = s->length;
	return 0;
}

/* A reference version this reader does not know is skipped like an unknown optional section. */
static int parse_reference(struct parse *p)
{
	const struct model_section *s = p->reference;
	size_t off = s->offset + MODEL_SECTION_HEADER_SIZE;
	const uint8_t *d = p->data + off;
	struct model_reference *r;
	unsigned bins, version;
	size_t header;

	if (s->length < REFERENCE_HEADER_SIZE)
		return model_fail(p->err, (long)s->offset + 4, "reference section length %u, shorter than its %d-byte header",
				  s->length, REFERENCE_HEADER_SIZE);
	version = rd16(d);
	if (version != 1 && version != 2)
		return 0;
	header = version == 2 ? REFERENCE_HEADER_SIZE_V2 : REFERENCE_HEADER_SIZE;
	if (s->length < header)
		return model_fail(p->err, (long)s->offset + 4, "reference section length %u, shorter than its %zu-byte header",
				  s->length, header);
	bins = d[2];
	if (bins < MODEL_REF_MIN_BINS || bins > MODEL_REF_MAX_BINS)
		return model_fail(p->err, (long)off + 2, "reference: bin_count %u outside %d..%d", bins,
				  MODEL_REF_MIN_BINS, MODEL_REF_MAX_BINS);
	if (d[3])
		return model_fail(p->err, (long)off + 3, "reference: reserved byte is not zero");
	if (expect_length(p, s, header + p->m->feature_count * model_reference_record_size(bins),
			  version == 2 ? "16 + feature_count x (6 x bin_count - 2)" : "8 + feature_count x (6 x bin_count - 2)"))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	p->m->reference = r;
	r->bin_count = (uint8_t)bins;
	r->sample_count = rd32(d + 4);
	if (version == 2) {
		r->psi_threshold = rdf64(d + 8);
		/* 0 is how version 1 says "none": a version 2 section must carry one. */
		if (r->psi_threshold == 0)
			return model_fail(p->err, (long)off + 8, "reference: version 2 with psi_threshold 0");
	}
	d += header;
	for (unsigned f = 0; f < p->m->feature_count; f++, d += model_reference_record_size(bins)) {
		for (unsigned b = 0; b + 1 < bins; b++)
			r->edges[f][b] = (int16_t)rd16(d + 2 * b);
		for (unsigned b = 0; b < bins; b++)
			r->counts[f][b] = rd32(d + 2 * (bins - 1) + 4 * b);
	}
	return 0;
}

/* A forest version this reader does not know is skipped like an unknown optional section. */
static int parse_anomaly(struct parse *p)
{
	const struct model_section *s = p->anomaly;
	size_t off = s->offset + MODEL_SECTION_HEADER_SIZE, end = off + s->length;
	const uint8_t *d = p->data + off;
	struct model_anomaly *a;
	int rc;

	if (s->length < ANOMALY_HEADER_SIZE)
		return model_fail(p->err, (long)s->offset + 4, "anomaly section length %u, shorter than its %d-byte header",
				  s->length, ANOMALY_HEADER_SIZE);
	if (rd16(d) != MODEL_ANOMALY_VERSION)
		return 0;
	if (d[2] < 1 || d[2] > MODEL_ANOMALY_MAX_TREES)
		return model_fail(p->err, (long)off + 2, "anomaly: tree_count %u outside 1..%d", d[2],
				  MODEL_ANOMALY_MAX_TREES);
	if (rd16(d + 6))
		return model_fail(p->err, (long)off + 6, "anomaly: reserved field is not zero");
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	p->m->anomaly = a;
	a->tree_count = d[2];
	a->max_depth = d[3];
	a->sample_size = rd16(d + 4);
	off += ANOMALY_HEADER_SIZE;
	for (unsigned t = 0; t < a->tree_count; t++) {
		rc = parse_tree(p, "anomaly", "anomaly tree", t, &off, end, &a->trees[t]);
		if (rc)
			return rc;
	}
	if (off != end)
		return model_fail(p->err, (long)off, "anomaly section: %zu bytes after the last tree", end - off);
	return 0;
}

static int claim_section(struct parse *p, const struct model_section *s, unsigned idx)
{
	const struct model_section **slot = NULL;

	switch (s->type) {
	case MODEL_SECTION_FEATURES: slot = &p->features; break;
	case MODEL_SECTION_OUTPUTS: slot = &p->outputs; break;
	case MODEL_SECTION_TREES:
	case MODEL_SECTION_MLP:
		if (p->body && p->body->type != s->type)
			return model_fail(p->err, (long)s->offset,
					  "section %u: a model has either a trees or an mlp section, not both", idx);
		slot = &p->body;
		break;
	case MODEL_SECTION_METADATA: slot = &p->metadata; break;
	case MODEL_SECTION_REFERENCE: slot = &p->reference; break;
	case MODEL_SECTION_ANOMALY: slot = &p->anomaly; break;
	default:
		if (s->type & MODEL_SECTION_OPTIONAL)
			return 0;
		return model_fail(p->err, (long)s->offset,
				  "section %u: unknown type 0x%04x (not marked optional)", idx, s->type);
	}
	if (*slot)
		return model_fail(p->err, (long)s->offset, "section %u: second %s section", idx,
				  model_section_name(s->type));
	*slot = s;
	return 0;
}

static int parse_section_table(struct parse *p, unsigned count)
{
	size_t off = MODEL_HEADER_SIZE;
	int rc;

	for (unsigned i = 0; i < count; i++) {
		struct model_section *s = &p->m->sections[i];

		if (p->end - off < MODEL_SECTION_HEADER_SIZE)
			return model_fail(p->err, (long)off,
					  "section %u of %u: header runs past the end of the sections (offset %zu)",
					  i, count, p->end);
		s->type = rd16(p->data + off);
		s->offset = (uint32_t)off;
		s->length = rd32(p->data + off + 4);
		if (rd16(p->data + off + 2))
			return model_fail(p->err, (long)off + 2, "section %u: reserved field is not zero", i);
		if (s->length > p->end - off - MODEL_SECTION_HEADER_SIZE)
			return model_fail(p->err, (long)off + 4,
					  "section %u (%s): length %u runs past the end of the sections",
					  i, model_section_name(s->type), s->length);
		p->m->section_count = (uint16_t)(i + 1);
		rc = claim_section(p, s, i);
		if (rc)
			return rc;
		off += MODEL_SECTION_HEADER_SIZE + s->length;
	}
	if (off != p->end)
		return model_fail(p->err, (long)off, "%zu bytes between the last of %u sections and the CRC",
				  p->end - off, count);
	if (!p->features)
		return model_fail(p->err, 12, "no features section");
	if (!p->outputs)
		return model_fail(p->err, 12, "no outputs section");
	if (!p->body)
		return model_fail(p->err, 12, "no model section (trees or mlp)");
	return 0;
}

static int parse_header(struct parse *p, size_t len, unsigned flags)
{
	const uint8_t *d = p->data;
	struct model *m = p->m;
	unsigned version, header_size, section_count;
	uint32_t file_size;

	if (len < 4 || memcmp(d, MODEL_MAGIC, 4))
		return model_fail(p->err, 0, "bad magic: not a .reflex file (expected \"NEM1\")");
	if (len < 6)
		return model_fail(p->err, 4, "truncated: %zu bytes, no version field", len);
	version = rd16(d + 4);
	if (version != MODEL_VERSION)
		return model_fail(p->err, 4, "unsupported format version %u (this reader knows version %d)",
				  version, MODEL_VERSION);
	if (len < MODEL_HEADER_SIZE + MODEL_CRC_SIZE)
		return model_fail(p->err, 0, "truncated: %zu bytes, shorter than header and CRC (%d)",
				  len, MODEL_HEADER_SIZE + MODEL_CRC_SIZE);
	header_size = rd16(d + 6);
	if (header_size != MODEL_HEADER_SIZE)
		return model_fail(p->err, 6, "header_size %u, version 1 headers are %d bytes",
				  header_size, MODEL_HEADER_SIZE);
	file_size = rd32(d + 16);
	if (file_size != len)
		return model_fail(p->err, 16, "file_size field says %u bytes but the file has %zu (truncated or extended)",
				  file_size, len);
	if (len > MODEL_MAX_FILE_SIZE)
		return model_fail(p->err, 16, "file is %zu bytes, over the %u-byte cap", len,
				  MODEL_MAX_FILE_SIZE);
	m->file_size = len;
	m->crc_stored = rd32(d + len - MODEL_CRC_SIZE);
	m->crc_computed = (uint32_t)crc32(0L, d, (uInt)(len - MODEL_CRC_SIZE));
	if (m->crc_stored != m->crc_computed && !(flags & MODEL_LOAD_IGNORE_CRC))
		return model_fail(p->err, (long)(len - MODEL_CRC_SIZE),
				  "CRC mismatch: stored 0x%08x, computed 0x%08x over bytes 0..%zu (file corrupt)",
				  m->crc_stored, m->crc_computed, len - MODEL_CRC_SIZE - 1);
	if (rd16(d + 14) || !all_zero(d + 20, 12))
		return model_fail(p->err, rd16(d + 14) ? 14 : 20, "header reserved bytes are not zero");
	m->feature_count = rd16(d + 8);
	m->output_count = rd16(d + 10);
	section_count = rd16(d + 12);
	if (m->feature_count < 1 || m->feature_count > MODEL_MAX_FEATURES)
		return model_fail(p->err, 8, "feature_count %u outside 1..%d", m->feature_count,
				  MODEL_MAX_FEATURES);
	if (m->output_count < 1 || m->output_count > MODEL_MAX_OUTPUTS)
		return model_fail(p->err, 10, "output_count %u outside 1..%d", m->output_count,
				  MODEL_MAX_OUTPUTS);
	if (section_count < 3 || section_count > MODEL_MAX_SECTIONS)
		return model_fail(p->err, 12, "section_count %u outside 3..%d", section_count,
				  MODEL_MAX_SECTIONS);
	p->end = len - MODEL_CRC_SIZE;
	return parse_section_table(p, section_count);
}

static int parse_all(struct parse *p, size_t len, unsigned flags)
{
	int rc = parse_header(p, len, flags);

	if (rc)
		return rc;
	p->m->kind = p->body->type == MODEL_SECTION_TREES ? MODEL_KIND_TREES : MODEL_KIND_MLP;
	p->lay.features = p->features->offset + MODEL_SECTION_HEADER_SIZE;
	p->lay.outputs = p->outputs->offset + MODEL_SECTION_HEADER_SIZE;
	p->lay.body = p->body->offset + MODEL_SECTION_HEADER_SIZE;
	p->lay.metadata = p->metadata ? p->metadata->offset + MODEL_SECTION_HEADER_SIZE : 0;
	p->lay.reference = p->reference ? p->reference->offset + MODEL_SECTION_HEADER_SIZE : 0;
	p->lay.anomaly = p->anomaly ? p->anomaly->offset + MODEL_SECTION_HEADER_SIZE : 0;
	rc = parse_features(p);
	if (!rc)
		rc = parse_outputs(p);
	if (!rc)
		rc = p->m->kind == MODEL_KIND_TREES ? parse_trees(p) : parse_mlp(p);
	if (!rc && p->metadata)
		rc = parse_metadata(p);
	if (!rc && p->reference)
		rc = parse_reference(p);
	if (!rc && p->anomaly)
		rc = parse_anomaly(p);
	if (!rc)
		rc = model_check(p->m, &p->lay, p->err);
	return rc;
}

int model_load_buffer(const void *data, size_t len, unsigned flags, struct model **out,
		      struct reflex_err *err)
{
	struct parse p = { .data = data, .err = err };
	int rc;

	p.m = calloc(1, sizeof(*p.m));
	if (!p.m)
		return model_fail_errno(err, ENOMEM, "loading model");
	rc = parse_all(&p, len, flags);
	if (!rc)
		rc = model_fast_prepare(p.m);
	if (rc) {
		if (rc == -ENOMEM)
			model_fail_errno(err, ENOMEM, "loading model");
		model_free(p.m);
		return rc;
	}
	*out = p.m;
	return 0;
}

int model_load_file(const char *path, unsigned flags, struct model **out, struct reflex_err *err)
{
	struct reflex_err ferr = { 0 };
	char *buf = NULL;
	size_t len = 0;
	int rc;

	/* Non-blocking: a FIFO planted at a model path must not hang verify or a reload. */
	rc = fileio_read_bounded(path, MODEL_MAX_FILE_SIZE, &buf, &len, &ferr);
	if (rc) {
		reflex_err_copy(err, &ferr);
		return rc == -EFBIG ? -EINVAL : rc;
	}
	rc = model_load_buffer((const uint8_t *)buf, len, flags, out, err);
	if (rc == -EINVAL)
		reflex_err_at_file(err, path);
	free(buf);
	return rc;
}

void model_free(struct model *m)
{
	if (!m)
		return;
	for (unsigned t = 0; t < MODEL_MAX_OUTPUTS; t++)
		free(m->trees[t].nodes);
	for (unsigned l = 0; l < MODEL_MAX_LAYERS; l++) {
		free(m->layers[l].weights);
		free(m->layers[l].biases);
	}
	free(m->metadata);
	free(m->reference);
	model_anomaly_free(m->anomaly);
	model_fast_free(m);
	free(m);
}

