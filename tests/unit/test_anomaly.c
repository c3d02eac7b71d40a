/* Model health: the isolation-forest scorer against hand-computed values, the
 * `anomaly` section and the reference's psi_threshold through the writer and the
 * loader, the per-flow hand-over, and the forge's forest and drift calibration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "forge/forge_health.h"
#include "model/model.h"
#include "reflexd/model_health.h"

static void assert_close(double got, double want, double tol)
{
	if (fabs(got - want) > tol)
		fail_msg("got %.9f, want %.9f", got, want);
}

#define LEAF(path) { .feature_idx = MODEL_LEAF, .leaf_value = (path) }
#define SPLIT(f, t, l, r) { .feature_idx = (f), .threshold = (t), .left = (l), .right = (r) }

/*
 * Two trees grown on 4 windows of two features:
 *   tree 0: f0 <= 100 ? leaf (depth 1, 1 window: 1.0) : (f1 <= 50 ? leaf (depth 2, 2 windows:
 *           2 + c(2) = 3.0) : leaf (depth 2, 1 window: 2.0))
 *   tree 1: f1 <= 10 ? leaf (depth 1, 3 windows: 1 + c(3) = 2.2074 -> 565/256) : leaf (1.0)
 */
static const struct model_tree_node tree0[] = {
	SPLIT(0, 100, 1, 2), LEAF(256), SPLIT(1, 50, 3, 4), LEAF(768), LEAF(512),
};
static const struct model_tree_node tree1[] = { SPLIT(1, 10, 1, 2), LEAF(565), LEAF(256) };

static struct model_anomaly *hand_forest(void)
{
	struct model_anomaly *a = calloc(1, sizeof(*a));

	assert_non_null(a);
	a->tree_count = 2;
	a->max_depth = 2;
	a->sample_size = 4;
	a->trees[0].nodes = malloc(sizeof(tree0));
	a->trees[1].nodes = malloc(sizeof(tree1));
	assert_non_null(a->trees[0].nodes);
	assert_non_null(a->trees[1].nodes);
	memcpy(a->trees[0].nodes, tree0, sizeof(tree0));
	memcpy(a->trees[1].nodes, tree1, sizeof(tree1));
	a->trees[0].node_count = 5;
	a->trees[1].node_count = 3;
	return a;
}

static struct model *model_with(struct model_anomaly *a, double psi_threshold)
{
	struct model *m = model_create(MODEL_KIND_TREES, 2, 1);
	static const struct model_tree_node leaf = LEAF(1);
	struct reflex_err err;
	int16_t q[40];

	assert_non_null(m);
	assert_int_equal(model_set_feature(m, 0, "f0", 0, 1, &err), 0);
	assert_int_equal(model_set_feature(m, 1, "f1", 0, 1, &err), 0);
	assert_int_equal(model_set_output(m, 0, "y", 0, 10, 1, &err), 0);
	assert_int_equal(model_set_tree(m, 0, &leaf, 1, &err), 0);
	for (int i = 0; i < 20; i++) {
		q[2 * i] = (int16_t)(1000 * i);
		q[2 * i + 1] = (int16_t)(50 * i);
	}
	assert_int_equal(model_reference_build(m, q, 20, 10, &err), 0);
	m->reference->psi_threshold = psi_threshold;
	m->anomaly = a;
	return m;
}

static void test_c_hand_computed(void **state)
{
	(void)state;
	assert_close(model_anomaly_c(1), 0, 0);
	assert_close(model_anomaly_c(2), 1, 0);
	/* 2 (ln 2 + 0.5772157) - 2 x 2/3 */
	assert_close(model_anomaly_c(3), 1.207392, 1e-6);
	/* 2 (ln 255 + 0.5772157) - 2 x 255/256 */
	assert_close(model_anomaly_c(256), 10.244771, 1e-6);
}

static void test_score_hand_computed(void **state)
{
	struct model_anomaly *a = hand_forest();

	(void)state;
	/* tree 0 left (256) + tree 1 left (565): mean 821/512 = 1.6035 -> 2^(-1.6035 / c(4) = 1.851656) */
	assert_int_equal(model_anomaly_path_sum(a, (const int16_t[]){ 50, 0 }), 821);
	assert_close(model_anomaly_score(a, 821), 0.548670, 1e-6);
	/* tree 0 right-right (512) + tree 1 right (256): mean 1.5 */
	assert_int_equal(model_anomaly_path_sum(a, (const int16_t[]){ 200, 100 }), 768);
	assert_close(model_anomaly_score(a, 768), 0.570348, 1e-6);
	/* tree 0 right-left (768) + tree 1 right (256): the longest path, the least anomalous */
	assert_int_equal(model_anomaly_path_sum(a, (const int16_t[]){ 101, 50 }), 1024);
	assert_close(model_anomaly_score(a, 1024), pow(2, -2.0 / 1.851656), 1e-6);
	model_anomaly_free(a);
}

static void test_section_round_trip(void **state)
{
	struct model *m = model_with(hand_forest(), 2.5), *back = NULL;
	struct reflex_err err = { 0 };
	uint8_t *buf = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(model_serialize(m, &buf, &len, &err), 0);
	if (model_load_buffer(buf, len, 0, &back, &err))
		fail_msg("%s", err.msg);
	assert_non_null(back->anomaly);
	assert_int_equal(back->anomaly->tree_count, 2);
	assert_int_equal(back->anomaly->sample_size, 4);
	assert_int_equal(back->anomaly->trees[0].node_count, 5);
	assert_memory_equal(back->anomaly->trees[0].nodes, tree0, sizeof(tree0));
	assert_memory_equal(back->anomaly->trees[1].nodes, tree1, sizeof(tree1));
	assert_close(back->reference->psi_threshold, 2.5, 0);
	/* features, outputs, trees, reference, anomaly */
	assert_int_equal(back->section_count, 5);
	assert_int_equal(back->sections[4].type, MODEL_SECTION_ANOMALY);
	model_free(back);
	free(buf);
	model_free(m);
}

/* Without a threshold the reference is written as version 1, as older files hold it. */
static void test_reference_v1_without_threshold(void **state)
{
	struct model *m = model_with(NULL, 0), *back = NULL;
	struct reflex_err err = { 0 };
	uint8_t *buf = NULL;
	size_t len = 0, off;

	(void)state;
	assert_int_equal(model_serialize(m, &buf, &len, &err), 0);
	off = m->feature_count * 48 + 8 + 56 + 8 + 32 + 8 + 4 + 4 + 10 + 8;
	assert_int_equal(buf[off] | buf[off + 1] << 8, 1);
	assert_int_equal(model_load_buffer(buf, len, 0, &back, &err), 0);
	assert_close(back->reference->psi_threshold, 0, 0);
	assert_null(back->anomaly);
	model_free(back);
	free(buf);
	model_free(m);
}

static void expect_refused(struct model *m, const char *want)
{
	struct reflex_err err = { 0 };
	uint8_t *buf = NULL;
	size_t len = 0;

	assert_int_equal(model_serialize(m, &buf, &len, &err), -EINVAL);
	if (!strstr(err.msg, want))
		fail_msg("error '%s' does not say '%s'", err.msg, want);
	model_free(m);
}

static void test_bad_forests_refused(void **state)
{
	struct model *m;

	(void)state;
	/* A path shorter than the leaf's depth. */
	m = model_with(hand_forest(), 0);
	m->anomaly->trees[0].nodes[1].leaf_value = 100;
	expect_refused(m, "path length 100/256 outside 256..");
	/* A path longer than depth + c(sample_size). */
	m = model_with(hand_forest(), 0);
	m->anomaly->trees[1].nodes[2].leaf_value = 2000;
	expect_refused(m, "anomaly tree 1 node 2: path length 2000");
	/* A split on a feature the model does not have. */
	m = model_with(hand_forest(), 0);
	m->anomaly->trees[0].nodes[0].feature_idx = 2;
	expect_refused(m, "anomaly tree 0 node 0: feature_idx 2 >= feature_count 2");
	/* Deeper than declared. */
	m = model_with(hand_forest(), 0);
	m->anomaly->max_depth = 1;
	expect_refused(m, "anomaly tree 0: 5 nodes, more than 3");
	m = model_with(hand_forest(), 0);
	m->anomaly->sample_size = 1;
	expect_refused(m, "anomaly: sample_size 1 outside 2..4096");
	m = model_with(hand_forest(), NAN);
	expect_refused(m, "psi_threshold");
}

/* hold 3: three windows above hand the flow over, three below hand it back. */
static void test_flow_hand_over(void **state)
{
	struct model_anomaly *a = hand_forest();
	struct flow_anomaly fa = { .score = ANOMALY_NOT_SCORED };
	const int16_t high[] = { 200, 100 }, low[] = { 101, 50 }; /* 0.570 and 0.473 */

	(void)state;
	assert_int_equal(flow_anomaly_observe(&fa, a, high, 550, 3), ANOMALY_NONE);
	assert_int_equal(fa.score, 570);
	assert_int_equal(flow_anomaly_observe(&fa, a, high, 550, 3), ANOMALY_NONE);
	/* one window below restarts the count */
	assert_int_equal(flow_anomaly_observe(&fa, a, low, 550, 3), ANOMALY_NONE);
	assert_int_equal(fa.score, 473);
	for (int i = 0; i < 2; i++)
		assert_int_equal(flow_anomaly_observe(&fa, a, high, 550, 3), ANOMALY_NONE);
	assert_false(flow_anomaly_handed(&fa));
	assert_int_equal(flow_anomaly_observe(&fa, a, high, 550, 3), ANOMALY_HANDOVER);
	assert_true(flow_anomaly_handed(&fa));
	for (int i = 0; i < 2; i++)
		assert_int_equal(flow_anomaly_observe(&fa, a, low, 550, 3), ANOMALY_NONE);
	assert_true(flow_anomaly_handed(&fa));
	assert_int_equal(flow_anomaly_observe(&fa, a, low, 550, 3), ANOMALY_RETURN);
	assert_false(flow_anomaly_handed(&fa));
	/* threshold 0: scored, never handed over */
	for (int i = 0; i < 5; i++)
		assert_int_equal(flow_anomaly_observe(&fa, a, high, 0, 3), ANOMALY_NONE);
	assert_false(flow_anomaly_handed(&fa));
	model_anomaly_free(a);
}

/* 1000 windows spread over a square around (10250, 10250) and one far away: the
 * forest grown on them scores the far one well above the median of the rest (which,
 * for windows spread evenly, sits near 0.5), and loads. */
static void test_forge_forest(void **state)
{
	enum { N = 1000 };
	int16_t *q = malloc((N + 1) * 2 * sizeof(*q));
	size_t rows[N];
	struct model_anomaly *a = NULL, *again = NULL;
	struct model *m;
	struct reflex_err err = { 0 };
	double median, far;

	(void)state;
	assert_non_null(q);
	for (int i = 0; i < N; i++) {
		q[2 * i] = (int16_t)(10000 + (i * 37) % 500);
		q[2 * i + 1] = (int16_t)(10000 + (i * 91) % 500);
		rows[i] = (size_t)i;
	}
	q[2 * N] = 30000;
	q[2 * N + 1] = 200;
	assert_int_equal(forge_iforest_build(q, N, 2, 16, 256, 7, &a), 0);
	assert_int_equal(a->tree_count, 16);
	assert_int_equal(a->max_depth, 8);
	assert_int_equal(a->sample_size, 256);
	median = forge_anomaly_median(a, q, 2, rows, N);
	far = model_anomaly_score(a, model_anomaly_path_sum(a, &q[2 * N]));
	if (!(far > 0.6 && median < 0.55 && far - median > 0.1))
		fail_msg("far window scores %.3f, median %.3f: want > 0.6, < 0.55 and 0.1 apart", far, median);
	/* Same seed, same forest. */
	assert_int_equal(forge_iforest_build(q, N, 2, 16, 256, 7, &again), 0);
	for (unsigned t = 0; t < 16; t++) {
		assert_int_equal(a->trees[t].node_count, again->trees[t].node_count);
		assert_memory_equal(a->trees[t].nodes, again->trees[t].nodes,
				    a->trees[t].node_count * sizeof(*a->trees[t].nodes));
	}
	model_anomaly_free(again);
	m = model_with(a, 0);
	if (model_validate(m, &err))
		fail_msg("%s", err.msg);
	model_free(m);
	assert_int_equal(forge_iforest_build(q, 1, 2, 16, 256, 7, &again), -EINVAL);
	free(q);
}

/* Rows that repeat the training pattern block after block: every block's PSI is
 * small, and the threshold is its p99 x 1.5. */
static void test_forge_drift_calibration(void **state)
{
	enum { N = 4000 };
	int16_t *q = malloc(N * 2 * sizeof(*q));
	struct forge_drift_calibration cal;
	struct model *m = model_with(NULL, 0);
	struct reflex_err err;

	(void)state;
	assert_non_null(q);
	for (int i = 0; i < N; i++) {
		q[2 * i] = (int16_t)((i % 20) * 1000);
		q[2 * i + 1] = (int16_t)((i % 20) * 50);
	}
	assert_int_equal(model_reference_build(m, q, N, 10, &err), 0);
	assert_int_equal(forge_drift_calibrate(m, q, N, &cal), 0);
	assert_int_equal(cal.block, 600);
	assert_int_equal(cal.blocks, (N - 600) / 150 + 1);
	assert_true(cal.p99 < 0.01);
	assert_close(cal.threshold, cal.p99 * FORGE_DRIFT_MARGIN, 1e-12);
	/* Too few rows calibrate nothing. */
	assert_int_equal(forge_drift_calibrate(m, q, 100, &cal), 0);
	assert_close(cal.threshold, 0, 0);
	model_free(m);
	free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_c_hand_computed),
		cmocka_unit_test(test_score_hand_computed),
		cmocka_unit_test(test_section_round_trip),
		cmocka_unit_test(test_reference_v1_without_threshold),
		cmocka_unit_test(test_bad_forests_refused),
		cmocka_unit_test(test_flow_hand_over),
		cmocka_unit_test(test_forge_forest),
		cmocka_unit_test(test_forge_drift_calibration),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
