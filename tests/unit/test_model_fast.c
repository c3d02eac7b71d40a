/*
 * Compiled inference (user/model/model_fast.c) against the reference path: model_decide
 * on every MLP path must give exactly what model_quantize + model_eval give, on random
 * trees and MLPs, on the shipped models, and on inputs at and around every boundary
 * (NaN, +-inf, out of range, the raw threshold and its neighbouring doubles).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "model/model.h"
#include "model/model_fast.h"
#include "rng.h"

static unsigned rng_below(unsigned n)
{
	return (unsigned)(rng_next() % n);
}

static void must(int rc, const struct reflex_err *err)
{
	if (rc)
		fail_msg("builder failed (%d): %s", rc, err->msg);
}

/* One input value for feature f: mostly in range, often on an edge or a threshold. */
static double pick_input(const struct model *m, unsigned fi)
{
	const struct model_feature *f = &m->features[fi];
	double span = f->max - f->min;

	switch (rng_below(12)) {
	case 0:
		return NAN;
	case 1:
		return rng_below(2) ? INFINITY : -INFINITY;
	case 2:
		return rng_below(2) ? f->min : f->max;
	case 3:
		return rng_uniform(f->min - span, f->min);
	case 4:
		return rng_uniform(f->max, f->max + span);
	case 5:
	case 6: {
		/* At a raw threshold (random, or one the trees use) and a few ulps around it. */
		int16_t t = (int16_t)rng_below(MODEL_Q_MAX + 1);
		double x;
		int ulps = (int)rng_below(9) - 4;

		if (m->kind == MODEL_KIND_TREES) {
			const struct model_tree *tree = &m->trees[rng_below(m->output_count)];
			const struct model_tree_node *nd = &tree->nodes[rng_below(tree->node_count)];

			if (nd->feature_idx == fi)
				t = nd->threshold;
		}
		x = model_threshold_raw(f, t);
		if (!isfinite(x))
			return x;
		for (; ulps > 0; ulps--)
			x = nextafter(x, INFINITY);
		for (; ulps < 0; ulps++)
			x = nextafter(x, -INFINITY);
		return x;
	}
	default:
		return rng_uniform(f->min, f->max);
	}
}

/* model_decide on every path this CPU has equals model_quantize + model_eval. */
static void check_agree(const struct model *m, const double *raw, const int *map, const char *what)
{
	int16_t q[MODEL_MAX_FEATURES];
	int32_t want[MODEL_MAX_OUTPUTS], got[MODEL_MAX_OUTPUTS];

	model_quantize(m, raw, map, q);
	model_eval(m, q, want);
	for (int p = 0; p < MODEL_PATH_COUNT; p++) {
		if (!model_path_supported((enum model_path)p))
			continue;
		memset(got, 0x5a, sizeof(got));
		assert_int_equal(model_decide_path(m, raw, map, got, (enum model_path)p), 0);
		for (unsigned o = 0; o < m->output_count; o++)
			if (got[o] != want[o]) {
				char inputs[1024];
				size_t len = 0;

				for (unsigned i = 0; i < m->feature_count && len < sizeof(inputs) - 40; i++)
					len += (size_t)snprintf(inputs + len, sizeof(inputs) - len, " %.17g(q%d)",
								raw[map ? map[i] : (int)i], q[i]);
				fail_msg("%s, path %s, output %u: model_decide %d, model_eval %d; inputs%s", what,
					 model_path_name((enum model_path)p), o, got[o], want[o], inputs);
			}
	}
	memset(got, 0x5a, sizeof(got));
	model_decide(m, raw, map, got);
	for (unsigned o = 0; o < m->output_count; o++)
		assert_int_equal(got[o], want[o]);
}

static void check_random_inputs(const struct model *m, unsigned rows, const char *what)
{
	double raw[MODEL_MAX_FEATURES];

	for (unsigned r = 0; r < rows; r++) {
		for (unsigned i = 0; i < m->feature_count; i++)
			raw[i] = pick_input(m, i);
		check_agree(m, raw, NULL, what);
	}
}

/* Feature ranges of very different magnitudes and signs. */
static void random_feature(struct model *m, unsigned i)
{
	static const double spans[] = { 1e-9, 1e-3, 1, 100, 1e6, 1e15 };
	double span = spans[rng_below(6)] * rng_uniform(0.5, 2);
	double min = rng_below(3) ? rng_uniform(-span, span) : 0;
	struct reflex_err err;
	char name[16];

	snprintf(name, sizeof(name), "f%u", i);
	must(model_set_feature(m, i, name, min, min + span, &err), &err);
}

/* A random tree of depth <= max_depth, nodes in preorder (children after parents). */
static unsigned random_subtree(const struct model *m, struct model_tree_node *nodes, unsigned *count,
			       unsigned depth)
{
	static const int16_t edge[] = { -1, -32768, 0, 1, MODEL_Q_MAX - 1, MODEL_Q_MAX };
	unsigned idx = (*count)++;

	if (depth == 0 || rng_below(5) == 0) {
		nodes[idx] = (struct model_tree_node){ .feature_idx = MODEL_LEAF,
						       .leaf_value = (int16_t)(rng_below(1001) - 500) };
		return idx;
	}
	nodes[idx] = (struct model_tree_node){
		.feature_idx = (uint16_t)rng_below(m->feature_count),
		.threshold = rng_below(8) ? (int16_t)rng_below(MODEL_Q_MAX + 1) : edge[rng_below(6)],
	};
	nodes[idx].left = (uint16_t)random_subtree(m, nodes, count, depth - 1);
	nodes[idx].right = (uint16_t)random_subtree(m, nodes, count, depth - 1);
	return idx;
}

static void test_random_trees(void **state)
{
	static struct model_tree_node nodes[MODEL_MAX_TREE_NODES];

	(void)state;
	for (unsigned trial = 0; trial < 60; trial++) {
		/* Beyond 16 features the AVX-512 path falls back to the portable walk. */
		unsigned features = 1 + rng_below(24), outputs = 1 + rng_below(MODEL_MAX_OUTPUTS);
		struct model *m = model_create(MODEL_KIND_TREES, (uint16_t)features, (uint16_t)outputs);
		struct reflex_err err;
		char what[64];

		assert_non_null(m);
		m->max_depth = (uint8_t)(1 + rng_below(7));
		for (unsigned i = 0; i < features; i++)
			random_feature(m, i);
		for (unsigned o = 0; o < outputs; o++) {
			unsigned count = 0;
			char name[16];

			snprintf(name, sizeof(name), "y%u", o);
			must(model_set_output(m, o, name, -500, 500, 1, &err), &err);
			random_subtree(m, nodes, &count, m->max_depth);
			must(model_set_tree(m, o, nodes, (uint16_t)count, &err), &err);
		}
		must(model_validate(m, &err), &err);
		snprintf(what, sizeof(what), "random tree model %u", trial);
		check_random_inputs(m, 400, what);
		model_free(m);
	}
}

/* Features given in another order through a map, as reflexd passes them. */
static void test_tree_with_map(void **state)
{
	static const struct model_tree_node tree[] = {
		{ .feature_idx = 1, .threshold = 16383, .left = 1, .right = 2 },
		{ .feature_idx = MODEL_LEAF, .leaf_value = 3 },
		{ .feature_idx = 0, .threshold = 100, .left = 3, .right = 4 },
		{ .feature_idx = MODEL_LEAF, .leaf_value = 5 },
		{ .feature_idx = MODEL_LEAF, .leaf_value = 7 },
	};
	struct model *m = model_create(MODEL_KIND_TREES, 2, 1);
	const int map[2] = { 3, 0 };
	double raw[4] = { 0 };
	struct reflex_err err;

	(void)state;
	assert_non_null(m);
	must(model_set_feature(m, 0, "a", 0, 10, &err), &err);
	must(model_set_feature(m, 1, "b", -1, 1, &err), &err);
	must(model_set_output(m, 0, "y", 0, 10, 1, &err), &err);
	must(model_set_tree(m, 0, tree, 5, &err), &err);
	for (unsigned r = 0; r < 2000; r++) {
		raw[0] = pick_input(m, 1);
		raw[3] = pick_input(m, 0);
		raw[1] = raw[2] = NAN; /* not model inputs: must not matter */
		check_agree(m, raw, map, "mapped tree");
	}
	model_free(m);
}

static void random_mlp_layer(struct model *m, unsigned in, unsigned out, bool last)
{
	static int8_t w[MODEL_MAX_UNITS * MODEL_MAX_UNITS];
	static int32_t b[MODEL_MAX_UNITS];
	struct reflex_err err;
	/* Small multipliers and large shifts, so activations spread over 0..127 and saturate. */
	uint8_t shift = last ? 0 : (uint8_t)(1 + rng_below(62));
	uint32_t mult = last ? 0 : (uint32_t)(rng_next() % INT32_MAX) + 1;

	if (!last && rng_below(2)) {
		shift = (uint8_t)(20 + rng_below(12));
		mult = (uint32_t)(rng_next() % (1u << 20)) + 1;
	}
	for (size_t k = 0; k < (size_t)in * out; k++)
		w[k] = (int8_t)(rng_next() & 0xff);
	for (unsigned o = 0; o < out; o++)
		b[o] = rng_below(4) ? (int32_t)(rng_next() % 200001) - 100000
				    : (int32_t)(rng_next() % (2u * MODEL_MAX_BIAS + 1)) - MODEL_MAX_BIAS;
	must(model_add_layer(m, (uint16_t)in, (uint16_t)out, mult, shift, 0.01, w, b, &err), &err);
}

static void test_random_mlps(void **state)
{
	(void)state;
	for (unsigned trial = 0; trial < 40; trial++) {
		unsigned features = 1 + rng_below(MODEL_MAX_FEATURES), outputs = 1 + rng_below(MODEL_MAX_OUTPUTS);
		unsigned layers = 1 + rng_below(MODEL_MAX_LAYERS), in = features;
		struct model *m = model_create(MODEL_KIND_MLP, (uint16_t)features, (uint16_t)outputs);
		struct reflex_err err;
		char what[64];

		assert_non_null(m);
		for (unsigned i = 0; i < features; i++)
			random_feature(m, i);
		for (unsigned o = 0; o < outputs; o++) {
			char name[16];

			snprintf(name, sizeof(name), "y%u", o);
			must(model_set_output(m, o, name, rng_below(2) ? -1e6 : -1e9, 1e9, rng_below(2) ? 1 : 100,
					      &err), &err);
		}
		for (unsigned l = 0; l < layers; l++) {
			bool last = l + 1 == layers;
			unsigned out = last ? outputs : 1 + rng_below(MODEL_MAX_UNITS);

			random_mlp_layer(m, in, out, last);
			in = out;
		}
		must(model_validate(m, &err), &err);
		snprintf(what, sizeof(what), "random mlp %u (%u layers)", trial, layers);
		check_random_inputs(m, 300, what);
		model_free(m);
	}
}

static void check_shipped(const char *path, unsigned rows)
{
	struct reflex_err err;
	struct model *m = NULL;

	int map[MODEL_MAX_FEATURES];
	double raw[MODEL_MAX_FEATURES], mapped[MODEL_MAX_FEATURES];

	if (model_load_file(path, 0, &m, &err))
		fail_msg("%s: %s", path, err.msg);
	check_random_inputs(m, rows, path);
	/* The same through a map: reflexd's inputs in reverse order (gathered loads). */
	for (unsigned i = 0; i < m->feature_count; i++)
		map[i] = (int)(m->feature_count - 1 - i);
	for (unsigned r = 0; r < rows; r++) {
		for (unsigned i = 0; i < m->feature_count; i++) {
			raw[i] = pick_input(m, i);
			mapped[map[i]] = raw[i];
		}
		check_agree(m, mapped, map, path);
	}
	model_free(m);
}

static void test_shipped_models(void **state)
{
	(void)state;
	check_shipped("models/cwnd.reflex", 20000);
	check_shipped("models/batching.reflex", 20000);
	check_shipped("models/dqn.reflex", 5000);
}

/* Changing a feature's range or an output's bounds after the trees are set recompiles. */
static void test_feature_change_recompiles(void **state)
{
	static const struct model_tree_node tree[] = {
		{ .feature_idx = 0, .threshold = 16383, .left = 1, .right = 2 },
		{ .feature_idx = MODEL_LEAF, .leaf_value = 1 },
		{ .feature_idx = MODEL_LEAF, .leaf_value = 2 },
	};
	struct model *m = model_create(MODEL_KIND_TREES, 1, 1);
	struct reflex_err err;
	double raw[1] = { 75 };
	int32_t value[1];

	(void)state;
	assert_non_null(m);
	must(model_set_feature(m, 0, "a", 0, 100, &err), &err);
	must(model_set_output(m, 0, "y", 0, 10, 1, &err), &err);
	must(model_set_tree(m, 0, tree, 3, &err), &err);
	model_decide(m, raw, NULL, value);
	assert_int_equal(value[0], 2); /* 75 is above the middle of [0, 100] */
	must(model_set_feature(m, 0, "a", 0, 1000, &err), &err);
	model_decide(m, raw, NULL, value);
	assert_int_equal(value[0], 1); /* and below the middle of [0, 1000] */
	must(model_set_output(m, 0, "y", 1.5, 10, 1, &err), &err);
	model_decide(m, raw, NULL, value);
	assert_int_equal(value[0], 2); /* leaf 1 clamped to the new bounds */
	check_random_inputs(m, 2000, "recompiled tree");
	model_free(m);
}

static void test_unknown_path(void **state)
{
	struct model *m = NULL;
	struct reflex_err err;
	double raw[MODEL_MAX_FEATURES] = { 0 };
	int32_t value[MODEL_MAX_OUTPUTS];

	(void)state;
	if (model_load_file("models/dqn.reflex", 0, &m, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(model_decide_path(m, raw, NULL, value, MODEL_PATH_COUNT), -ENOTSUP);
	assert_true(model_path_supported(MODEL_PATH_SCALAR));
	assert_true(model_path_supported(model_path_best()));
	model_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_trees),
		cmocka_unit_test(test_tree_with_map),
		cmocka_unit_test(test_random_mlps),
		cmocka_unit_test(test_shipped_models),
		cmocka_unit_test(test_feature_change_recompiles),
		cmocka_unit_test(test_unknown_path),
	};

	for (int p = 0; p < MODEL_PATH_COUNT; p++)
		printf("model path %s: %s\n", model_path_name((enum model_path)p),
		       model_path_supported((enum model_path)p) ? "supported, tested" : "not on this CPU");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
