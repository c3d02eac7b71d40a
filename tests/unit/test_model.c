/*
 * The `.reflex` format, loader, writer and integer inference (user/model*.c).
 *
 * Validation tests start from a valid file written by the writer and break exactly
 * one rule at a byte offset given by models/FORMAT.md, then fix up the CRC (and
 * lengths, where bytes are inserted) so that only that rule is broken.
 *
 * Regenerating the shipped files (tests/data/small.reflex and the fuzz seeds):
 *   REFLEX_GEN_MODELS=1 build/san/tests/test_model
 * run from the repository root; test_shipped_small_model then checks that the
 * committed file is byte for byte what the writer produces.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "model/model.h"
#include "rng.h"

#define SMALL_MODEL_PATH "tests/data/small.reflex"
#define FUZZ_CORPUS_DIR "tests/fuzz/corpus/model"
#define IMG_CAP (2u << 20)
#define OFF_CRC (-2L) /* expected error offset: the CRC of the mutated image */

/* --- models the tests start from ------------------------------------------ */

static void must(int rc, const struct reflex_err *err)
{
	if (rc)
		fail_msg("builder failed (%d): %s", rc, err->msg);
}

#define LEAF(v) { .feature_idx = MODEL_LEAF, .leaf_value = (v) }
#define SPLIT(f, t, l, r) { .feature_idx = (f), .threshold = (t), .left = (l), .right = (r) }

/*
 * Model T: features a [0,100], b [0,1000], c [-1,1]; outputs flush_threshold [1,64]
 * and max_batch_delay_us [50,4000], scale 1; max_depth 2; metadata. Its layout
 * (FORMAT.md): features payload 40, outputs section 184 (payload 192), trees section
 * 304 (payload 312), tree 0 at 316 (nodes from 320), tree 1 at 370 (nodes from 374),
 * metadata section 404 (payload 412).
 */
static const char tree_meta[] = "created_at: 2025-10-06T12:00:00Z\nlambda: 0.1\n";

static struct model *build_tree_model(void)
{
	static const struct model_tree_node tree0[] = {
		SPLIT(0, 16383, 1, 2), LEAF(4), SPLIT(1, 100, 3, 4), LEAF(16), LEAF(64),
	};
	static const struct model_tree_node tree1[] = { SPLIT(2, 0, 1, 2), LEAF(50), LEAF(4000) };
	struct model *m = model_create(MODEL_KIND_TREES, 3, 2);
	struct reflex_err err;

	assert_non_null(m);
	m->max_depth = 2;
	must(model_set_feature(m, 0, "a", 0, 100, &err), &err);
	must(model_set_feature(m, 1, "b", 0, 1000, &err), &err);
	must(model_set_feature(m, 2, "c", -1, 1, &err), &err);
	must(model_set_output(m, 0, "flush_threshold", 1, 64, 1, &err), &err);
	must(model_set_output(m, 1, "max_batch_delay_us", 50, 4000, 1, &err), &err);
	must(model_set_tree(m, 0, tree0, 5, &err), &err);
	must(model_set_tree(m, 1, tree1, 3, &err), &err);
	must(model_meta_set(m, "created_at", "2025-10-06T12:00:00Z", &err), &err);
	must(model_meta_set(m, "lambda", "0.1", &err), &err);
	assert_string_equal(m->metadata, tree_meta);
	return m;
}

/*
 * Model M: x0, x1 in [0,1] -> 3 hidden -> 2 outputs (Increase5, Maintain), scale
 * 0.01, bounds +-1e6. Layout: mlp section 256 (payload 264), layer 0 at 268
 * (weights 292, biases 298), layer 1 at 310 (weights 334, biases 340), CRC at 348.
 * Layer 0 requantizes by 2^30 >> 31, i.e. halves with rounding up.
 */
static const int8_t mlp_w0[] = { 1, 2, -3, 4, 5, -6 };
static const int32_t mlp_b0[] = { 10, -20, 0 };
static const int8_t mlp_w1[] = { 1, -1, 2, 0, 3, -2 };
static const int32_t mlp_b1[] = { 5, -7 };

static struct model *build_mlp_model(void)
{
	struct model *m = model_create(MODEL_KIND_MLP, 2, 2);
	struct reflex_err err;

	assert_non_null(m);
	must(model_set_feature(m, 0, "x0", 0, 1, &err), &err);
	must(model_set_feature(m, 1, "x1", 0, 1, &err), &err);
	must(model_set_output(m, 0, "Increase5", -1e6, 1e6, 0.01, &err), &err);
	must(model_set_output(m, 1, "Maintain", -1e6, 1e6, 0.01, &err), &err);
	must(model_add_layer(m, 2, 3, 1u << 30, 31, 0.5, mlp_w0, mlp_b0, &err), &err);
	must(model_add_layer(m, 3, 2, 0, 0, 0.25, mlp_w1, mlp_b1, &err), &err);
	return m;
}

/* A depth-3 chain (7 nodes) declared at max_depth 3: trees payload 160, tree 0 at 164,
 * nodes from 168. */
static struct model *build_deep_model(void)
{
	static const struct model_tree_node chain[] = {
		SPLIT(0, 10, 1, 2), LEAF(1), SPLIT(0, 20, 3, 4), LEAF(2), SPLIT(0, 30, 5, 6), LEAF(3), LEAF(4),
	};
	struct model *m = model_create(MODEL_KIND_TREES, 1, 1);
	struct reflex_err err;

	assert_non_null(m);
	m->max_depth = 3;
	must(model_set_feature(m, 0, "a", 0, 1, &err), &err);
	must(model_set_output(m, 0, "y", 0, 10, 1, &err), &err);
	must(model_set_tree(m, 0, chain, 7, &err), &err);
	return m;
}

/* The model shipped as tests/data/small.reflex: the ten window features, batching outputs. */
static const char *const window_feature_names[] = {
	"queue_depth", "enqueue_rate", "dequeue_rate", "latency_p50", "latency_p95",
	"bytes_in_per_sec", "bytes_out_per_sec", "packet_size_mean", "packet_size_var", "rtt_ewma",
};
static const double window_feature_max[] = { 2e6, 2e5, 2e5, 2e5, 5e5, 1.25e9, 1.25e9, 1500, 5e5, 2e5 };

static int16_t q_of(const struct model *m, unsigned f, double raw)
{
	return model_quantize_norm(model_feature_normalize(&m->features[f], raw));
}

static struct model *build_small_model(void)
{
	struct model *m = model_create(MODEL_KIND_TREES, 10, 2);
	struct reflex_err err;

	assert_non_null(m);
	for (unsigned i = 0; i < 10; i++)
		must(model_set_feature(m, i, window_feature_names[i], i == 7 ? 40 : 0,
				       window_feature_max[i], &err), &err);
	must(model_set_output(m, 0, "flush_threshold", 1, 64, 1, &err), &err);
	must(model_set_output(m, 1, "max_batch_delay_us", 50, 4000, 1, &err), &err);
	{
		const struct model_tree_node flush[] = {
			SPLIT(1, q_of(m, 1, 5000), 1, 2),
			SPLIT(4, q_of(m, 4, 2000), 3, 4),
			SPLIT(0, q_of(m, 0, 65536), 5, 6),
			LEAF(1), LEAF(4), LEAF(16),
			SPLIT(6, q_of(m, 6, 1.25e8), 7, 8),
			LEAF(32), LEAF(64),
		};
		const struct model_tree_node delay[] = {
			SPLIT(9, q_of(m, 9, 1000), 1, 2), LEAF(50),
			SPLIT(7, q_of(m, 7, 512), 3, 4), LEAF(1000), LEAF(4000),
		};

		must(model_set_tree(m, 0, flush, 9, &err), &err);
		must(model_set_tree(m, 1, delay, 5, &err), &err);
	}
	must(model_meta_set(m, "created_at", "2025-10-06T12:00:00Z", &err), &err);
	must(model_meta_set(m, "telemetry_hash", "none (hand-built test model, not trained)", &err), &err);
	must(model_meta_set(m, "trainer_commit", "tests/unit/test_model.c", &err), &err);
	must(model_meta_set(m, "lambda", "0.1", &err), &err);
	must(model_meta_set(m, "feature_schema", "v1", &err), &err);
	return m;
}

/* A quantized 8 -> 16 -> 6 MLP from fixed pseudo-random float weights. */
static struct model *build_quantized_mlp(void)
{
	static const char *const names[] = { "rtt_us", "rtt_var_us", "bandwidth_bps", "loss_rate",
					     "loss_trend", "inflight", "cwnd", "buffer_occupancy" };
	static const char *const actions[] = { "Increase5", "Increase10", "Maintain",
					       "Decrease5", "Decrease10", "SlowStart" };
	static const double maxes[] = { 1e6, 5e5, 1e10, 1, 1, 1e4, 1e6, 1 };
	float w0[16 * 8], b0[16], w1[6 * 16], b1[6];
	struct model_float_layer layers[] = {
		{ 8, 16, w0, b0 },
		{ 16, 6, w1, b1 },
	};
	struct model *m = model_create(MODEL_KIND_MLP, 8, 6);
	struct reflex_err err;

	assert_non_null(m);
	rng_state = 42;
	for (unsigned k = 0; k < 16 * 8; k++)
		w0[k] = (float)rng_uniform(-1, 1);
	for (unsigned k = 0; k < 16; k++)
		b0[k] = (float)rng_uniform(-0.2, 0.2);
	for (unsigned k = 0; k < 6 * 16; k++)
		w1[k] = (float)rng_uniform(-1, 1);
	for (unsigned k = 0; k < 6; k++)
		b1[k] = (float)rng_uniform(-0.2, 0.2);
	for (unsigned i = 0; i < 8; i++)
		must(model_set_feature(m, i, names[i], i == 4 ? -1 : 0, maxes[i], &err), &err);
	for (unsigned k = 0; k < 6; k++)
		must(model_set_output(m, k, actions[k], -1, 1, 1, &err), &err);
	must(model_mlp_quantize(m, layers, 2, NULL, 0, &err), &err);
	must(model_meta_set(m, "trainer_commit", "tests/unit/test_model.c", &err), &err);
	return m;
}

/* --- file images ----------------------------------------------------------- */

struct img {
	uint8_t *b;
	size_t len;
};

static struct img *img_of(struct model *m)
{
	struct img *im = calloc(1, sizeof(*im));
	struct reflex_err err;
	uint8_t *buf;
	size_t len;

	assert_non_null(im);
	im->b = calloc(1, IMG_CAP);
	assert_non_null(im->b);
	must(model_serialize(m, &buf, &len, &err), &err);
	memcpy(im->b, buf, len);
	im->len = len;
	free(buf);
	model_free(m);
	return im;
}

static void img_free(struct img *im)
{
	free(im->b);
	free(im);
}

static uint32_t get32(const struct img *im, size_t off)
{
	return (uint32_t)im->b[off] | (uint32_t)im->b[off + 1] << 8 | (uint32_t)im->b[off + 2] << 16 |
	       (uint32_t)im->b[off + 3] << 24;
}

static void set8(struct img *im, size_t off, uint8_t v) { im->b[off] = v; }
static void set16(struct img *im, size_t off, uint16_t v)
{
	im->b[off] = v & 0xff;
	im->b[off + 1] = v >> 8;
}
static void set32(struct img *im, size_t off, uint32_t v)
{
	set16(im, off, v & 0xffff);
	set16(im, off + 2, v >> 16);
}
static void setf64(struct img *im, size_t off, double v)
{
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	set32(im, off, (uint32_t)bits);
	set32(im, off + 4, (uint32_t)(bits >> 32));
}

static void fix_crc(struct img *im)
{
	if (im->len >= 36)
		set32(im, im->len - 4, (uint32_t)crc32(0L, im->b, (uInt)(im->len - 4)));
}

/*
 * Insert n zero bytes at `at` (n > 0) or delete -n bytes there (n < 0), inside the
 * section whose header is at sec; its length and file_size follow.
 */
static void splice(struct img *im, size_t at, long n, size_t sec)
{
	if (n > 0) {
		memmove(im->b + at + n, im->b + at, im->len - at);
		memset(im->b + at, 0, (size_t)n);
	} else {
		memmove(im->b + at, im->b + at - n, im->len - at + n);
	}
	im->len = (size_t)((long)im->len + n);
	set32(im, sec + 4, (uint32_t)((long)get32(im, sec + 4) + n));
	set32(im, 16, (uint32_t)im->len);
}

/* --- one validation rule per test ------------------------------------------ */

enum base { BASE_TREE, BASE_MLP, BASE_DEEP };

struct rule {
	const char *name;
	enum base base;
	void (*mutate)(struct img *im);
	const char *want;  /* substring of the error message */
	long offset;       /* expected error offset, or OFF_CRC */
	bool keep_crc;     /* the rule under test is the CRC itself */
};

#define MUT(fn, ...) static void fn(struct img *im) { __VA_ARGS__; }

/* Header */
MUT(m_magic, set8(im, 0, 'X'))
MUT(m_version, set16(im, 4, 2))
MUT(m_truncated, im->len = 20)
MUT(m_header_size, set16(im, 6, 40))
MUT(m_file_size, im->len -= 1)
MUT(m_oversize, im->len = MODEL_MAX_FILE_SIZE + 8; set32(im, 16, (uint32_t)im->len))
MUT(m_crc, im->b[100] ^= 0x01)
MUT(m_reserved14, set16(im, 14, 1))
MUT(m_reserved20, set8(im, 25, 1))
MUT(m_features_0, set16(im, 8, 0))
MUT(m_features_65, set16(im, 8, 65))
MUT(m_outputs_0, set16(im, 10, 0))
MUT(m_outputs_9, set16(im, 10, 9))
MUT(m_sections_2, set16(im, 12, 2))
MUT(m_sections_17, set16(im, 12, 17))
/* Section table (T: features 32, outputs 184, trees 304, metadata 404) */
MUT(m_sections_more, set16(im, 12, 5))
MUT(m_sections_fewer, set16(im, 12, 3))
MUT(m_section_reserved, set16(im, 34, 1))
MUT(m_section_length, set32(im, 408, 100000))
MUT(m_section_unknown, set16(im, 404, 0x0042))
MUT(m_section_dup, set16(im, 404, MODEL_SECTION_FEATURES))
MUT(m_section_both, set16(im, 404, MODEL_SECTION_MLP))
MUT(m_no_features, set16(im, 32, 0x8001))
MUT(m_no_outputs, set16(im, 184, 0x8001))
MUT(m_no_body, set16(im, 304, 0x8001))
/* features and outputs */
MUT(m_features_length, set16(im, 8, 2))
MUT(m_outputs_length, set16(im, 10, 1))
MUT(m_name_unterminated, memset(im->b + 40, 'a', 32))
MUT(m_name_padding, set8(im, 50, 'x'))
MUT(m_name_empty, set8(im, 40, 0))
MUT(m_name_char, set8(im, 40, ' '))
MUT(m_name_dup_feature, set8(im, 88, 'a'))
MUT(m_name_dup_output, memcpy(im->b + 248, im->b + 192, 32))
MUT(m_feature_min_nan, setf64(im, 72, NAN))
MUT(m_feature_max_inf, setf64(im, 80, INFINITY))
MUT(m_feature_max_le_min, setf64(im, 80, 0))
MUT(m_feature_range_inf, setf64(im, 72, -1e308); setf64(im, 80, 1e308))
MUT(m_output_min_gt_max, setf64(im, 224, 100))
MUT(m_output_max_nan, setf64(im, 232, NAN))
MUT(m_output_scale_0, setf64(im, 240, 0))
MUT(m_output_scale_neg, setf64(im, 240, -1))
MUT(m_output_empty_range, setf64(im, 224, 0.2); setf64(im, 232, 0.8))
/* trees */
MUT(m_trees_short, splice(im, 314, -(long)(404 - 314), 304))
MUT(m_max_depth, set8(im, 312, 11))
MUT(m_trees_reserved, set8(im, 313, 1))
MUT(m_tree_reserved, set16(im, 318, 1))
MUT(m_node_count_0, set16(im, 316, 0))
MUT(m_node_count_cap, set16(im, 316, 3000))
MUT(m_node_count_depth, set8(im, 312, 1))
MUT(m_nodes_past, set16(im, 370, 4))
MUT(m_tree_header_past, splice(im, 370, -34, 304))
MUT(m_trees_trailing, splice(im, 404, 2, 304))
MUT(m_feature_idx, set16(im, 320, 3))
MUT(m_leaf_threshold, set16(im, 332, 5))
MUT(m_leaf_child, set16(im, 334, 2))
MUT(m_internal_value, set16(im, 328, 7))
MUT(m_child_backward, set16(im, 344, 1))
MUT(m_child_self, set16(im, 344, 2))
MUT(m_child_outside, set16(im, 346, 5))
MUT(m_child_shared, set16(im, 346, 3))
MUT(m_unreachable, set16(im, 326, 3))
MUT(m_depth, set8(im, 160, 2))
MUT(m_leaf_above, set16(im, 338, 65))
MUT(m_leaf_below, set16(im, 330 + 8, 0))
/* mlp (M) */
MUT(m_mlp_short, splice(im, 266, -(long)(348 - 266), 256))
MUT(m_layers_0, set8(im, 264, 0))
MUT(m_layers_5, set8(im, 264, 5))
MUT(m_layers_more, set8(im, 264, 3))
MUT(m_mlp_reserved, set8(im, 265, 1))
MUT(m_layer_reserved, set8(im, 280, 1))
MUT(m_units_0, set16(im, 270, 0))
MUT(m_units_257, set16(im, 270, 257))
MUT(m_weights_past, set16(im, 312, 3))
MUT(m_mlp_trailing, splice(im, 348, 3, 256))
MUT(m_layer0_in, set16(im, 268, 3); splice(im, 298, 3, 256))
MUT(m_layer1_in, set16(im, 310, 4); splice(im, 340, 2, 256))
MUT(m_last_out, set16(im, 312, 3); splice(im, 348, 7, 256))
MUT(m_last_requant, set32(im, 314, 5))
MUT(m_mult_0, set32(im, 272, 0))
MUT(m_mult_big, set32(im, 272, 0x80000000u))
MUT(m_shift_0, set8(im, 276, 0))
MUT(m_shift_63, set8(im, 276, 63))
MUT(m_weight_scale_0, setf64(im, 284, 0))
MUT(m_weight_scale_nan, setf64(im, 326, NAN))
MUT(m_bias, set32(im, 298, 1u << 30))
MUT(m_bias_neg, set32(im, 344, (uint32_t)-(1 << 30)))
/* metadata (T: payload at 412) */
MUT(m_meta_nul, set8(im, 415, 0))
MUT(m_meta_overlong, set8(im, 415, 0xc0); set8(im, 416, 0x80))
MUT(m_meta_surrogate, set8(im, 415, 0xed); set8(im, 416, 0xa0); set8(im, 417, 0x80))
MUT(m_meta_cut, set8(im, im->len - 5, 0xe2))
MUT(m_meta_big, splice(im, im->len - 4, MODEL_MAX_METADATA + 1 - (long)(sizeof(tree_meta) - 1), 404))

static const struct rule rules[] = {
	{ "magic", BASE_TREE, m_magic, "bad magic", 0, false },
	{ "version", BASE_TREE, m_version, "unsupported format version 2 (this reader knows version 1)", 4, false },
	{ "truncated", BASE_TREE, m_truncated, "truncated: 20 bytes", 0, false },
	{ "header_size", BASE_TREE, m_header_size, "header_size 40", 6, false },
	{ "file_size", BASE_TREE, m_file_size, "file_size field says", 16, false },
	{ "file_cap", BASE_TREE, m_oversize, "over the 1048576-byte cap", 16, false },
	{ "crc", BASE_TREE, m_crc, "CRC mismatch", OFF_CRC, true },
	{ "header_reserved14", BASE_TREE, m_reserved14, "header reserved bytes", 14, false },
	{ "header_reserved20", BASE_TREE, m_reserved20, "header reserved bytes", 20, false },
	{ "feature_count_0", BASE_TREE, m_features_0, "feature_count 0 outside 1..64", 8, false },
	{ "feature_count_65", BASE_TREE, m_features_65, "feature_count 65 outside 1..64", 8, false },
	{ "output_count_0", BASE_TREE, m_outputs_0, "output_count 0 outside 1..8", 10, false },
	{ "output_count_9", BASE_TREE, m_outputs_9, "output_count 9 outside 1..8", 10, false },
	{ "section_count_2", BASE_TREE, m_sections_2, "section_count 2 outside 3..16", 12, false },
	{ "section_count_17", BASE_TREE, m_sections_17, "section_count 17 outside 3..16", 12, false },
	{ "section_past_end", BASE_TREE, m_sections_more, "section 4 of 5: header runs past", OFF_CRC, false },
	{ "section_gap", BASE_TREE, m_sections_fewer, "between the last of 3 sections and the CRC", 404, false },
	{ "section_reserved", BASE_TREE, m_section_reserved, "section 0: reserved field is not zero", 34, false },
	{ "section_length", BASE_TREE, m_section_length, "section 3 (metadata): length 100000 runs past", 408, false },
	{ "section_unknown", BASE_TREE, m_section_unknown, "unknown type 0x0042 (not marked optional)", 404, false },
	{ "section_duplicate", BASE_TREE, m_section_dup, "section 3: second features section", 404, false },
	{ "section_trees_and_mlp", BASE_TREE, m_section_both, "either a trees or an mlp section, not both", 404, false },
	{ "no_features", BASE_TREE, m_no_features, "no features section", 12, false },
	{ "no_outputs", BASE_TREE, m_no_outputs, "no outputs section", 12, false },
	{ "no_model", BASE_TREE, m_no_body, "no model section (trees or mlp)", 12, false },
	{ "features_length", BASE_TREE, m_features_length, "features section length 144, expected 96", 36, false },
	{ "outputs_length", BASE_TREE, m_outputs_length, "outputs section length 112, expected 56", 188, false },
	{ "name_unterminated", BASE_TREE, m_name_unterminated, "feature 0: name is not NUL-terminated", 40, false },
	{ "name_padding", BASE_TREE, m_name_padding, "feature 0: name padding after the NUL is not zero", 41, false },
	{ "name_empty", BASE_TREE, m_name_empty, "feature 0: empty name", 40, false },
	{ "name_char", BASE_TREE, m_name_char, "feature 0: name byte 0x20", 40, false },
	{ "name_dup_feature", BASE_TREE, m_name_dup_feature, "feature 1: name 'a' repeats feature 0", 88, false },
	{ "name_dup_output", BASE_TREE, m_name_dup_output, "output 1: name 'flush_threshold' repeats output 0", 248, false },
	{ "feature_min_nan", BASE_TREE, m_feature_min_nan, "feature 0 (a): min is not finite", 72, false },
	{ "feature_max_inf", BASE_TREE, m_feature_max_inf, "feature 0 (a): max is not finite", 80, false },
	{ "feature_max_le_min", BASE_TREE, m_feature_max_le_min, "feature 0 (a): max 0 must be above min 0", 80, false },
	{ "feature_range_inf", BASE_TREE, m_feature_range_inf, "max - min finite", 80, false },
	{ "output_min_gt_max", BASE_TREE, m_output_min_gt_max, "output 0 (flush_threshold): bounds [100, 64]", 224, false },
	{ "output_max_nan", BASE_TREE, m_output_max_nan, "output 0 (flush_threshold): bounds [1, nan]", 224, false },
	{ "output_scale_0", BASE_TREE, m_output_scale_0, "output 0 (flush_threshold): scale 0 must be finite and > 0", 240, false },
	{ "output_scale_neg", BASE_TREE, m_output_scale_neg, "scale -1 must be finite and > 0", 240, false },
	{ "output_empty_range", BASE_TREE, m_output_empty_range, "no value representable at scale 1 lies in [0.2, 0.8]", 224, false },
	{ "trees_short", BASE_TREE, m_trees_short, "trees section length 2, shorter than its 4-byte header", 308, false },
	{ "max_depth_limit", BASE_TREE, m_max_depth, "max_depth 11 exceeds the format limit 10", 312, false },
	{ "trees_reserved", BASE_TREE, m_trees_reserved, "trees section: reserved bytes are not zero", 313, false },
	{ "tree_reserved", BASE_TREE, m_tree_reserved, "tree 0: reserved field is not zero", 318, false },
	{ "node_count_0", BASE_TREE, m_node_count_0, "tree 0: node_count 0 outside 1..2047", 316, false },
	{ "node_count_cap", BASE_TREE, m_node_count_cap, "tree 0: node_count 3000 outside 1..2047", 316, false },
	{ "node_count_depth", BASE_TREE, m_node_count_depth, "tree 0: 5 nodes, more than 3 allowed at max_depth 1", 316, false },
	{ "nodes_past_section", BASE_TREE, m_nodes_past, "tree 1: 4 nodes run past the trees section", 374, false },
	{ "tree_header_past", BASE_TREE, m_tree_header_past, "tree 1: header runs past the trees section", 370, false },
	{ "trees_trailing", BASE_TREE, m_trees_trailing, "trees section: 2 bytes after the last tree", 404, false },
	{ "feature_idx", BASE_TREE, m_feature_idx, "tree 0 node 0: feature_idx 3 >= feature_count 3", 320, false },
	{ "leaf_threshold", BASE_TREE, m_leaf_threshold, "tree 0 node 1: leaf has a nonzero threshold or child", 332, false },
	{ "leaf_child", BASE_TREE, m_leaf_child, "tree 0 node 1: leaf has a nonzero threshold or child", 332, false },
	{ "internal_leaf_value", BASE_TREE, m_internal_value, "tree 0 node 0: internal node has leaf_value 7", 328, false },
	{ "child_backward", BASE_TREE, m_child_backward, "tree 0 node 2: left child 1 does not point forward", 344, false },
	{ "child_self", BASE_TREE, m_child_self, "tree 0 node 2: left child 2 does not point forward", 344, false },
	{ "child_outside", BASE_TREE, m_child_outside, "tree 0 node 2: right child 5 is outside the tree (5 nodes)", 346, false },
	{ "child_shared", BASE_TREE, m_child_shared, "tree 0 node 2: right child 3 already has a parent", 346, false },
	{ "node_unreachable", BASE_TREE, m_unreachable, "tree 0 node 2: unreachable (no parent)", 340, false },
	{ "depth", BASE_DEEP, m_depth, "tree 0 node 4: left child 5 at depth 3 exceeds max_depth 2", 212, false },
	{ "leaf_above_bounds", BASE_TREE, m_leaf_above, "tree 0 node 1: leaf value 65 (65 flush_threshold) outside the bounds 1..64", 338, false },
	{ "leaf_below_bounds", BASE_TREE, m_leaf_below, "tree 0 node 1: leaf value 0", 338, false },
	{ "mlp_short", BASE_MLP, m_mlp_short, "mlp section length 2, shorter than its 4-byte header", 260, false },
	{ "layer_count_0", BASE_MLP, m_layers_0, "layer_count 0 outside 1..4", 264, false },
	{ "layer_count_5", BASE_MLP, m_layers_5, "layer_count 5 outside 1..4", 264, false },
	{ "layer_header_past", BASE_MLP, m_layers_more, "layer 2: header runs past the mlp section", 348, false },
	{ "mlp_reserved", BASE_MLP, m_mlp_reserved, "mlp section: reserved bytes are not zero", 265, false },
	{ "layer_reserved", BASE_MLP, m_layer_reserved, "layer 0: reserved bytes are not zero", 277, false },
	{ "units_0", BASE_MLP, m_units_0, "layer 0: 2 -> 0 units, each must be 1..256", 268, false },
	{ "units_257", BASE_MLP, m_units_257, "layer 0: 2 -> 257 units, each must be 1..256", 268, false },
	{ "weights_past", BASE_MLP, m_weights_past, "layer 1: 9 weights and 3 biases run past the mlp section", 310, false },
	{ "mlp_trailing", BASE_MLP, m_mlp_trailing, "mlp section: 3 bytes after the last layer", 348, false },
	{ "layer0_in_count", BASE_MLP, m_layer0_in, "layer 0: in_count 3, expected 2 (feature_count)", 268, false },
	{ "layer1_in_count", BASE_MLP, m_layer1_in, "layer 1: in_count 4, expected 3 (previous out_count)", 310, false },
	{ "last_out_count", BASE_MLP, m_last_out, "layer 1: out_count 3, expected output_count 2", 312, false },
	{ "last_requant", BASE_MLP, m_last_requant, "layer 1: last layer must have requant 0 >> 0", 314, false },
	{ "requant_mult_0", BASE_MLP, m_mult_0, "layer 0: requant_mult 0 outside 1..2147483647", 272, false },
	{ "requant_mult_big", BASE_MLP, m_mult_big, "layer 0: requant_mult 2147483648 outside", 272, false },
	{ "requant_shift_0", BASE_MLP, m_shift_0, "layer 0: requant_shift 0 outside 1..62", 276, false },
	{ "requant_shift_63", BASE_MLP, m_shift_63, "layer 0: requant_shift 63 outside 1..62", 276, false },
	{ "weight_scale_0", BASE_MLP, m_weight_scale_0, "layer 0: weight_scale 0 must be finite and > 0", 284, false },
	{ "weight_scale_nan", BASE_MLP, m_weight_scale_nan, "layer 1: weight_scale nan must be finite", 326, false },
	{ "bias_above", BASE_MLP, m_bias, "layer 0: bias 0 = 1073741824 outside +-1073741823", 298, false },
	{ "bias_below", BASE_MLP, m_bias_neg, "layer 1: bias 1 = -1073741824 outside", 344, false },
	{ "metadata_nul", BASE_TREE, m_meta_nul, "metadata contains a NUL byte", 415, false },
	{ "metadata_overlong", BASE_TREE, m_meta_overlong, "metadata is not valid UTF-8", 415, false },
	{ "metadata_surrogate", BASE_TREE, m_meta_surrogate, "metadata is not valid UTF-8", 415, false },
	{ "metadata_cut_sequence", BASE_TREE, m_meta_cut, "metadata is not valid UTF-8", 412 + sizeof(tree_meta) - 2, false },
	{ "metadata_cap", BASE_TREE, m_meta_big, "metadata section length 65537 over the 65536 cap", 408, false },
};

static struct img *img_of_base(enum base base)
{
	switch (base) {
	case BASE_MLP: return img_of(build_mlp_model());
	case BASE_DEEP: return img_of(build_deep_model());
	case BASE_TREE: break;
	}
	return img_of(build_tree_model());
}

static void test_rule(void **state)
{
	const struct rule *r = *state;
	struct img *im = img_of_base(r->base);
	struct model *sentinel = (struct model *)(uintptr_t)0x1, *m = sentinel;
	struct reflex_err err = { 0 };
	int rc;

	/* The base image is valid; the rule alone makes it invalid. */
	rc = model_load_buffer(im->b, im->len, 0, &m, &err);
	if (rc)
		fail_msg("base model of rule %s does not load: %s", r->name, err.msg);
	model_free(m);
	m = sentinel;

	r->mutate(im);
	if (!r->keep_crc)
		fix_crc(im);
	rc = model_load_buffer(im->b, im->len, 0, &m, &err);
	assert_int_equal(rc, -EINVAL);
	assert_ptr_equal(m, sentinel); /* nothing handed out */
	if (!strstr(err.msg, r->want))
		fail_msg("rule %s: error \"%s\" does not contain \"%s\"", r->name, err.msg, r->want);
	assert_int_equal(err.offset, r->offset == OFF_CRC ? (long)im->len - 4 : r->offset);
	img_free(im);
}

/* --- round trips ------------------------------------------------------------ */

static void random_raw(const struct model *m, double *raw)
{
	for (unsigned i = 0; i < m->feature_count; i++) {
		const struct model_feature *f = &m->features[i];
		double span = f->max - f->min;

		raw[i] = rng_uniform(f->min - 0.1 * span, f->max + 0.1 * span);
	}
}

static void assert_same_decisions(const struct model *a, const struct model *b)
{
	double raw[MODEL_MAX_FEATURES];
	int16_t qa[MODEL_MAX_FEATURES], qb[MODEL_MAX_FEATURES];
	int32_t va[MODEL_MAX_OUTPUTS], vb[MODEL_MAX_OUTPUTS];

	for (unsigned n = 0; n < 2000; n++) {
		random_raw(a, raw);
		model_quantize(a, raw, NULL, qa);
		model_quantize(b, raw, NULL, qb);
		assert_memory_equal(qa, qb, a->feature_count * sizeof(qa[0]));
		model_eval(a, qa, va);
		model_eval(b, qb, vb);
		for (unsigned k = 0; k < a->output_count; k++)
			assert_int_equal(va[k], vb[k]);
	}
}

static void round_trip(struct model *built)
{
	struct reflex_err err;
	struct model *loaded = NULL;
	uint8_t *buf, *buf2;
	size_t len, len2;

	must(model_serialize(built, &buf, &len, &err), &err);
	must(model_load_buffer(buf, len, 0, &loaded, &err), &err);
	assert_int_equal(loaded->kind, built->kind);
	assert_int_equal(loaded->crc_stored, loaded->crc_computed);
	assert_int_equal(loaded->file_size, len);
	assert_int_equal(loaded->metadata_len, built->metadata_len);
	if (built->metadata_len)
		assert_string_equal(loaded->metadata, built->metadata);
	for (unsigned k = 0; k < built->output_count; k++) {
		assert_string_equal(loaded->outputs[k].name, built->outputs[k].name);
		assert_int_equal(loaded->outputs[k].qmin, built->outputs[k].qmin);
		assert_int_equal(loaded->outputs[k].qmax, built->outputs[k].qmax);
	}
	/* Serializing the loaded model gives the same bytes. */
	must(model_serialize(loaded, &buf2, &len2, &err), &err);
	assert_int_equal(len2, len);
	assert_memory_equal(buf2, buf, len);
	assert_same_decisions(built, loaded);
	free(buf);
	free(buf2);
	model_free(loaded);
	model_free(built);
}

static void test_round_trip_tree(void **state)
{
	(void)state;
	round_trip(build_tree_model());
	round_trip(build_small_model());
	round_trip(build_deep_model());
}

static void test_round_trip_mlp(void **state)
{
	(void)state;
	round_trip(build_mlp_model());
	round_trip(build_quantized_mlp());
}

static void test_optional_section_skipped(void **state)
{
	struct img *im = img_of(build_tree_model());
	struct reflex_err err;
	struct model *m = NULL;

	(void)state;
	set16(im, 404, 0x8042); /* the metadata section becomes an unknown optional one */
	fix_crc(im);
	must(model_load_buffer(im->b, im->len, 0, &m, &err), &err);
	assert_int_equal(m->metadata_len, 0);
	assert_int_equal(m->section_count, 4);
	assert_int_equal(m->sections[3].type, 0x8042);
	assert_int_equal(m->sections[3].offset, 404);
	model_free(m);
	img_free(im);
}

static void test_ignore_crc_flag(void **state)
{
	struct img *im = img_of(build_tree_model());
	struct reflex_err err;
	struct model *m = NULL;

	(void)state;
	im->b[im->len - 1] ^= 0xff;
	assert_int_equal(model_load_buffer(im->b, im->len, 0, &m, &err), -EINVAL);
	must(model_load_buffer(im->b, im->len, MODEL_LOAD_IGNORE_CRC, &m, &err), &err);
	assert_int_not_equal(m->crc_stored, m->crc_computed);
	model_free(m);
	img_free(im);
}

/* --- the reference section ------------------------------------------------ */

/* 20 training rows of the 3-feature tree model: a spread evenly, b constant, c two-valued. */
static struct model *build_reference_model(void)
{
	struct model *m = build_tree_model();
	struct reflex_err err;
	int16_t q[20 * 3];

	for (int i = 0; i < 20; i++) {
		q[i * 3] = (int16_t)(100 * i);
		q[i * 3 + 1] = 5;
		q[i * 3 + 2] = i < 15 ? 0 : MODEL_Q_MAX;
	}
	must(model_reference_build(m, q, 20, 10, &err), &err);
	return m;
}

#define REF_SECTION_SIZE (8 + 3 * (2 * 9 + 4 * 10))

static void test_reference_build(void **state)
{
	struct model *m = build_reference_model();
	const struct model_reference *r = m->reference;

	(void)state;
	assert_int_equal(r->bin_count, 10);
	assert_int_equal(r->sample_count, 20);
	/* Edge b is the sorted column's element 2b+1: a's 100, 300, .., 1700, two rows a bin. */
	for (unsigned b = 0; b < 9; b++)
		assert_int_equal(r->edges[0][b], 200 * b + 100);
	for (unsigned b = 0; b < 10; b++)
		assert_int_equal(r->counts[0][b], 2);
	assert_int_equal(r->counts[1][0], 20);
	assert_int_equal(r->counts[1][9], 0);
	/* c: 15 zeros fill bin 0 (edges 0..6 are 0), the five 32767s land in bin 7. */
	assert_int_equal(r->edges[2][6], 0);
	assert_int_equal(r->edges[2][7], MODEL_Q_MAX);
	assert_int_equal(r->counts[2][0], 15);
	assert_int_equal(r->counts[2][1], 0);
	assert_int_equal(r->counts[2][7], 5);
	assert_int_equal(model_reference_bin(r, 0, 101), 1);
	assert_int_equal(model_reference_bin(r, 0, 30000), 9);
	assert_int_equal(model_reference_bin(r, 2, 1), 7);
	model_free(m);
}

static void test_reference_round_trip(void **state)
{
	struct img *im = img_of(build_reference_model());
	size_t payload = im->len - MODEL_CRC_SIZE - REF_SECTION_SIZE;
	struct model *want = build_reference_model(), *m = NULL;
	struct reflex_err err;

	(void)state;
	assert_int_equal(im->b[payload - 8], 0x01);
	assert_int_equal(im->b[payload - 7], 0x80);
	assert_int_equal(get32(im, payload - 4), REF_SECTION_SIZE);
	assert_int_equal(im->b[payload], 1);       /* version */
	assert_int_equal(im->b[payload + 2], 10);  /* bin_count */
	assert_int_equal(get32(im, payload + 4), 20);
	assert_int_equal(im->b[payload + 8] | im->b[payload + 9] << 8, 100); /* a's first edge */
	assert_int_equal(get32(im, payload + 8 + 58 + 18), 20);             /* b's bin 0 */
	must(model_load_buffer(im->b, im->len, 0, &m, &err), &err);
	assert_non_null(m->reference);
	assert_memory_equal(m->reference, want->reference, sizeof(*want->reference));
	assert_int_equal(m->section_count, 5);
	model_free(m);
	model_free(want);
	img_free(im);
}

static void expect_refused(struct img *im, const char *needle)
{
	struct reflex_err err = { 0 };
	struct model *m = NULL;

	fix_crc(im);
	assert_int_equal(model_load_buffer(im->b, im->len, 0, &m, &err), -EINVAL);
	assert_null(m);
	if (!strstr(err.msg, needle))
		fail_msg("error '%s' does not mention '%s'", err.msg, needle);
}

static void test_reference_rules(void **state)
{
	struct img *im = img_of(build_reference_model());
	size_t payload = im->len - MODEL_CRC_SIZE - REF_SECTION_SIZE;
	struct reflex_err err;
	struct model *m = NULL;

	(void)state;
	set16(im, payload + 8 + 2, 50); /* a's edge 1 below edge 0 */
	expect_refused(im, "edge 1");
	set16(im, payload + 8 + 2, 300);
	set32(im, payload + 8 + 18, 3); /* a's bin 0 holds 3: the counts sum to 21 */
	expect_refused(im, "sum to 21");
	set32(im, payload + 8 + 18, 2);
	set16(im, payload + 8, 0x8000); /* a negative edge */
	expect_refused(im, "edge 0");
	set16(im, payload + 8, 100);
	set8(im, payload + 2, 9);
	expect_refused(im, "bin_count 9");
	set8(im, payload + 2, 10);
	set8(im, payload + 3, 1);
	expect_refused(im, "reserved");
	set8(im, payload + 3, 0);
	set32(im, payload + 4, 0);
	expect_refused(im, "sample_count is 0");
	set32(im, payload + 4, 20);
	/* A reference version this reader does not know: the model loads without one. */
	set16(im, payload, 3);
	fix_crc(im);
	must(model_load_buffer(im->b, im->len, 0, &m, &err), &err);
	assert_null(m->reference);
	model_free(m);
	img_free(im);
}

static char tmpdir[64];

static int setup_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_model.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmpdir(void **state)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char path[128];

	(void)state;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
			unlink(path);
		}
	if (d)
		closedir(d);
	return rmdir(tmpdir);
}

static unsigned dir_entries(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	unsigned n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_write_file_atomic(void **state)
{
	struct model *m = build_tree_model(), *loaded = NULL, *bad;
	struct reflex_err err;
	char path[128];
	struct stat st;

	(void)state;
	snprintf(path, sizeof(path), "%s/t.reflex", tmpdir);
	must(model_write_file(m, path, &err), &err);
	assert_int_equal(dir_entries(), 1);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	must(model_load_file(path, 0, &loaded, &err), &err);
	assert_same_decisions(m, loaded);
	model_free(loaded);

	/* An invalid model is refused before anything is written: the old file stays. */
	bad = build_tree_model();
	bad->trees[0].nodes[1].leaf_value = 99;
	assert_int_equal(model_write_file(bad, path, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "tree 0 node 1: leaf value 99"));
	assert_int_equal(dir_entries(), 1);
	must(model_load_file(path, 0, &loaded, &err), &err);
	assert_int_equal(loaded->trees[0].nodes[1].leaf_value, 4);
	model_free(loaded);
	model_free(bad);

	/* A directory that does not exist: an error naming it, nothing created. */
	snprintf(path, sizeof(path), "%s/missing/t.reflex", tmpdir);
	assert_int_equal(model_write_file(m, path, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "missing/t.reflex"));
	model_free(m);
}

static void test_load_file_errors(void **state)
{
	struct model *m = (struct model *)(uintptr_t)0x1;
	struct reflex_err err;
	char path[128];
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/none.reflex", tmpdir);
	assert_int_equal(model_load_file(path, 0, &m, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "none.reflex"));
	assert_int_equal(model_load_file(tmpdir, 0, &m, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not a regular file"));

	snprintf(path, sizeof(path), "%s/big.reflex", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(ftruncate(fileno(f), MODEL_MAX_FILE_SIZE + 1), 0);
	fclose(f);
	assert_int_equal(model_load_file(path, 0, &m, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "larger than 1048576 bytes (1048577)"));

	snprintf(path, sizeof(path), "%s/empty.reflex", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(model_load_file(path, 0, &m, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "empty.reflex: byte 0: bad magic"));
	assert_ptr_equal(m, (struct model *)(uintptr_t)0x1);
}

/* --- builder checks --------------------------------------------------------- */

static void test_builder_rules(void **state)
{
	struct model *m = model_create(MODEL_KIND_TREES, 2, 1);
	struct reflex_err err;
	const struct model_tree_node leaf[] = { LEAF(3) };

	(void)state;
	assert_null(model_create(MODEL_KIND_TREES, 0, 1));
	assert_null(model_create(MODEL_KIND_TREES, 65, 1));
	assert_null(model_create(MODEL_KIND_MLP, 1, 9));
	assert_null(model_create((enum model_kind)7, 1, 1));
	assert_non_null(m);
	assert_int_equal(model_set_feature(m, 0, "has space", 0, 1, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "name byte 0x20"));
	assert_int_equal(model_set_feature(m, 0, "a", 1, 1, &err), -EINVAL);
	assert_int_equal(model_set_feature(m, 2, "a", 0, 1, &err), -EINVAL);
	assert_int_equal(model_set_feature(m, 0, "a_name_that_is_longer_than_31_bytes", 0, 1, &err),
			 -EINVAL);
	assert_int_equal(model_set_output(m, 0, "y", 0, 1, 0, &err), -EINVAL);
	assert_int_equal(model_set_output(m, 0, "y", 0.2, 0.8, 1, &err), -EINVAL);
	assert_int_equal(model_add_layer(m, 1, 1, 0, 0, 1, NULL, NULL, &err), -EINVAL);
	must(model_set_feature(m, 0, "a", 0, 1, &err), &err);
	must(model_set_feature(m, 1, "b", 0, 1, &err), &err);
	must(model_set_output(m, 0, "y", 0, 10, 1, &err), &err);
	assert_int_equal(model_validate(m, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "tree 0: no nodes"));
	must(model_set_tree(m, 0, leaf, 1, &err), &err);
	must(model_validate(m, &err), &err);
	must(model_set_feature(m, 1, "a", 0, 1, &err), &err);
	assert_int_equal(model_validate(m, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "feature 1: name 'a' repeats feature 0"));
	/* Built offsets are those of the file the writer would produce. */
	assert_int_equal(err.offset, 40 + 48);
	must(model_set_feature(m, 1, "b", 0, 1, &err), &err);
	must(model_validate(m, &err), &err);
	/* Bounds changed behind model_set_output's back are caught. */
	m->outputs[0].max = 2;
	assert_int_equal(model_validate(m, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "do not match the bounds"));
	model_free(m);
}

/* --- quantization and inference --------------------------------------------- */

static void test_quantize_features(void **state)
{
	struct model *m = build_tree_model();
	double raw[3];
	int16_t q[3];

	(void)state;
	raw[0] = 50;      /* 0.5 * 32767 + 0.5 = 16384 */
	raw[1] = -5;      /* below min */
	raw[2] = 3;       /* above max */
	model_quantize(m, raw, NULL, q);
	assert_int_equal(q[0], 16384);
	assert_int_equal(q[1], 0);
	assert_int_equal(q[2], MODEL_Q_MAX);
	raw[0] = NAN;
	raw[1] = INFINITY;
	raw[2] = -INFINITY;
	model_quantize(m, raw, NULL, q);
	assert_int_equal(q[0], 0);
	assert_int_equal(q[1], MODEL_Q_MAX);
	assert_int_equal(q[2], 0);
	raw[0] = 100;     /* max */
	raw[1] = 0;       /* min */
	raw[2] = 0;       /* mid of [-1,1] */
	model_quantize(m, raw, NULL, q);
	assert_int_equal(q[0], MODEL_Q_MAX);
	assert_int_equal(q[1], 0);
	assert_int_equal(q[2], 16384);
	model_free(m);
}

static void test_quantization_error_bounds(void **state)
{
	struct model_feature f = { .name = "x", .min = -3, .max = 1234.5 };

	(void)state;
	rng_state = 7;
	for (unsigned n = 0; n < 100000; n++) {
		double x = rng_uniform(f.min, f.max);
		double norm = (x - f.min) / (f.max - f.min);
		int16_t q = model_quantize_norm(model_feature_normalize(&f, x));
		int16_t t = (int16_t)(rng_next() % (MODEL_Q_MAX + 1));
		double edge = model_threshold_raw(&f, t);

		/* Rounding to nearest: at most half a step from the exact value. */
		assert_true(fabs(q / (double)MODEL_Q_MAX - norm) <= 0.5 / MODEL_Q_MAX + 1e-12);
		/* The raw threshold agrees with the integer comparison away from the edge itself. */
		if (fabs(x - edge) > 1e-9 * (f.max - f.min))
			assert_int_equal(q <= t, x < edge);
	}
	assert_true(isinf(model_threshold_raw(&f, -1)) && model_threshold_raw(&f, -1) < 0);
	assert_true(isinf(model_threshold_raw(&f, MODEL_Q_MAX)));
}

static void test_map_features(void **state)
{
	struct model *m = build_tree_model();
	const char *const names[] = { "c", "x", "a", "b" };
	const double raw[] = { -1, 999, 50, 0 };
	struct reflex_err err;
	int map[3];
	int16_t q[3];

	(void)state;
	must(model_map_features(m, names, 4, map, &err), &err);
	assert_int_equal(map[0], 2);
	assert_int_equal(map[1], 3);
	assert_int_equal(map[2], 0);
	model_quantize(m, raw, map, q);
	assert_int_equal(q[0], 16384);
	assert_int_equal(q[1], 0);
	assert_int_equal(q[2], 0);
	assert_int_equal(model_map_features(m, names, 2, map, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "model feature 0 'a' is not among the 2 provided inputs"));
	model_free(m);
}

static void eval_raw(const struct model *m, const double *raw, int32_t *value)
{
	int16_t q[MODEL_MAX_FEATURES];

	model_quantize(m, raw, NULL, q);
	model_eval(m, q, value);
}

static void test_eval_tree(void **state)
{
	struct model *m = build_tree_model();
	int32_t v[2];

	(void)state;
	/* a <= ~50 -> 4; else b <= ~3.07 -> 16 else 64. c <= ~-1 -> 50 else 4000. */
	eval_raw(m, (const double[]){ 49, 500, -1 }, v);
	assert_int_equal(v[0], 4);
	assert_int_equal(v[1], 50);
	eval_raw(m, (const double[]){ 51, 3, 0 }, v);
	assert_int_equal(v[0], 16);
	assert_int_equal(v[1], 4000);
	eval_raw(m, (const double[]){ 51, 4, NAN }, v);
	assert_int_equal(v[0], 64);
	assert_int_equal(v[1], 50); /* NaN reads as min */
	assert_true(model_value_raw(m, 1, v[1]) == 50.0);
	model_free(m);
}

static void test_clamp_tree(void **state)
{
	struct model *m = build_tree_model();
	struct reflex_err err;
	struct model_explain ex;
	int32_t v[2];
	int16_t q[3];

	(void)state;
	/* Narrowed bounds (model_validate would now refuse leaf 64): eval still clamps. */
	must(model_set_output(m, 0, "flush_threshold", 8, 32, 1, &err), &err);
	eval_raw(m, (const double[]){ 51, 4, 0 }, v);
	assert_int_equal(v[0], 32);
	eval_raw(m, (const double[]){ 0, 4, 0 }, v);
	assert_int_equal(v[0], 8);
	model_quantize(m, (const double[]){ 51, 4, 0 }, NULL, q);
	assert_int_equal(model_explain_tree(m, 0, q, &ex), 0);
	assert_int_equal(ex.leaf_value, 64);
	assert_int_equal(ex.value, 32);
	model_free(m);
}

static void test_mlp_forward_hand(void **state)
{
	struct model *m = build_mlp_model();
	struct reflex_err err;
	int32_t v[2];

	(void)state;
	/*
	 * x = (1, 0.5): q = (32767, 16384); a = ((32767*127+16383)/32767, (16384*127+16383)/32767)
	 * = (127, 64). Layer 0: acc = (10+127+128, -20-381+256, 635-384) = (265, -145, 251);
	 * ReLU and halving with rounding: (133 -> 127 saturated, 0, 126).
	 * Layer 1: (5 + 127 - 0 + 2*126, -7 + 0 + 0 - 2*126) = (384, -259).
	 */
	eval_raw(m, (const double[]){ 1, 0.5 }, v);
	assert_int_equal(v[0], 384);
	assert_int_equal(v[1], -259);
	assert_int_equal(model_argmax(v, 2), 0);
	assert_true(fabs(model_value_raw(m, 0, v[0]) - 3.84) < 1e-12);
	/* x = (0, 0): a = (0, 0); layer 0: (10, -20, 0) -> (5, 0, 0); layer 1: (10, -7). */
	eval_raw(m, (const double[]){ 0, 0 }, v);
	assert_int_equal(v[0], 10);
	assert_int_equal(v[1], -7);
	/* x = (0, 1): a = (0, 127); layer 0: (10+254, -20+508, -762) = (264, 488, -762)
	 * -> (132 -> 127, 244 -> 127, 0); layer 1: (5+127-127, -7+381) = (5, 374). */
	eval_raw(m, (const double[]){ 0, 1 }, v);
	assert_int_equal(v[0], 5);
	assert_int_equal(v[1], 374);
	assert_int_equal(model_argmax(v, 2), 1);
	/* Clamping of the last layer to the output bounds: Maintain in [-1, 1] at 0.01 -> -100..100. */
	must(model_set_output(m, 1, "Maintain", -1, 1, 0.01, &err), &err);
	eval_raw(m, (const double[]){ 0, 1 }, v);
	assert_int_equal(v[1], 100);
	eval_raw(m, (const double[]){ 1, 0.5 }, v);
	assert_int_equal(v[1], -100);
	model_free(m);
}

static void test_argmax_ties(void **state)
{
	(void)state;
	assert_int_equal(model_argmax((const int32_t[]){ 3, 7, 7, -1 }, 4), 1);
	assert_int_equal(model_argmax((const int32_t[]){ -5 }, 1), 0);
}

/* One layer: the int8 result is within the analytic bound of the float one. */
static void test_mlp_quantization_bound_one_layer(void **state)
{
	float w[3 * 4], b[3], x[4], y[3];
	struct model_float_layer layer = { 4, 3, w, b };
	struct model *m = model_create(MODEL_KIND_MLP, 4, 3);
	struct reflex_err err;
	double e_in = 0.5 / 127 + 0.5 / MODEL_Q_MAX + 1e-9;

	(void)state;
	assert_non_null(m);
	rng_state = 11;
	for (unsigned k = 0; k < 12; k++)
		w[k] = (float)rng_uniform(-2, 2);
	for (unsigned k = 0; k < 3; k++)
		b[k] = (float)rng_uniform(-1, 1);
	for (unsigned i = 0; i < 4; i++) {
		char name[8];

		snprintf(name, sizeof(name), "x%u", i);
		must(model_set_feature(m, i, name, 0, 1, &err), &err);
	}
	for (unsigned k = 0; k < 3; k++) {
		char name[8];

		snprintf(name, sizeof(name), "y%u", k);
		must(model_set_output(m, k, name, -1, 1, 1, &err), &err);
	}
	must(model_mlp_quantize(m, &layer, 1, NULL, 0, &err), &err);
	must(model_validate(m, &err), &err);
	for (unsigned n = 0; n < 20000; n++) {
		double raw[4];
		int32_t v[3];

		for (unsigned i = 0; i < 4; i++)
			x[i] = (float)(raw[i] = rng_uniform(0, 1));
		model_mlp_forward_float(&layer, 1, x, y);
		eval_raw(m, raw, v);
		for (unsigned o = 0; o < 3; o++) {
			double ws = m->layers[0].weight_scale, acc_scale = ws / 127, bound = acc_scale / 2;

			/* input rounding x |w| + weight rounding x input + bias rounding */
			for (unsigned i = 0; i < 4; i++)
				bound += fabs(w[o * 4 + i]) * e_in + ws / 2;
			if (fabs(model_value_raw(m, o, v[o]) - y[o]) > bound + 1e-6)
				fail_msg("sample %u output %u: int8 %g float %g, error above bound %g", n, o,
					 model_value_raw(m, o, v[o]), y[o], bound);
		}
	}
	model_free(m);
}

/* Two layers with calibration: small error and the same argmax nearly always. */
static void test_mlp_quantization_two_layers(void **state)
{
	enum { IN = 8, HID = 32, OUT = 6, CAL = 256, N = 5000 };
	static float w0[HID * IN], b0[HID], w1[OUT * HID], b1[OUT], calib[CAL * IN];
	struct model_float_layer layers[] = { { IN, HID, w0, b0 }, { HID, OUT, w1, b1 } };
	struct model *m = model_create(MODEL_KIND_MLP, IN, OUT);
	struct reflex_err err;
	unsigned agree = 0;
	double max_err = 0, max_out = 0;

	(void)state;
	assert_non_null(m);
	rng_state = 99;
	for (unsigned k = 0; k < HID * IN; k++)
		w0[k] = (float)rng_uniform(-1, 1);
	for (unsigned k = 0; k < HID; k++)
		b0[k] = (float)rng_uniform(-0.5, 0.5);
	for (unsigned k = 0; k < OUT * HID; k++)
		w1[k] = (float)rng_uniform(-1, 1);
	for (unsigned k = 0; k < OUT; k++)
		b1[k] = (float)rng_uniform(-0.5, 0.5);
	for (unsigned k = 0; k < CAL * IN; k++)
		calib[k] = (float)rng_uniform(0, 1);
	for (unsigned i = 0; i < IN; i++) {
		char name[8];

		snprintf(name, sizeof(name), "f%u", i);
		must(model_set_feature(m, i, name, 0, 1, &err), &err);
	}
	for (unsigned k = 0; k < OUT; k++) {
		char name[8];

		snprintf(name, sizeof(name), "a%u", k);
		must(model_set_output(m, k, name, -1, 1, 1, &err), &err);
	}
	must(model_mlp_quantize(m, layers, 2, calib, CAL, &err), &err);
	must(model_validate(m, &err), &err);
	for (unsigned n = 0; n < N; n++) {
		double raw[IN];
		float x[IN], y[OUT];
		int32_t v[OUT];

		for (unsigned i = 0; i < IN; i++)
			x[i] = (float)(raw[i] = rng_uniform(0, 1));
		model_mlp_forward_float(layers, 2, x, y);
		eval_raw(m, raw, v);
		for (unsigned o = 0; o < OUT; o++) {
			max_err = fmax(max_err, fabs(model_value_raw(m, o, v[o]) - y[o]));
			max_out = fmax(max_out, fabs(y[o]));
		}
		{
			unsigned fbest = 0;

			for (unsigned o = 1; o < OUT; o++)
				if (y[o] > y[fbest])
					fbest = o;
			agree += model_argmax(v, OUT) == fbest;
		}
	}
	print_message("two layers: max |error| %.4f of max |output| %.4f; argmax agreement %u/%u\n",
		      max_err, max_out, agree, N);
	assert_true(max_err <= 0.03 * max_out);
	assert_true(agree >= N * 97 / 100);
	model_free(m);
}

static void test_explain(void **state)
{
	struct model *m = build_tree_model();
	const double raw[] = { 80, 50, -1 };
	struct model_explain ex;
	char text[512];
	int16_t q[3];
	int n;

	(void)state;
	model_quantize(m, raw, NULL, q);
	assert_int_equal(model_explain_tree(m, 0, q, &ex), 0);
	assert_int_equal(ex.step_count, 2);
	assert_int_equal(ex.steps[0].node, 0);
	assert_int_equal(ex.steps[0].q, 26214);
	assert_false(ex.steps[0].went_left);
	assert_int_equal(ex.steps[1].node, 2);
	assert_int_equal(ex.leaf_node, 4);
	assert_int_equal(ex.value, 64);
	n = model_explain_format(m, 0, &ex, raw, text, sizeof(text));
	assert_string_equal(text,
			    "  node 0: a q=26214 > 16383 (raw 80 >= 50) -> right\n"
			    "  node 2: b q=1638 > 100 (raw 50 >= 3.06711) -> right\n"
			    "  leaf node 4: value 64 -> flush_threshold = 64\n");
	assert_int_equal(n, (int)strlen(text));
	/* A short buffer truncates but reports the full length. */
	assert_int_equal(model_explain_format(m, 0, &ex, raw, text, 10), n);
	assert_int_equal(strlen(text), 9);

	assert_int_equal(model_explain_tree(m, 1, q, &ex), 0);
	assert_int_equal(ex.step_count, 1);
	assert_true(ex.steps[0].went_left); /* c = -1 -> q 0 <= 0 */
	model_explain_format(m, 1, &ex, NULL, text, sizeof(text));
	assert_string_equal(text, "  node 0: c q=0 <= 0 -> left\n"
				  "  leaf node 1: value 50 -> max_batch_delay_us = 50\n");
	assert_int_equal(model_explain_tree(m, 2, q, &ex), -EINVAL);
	model_free(m);

	m = build_mlp_model();
	assert_int_equal(model_explain_tree(m, 0, q, &ex), -EINVAL);
	model_free(m);
}

/* --- metadata ---------------------------------------------------------------- */

static void test_metadata(void **state)
{
	struct model *m = build_tree_model();
	struct reflex_err err;
	char v[64];

	(void)state;
	assert_int_equal(model_meta_get(m, "created_at", v, sizeof(v)), 0);
	assert_string_equal(v, "2025-10-06T12:00:00Z");
	assert_int_equal(model_meta_get(m, "lambda", v, sizeof(v)), 0);
	assert_string_equal(v, "0.1");
	assert_int_equal(model_meta_get(m, "lamb", v, sizeof(v)), -ENOENT);
	assert_int_equal(model_meta_get(m, "created_at", v, 5), -ENOSPC);
	/* Replacing keeps the order; values that are not plain scalars are quoted. */
	must(model_meta_set(m, "lambda", "0.25", &err), &err);
	must(model_meta_set(m, "note", "p95: \"12 us\" \\ #1", &err), &err);
	must(model_meta_set(m, "unicode", "λ = 0.1 µs", &err), &err);
	assert_string_equal(m->metadata, "created_at: 2025-10-06T12:00:00Z\nlambda: 0.25\n"
					 "note: \"p95: \\\"12 us\\\" \\\\ #1\"\n"
					 "unicode: \"λ = 0.1 µs\"\n");
	assert_int_equal(model_meta_get(m, "note", v, sizeof(v)), 0);
	assert_string_equal(v, "p95: \"12 us\" \\ #1");
	assert_int_equal(model_meta_get(m, "unicode", v, sizeof(v)), 0);
	assert_string_equal(v, "λ = 0.1 µs");
	assert_int_equal(model_meta_set(m, "bad key", "x", &err), -EINVAL);
	assert_int_equal(model_meta_set(m, "k", "two\nlines", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "control byte 0x0a"));
	assert_int_equal(model_meta_set(m, "k", "\xc0\x80", &err), -EINVAL);
	must(model_validate(m, &err), &err);
	model_free(m);
}

static void test_metadata_foreign_yaml(void **state)
{
	struct model *m = build_tree_model();
	static const char text[] = "# comment\nnested:\n  lambda: 9\nlambda: 0.5 # chosen by sweep\n"
				   "quoted: 'it''s'\nempty:\nlambda_x: 1\n";
	char v[32];

	(void)state;
	free(m->metadata);
	m->metadata = strdup(text);
	m->metadata_len = strlen(text);
	assert_int_equal(model_meta_get(m, "lambda", v, sizeof(v)), 0);
	assert_string_equal(v, "0.5");
	assert_int_equal(model_meta_get(m, "quoted", v, sizeof(v)), 0);
	assert_string_equal(v, "it's");
	assert_int_equal(model_meta_get(m, "empty", v, sizeof(v)), 0);
	assert_string_equal(v, "");
	assert_int_equal(model_meta_get(m, "nested", v, sizeof(v)), 0);
	assert_string_equal(v, "");
	model_free(m);
}

static void test_utf8(void **state)
{
	(void)state;
	assert_true(model_utf8_valid("plain", 5));
	assert_true(model_utf8_valid("\xc2\xa0\xe2\x82\xac\xf0\x9f\x98\x80", 9));
	assert_false(model_utf8_valid("\x80", 1));             /* continuation first */
	assert_false(model_utf8_valid("\xc1\xbf", 2));         /* overlong */
	assert_false(model_utf8_valid("\xe0\x9f\xbf", 3));     /* overlong */
	assert_false(model_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
	assert_false(model_utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
	assert_false(model_utf8_valid("\xf5\x80\x80\x80", 4));
	assert_false(model_utf8_valid("\xe2\x82", 2));         /* cut short */
	assert_false(model_utf8_valid("\xe2\x28\xa1", 3));     /* bad continuation */
}

/* --- the shipped model -------------------------------------------------------- */

static void write_bytes(const char *path, const uint8_t *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f)
		fail_msg("%s: %s", path, strerror(errno));
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* REFLEX_GEN_MODELS=1: write tests/data/small.reflex and the fuzz seeds (from the repo root). */
static void generate_shipped_files(void)
{
	struct model *small = build_small_model(), *mlp = build_mlp_model(), *qmlp = build_quantized_mlp();
	struct model *deep = build_deep_model(), *ref = build_reference_model();
	struct reflex_err err;
	uint8_t *buf;
	size_t len;
	char path[256];

	mkdir("tests/data", 0755);
	mkdir(FUZZ_CORPUS_DIR, 0755);
	must(model_write_file(small, SMALL_MODEL_PATH, &err), &err);
	must(model_write_file(small, FUZZ_CORPUS_DIR "/small.reflex", &err), &err);
	must(model_write_file(mlp, FUZZ_CORPUS_DIR "/mlp-2-3-2.reflex", &err), &err);
	must(model_write_file(qmlp, FUZZ_CORPUS_DIR "/mlp-8-16-6.reflex", &err), &err);
	must(model_write_file(deep, FUZZ_CORPUS_DIR "/deep-chain.reflex", &err), &err);
	must(model_write_file(ref, FUZZ_CORPUS_DIR "/reference.reflex", &err), &err);
	must(model_serialize(small, &buf, &len, &err), &err);
	write_bytes(FUZZ_CORPUS_DIR "/truncated-header", buf, 20);
	write_bytes(FUZZ_CORPUS_DIR "/truncated-trees", buf, 330);
	buf[330] ^= 0x10;
	write_bytes(FUZZ_CORPUS_DIR "/bad-crc", buf, len);
	buf[4] = 2;
	snprintf(path, sizeof(path), "%s/version-2", FUZZ_CORPUS_DIR);
	write_bytes(path, buf, len);
	free(buf);
	model_free(small);
	model_free(mlp);
	model_free(qmlp);
	model_free(deep);
	model_free(ref);
}

static void test_shipped_small_model(void **state)
{
	struct model *built = build_small_model(), *loaded = NULL;
	struct reflex_err err;
	uint8_t *buf;
	size_t len;
	int32_t v[2];
	char value[64];

	(void)state;
	if (getenv("REFLEX_GEN_MODELS"))
		generate_shipped_files();
	must(model_load_file(SMALL_MODEL_PATH, 0, &loaded, &err), &err);
	/* The committed file is exactly what the writer produces today. */
	must(model_serialize(built, &buf, &len, &err), &err);
	assert_int_equal(loaded->file_size, len);
	assert_int_equal(loaded->crc_stored, (uint32_t)crc32(0L, buf, (uInt)(len - 4)));
	assert_same_decisions(built, loaded);
	assert_int_equal(model_meta_get(loaded, "feature_schema", value, sizeof(value)), 0);
	assert_string_equal(value, "v1");
	/* Busy link, short RTT, big packets: many records per wakeup, short delay. */
	eval_raw(loaded, (const double[]){ 1e6, 50000, 50000, 300, 800, 6e8, 6e8, 1400, 1e4, 500 }, v);
	assert_int_equal(v[0], 64);
	assert_int_equal(v[1], 50);
	/* Idle: wake on every record. */
	eval_raw(loaded, (const double[]){ 0, 10, 10, 100, 150, 1e3, 1e3, 100, 10, 5000 }, v);
	assert_int_equal(v[0], 1);
	assert_int_equal(v[1], 1000);
	free(buf);
	model_free(built);
	model_free(loaded);
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_round_trip_tree),
		cmocka_unit_test(test_round_trip_mlp),
		cmocka_unit_test(test_optional_section_skipped),
		cmocka_unit_test(test_ignore_crc_flag),
		cmocka_unit_test(test_reference_build),
		cmocka_unit_test(test_reference_round_trip),
		cmocka_unit_test(test_reference_rules),
		cmocka_unit_test_setup_teardown(test_write_file_atomic, setup_tmpdir, teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_load_file_errors, setup_tmpdir, teardown_tmpdir),
		cmocka_unit_test(test_builder_rules),
		cmocka_unit_test(test_quantize_features),
		cmocka_unit_test(test_quantization_error_bounds),
		cmocka_unit_test(test_map_features),
		cmocka_unit_test(test_eval_tree),
		cmocka_unit_test(test_clamp_tree),
		cmocka_unit_test(test_mlp_forward_hand),
		cmocka_unit_test(test_argmax_ties),
		cmocka_unit_test(test_mlp_quantization_bound_one_layer),
		cmocka_unit_test(test_mlp_quantization_two_layers),
		cmocka_unit_test(test_explain),
		cmocka_unit_test(test_metadata),
		cmocka_unit_test(test_metadata_foreign_yaml),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_shipped_small_model),
	};
	enum { NFIXED = sizeof(fixed) / sizeof(fixed[0]), NRULES = sizeof(rules) / sizeof(rules[0]) };
	static struct CMUnitTest tests[NFIXED + NRULES];
	static char names[NRULES][64];

	memcpy(tests, fixed, sizeof(fixed));
	for (unsigned i = 0; i < NRULES; i++) {
		snprintf(names[i], sizeof(names[i]), "rule_%s", rules[i].name);
		tests[NFIXED + i] = (struct CMUnitTest){
			.name = names[i],
			.test_func = test_rule,
			.initial_state = (void *)&rules[i],
		};
	}
	return _cmocka_run_group_tests("model", tests, NFIXED + NRULES, NULL, NULL);
}
