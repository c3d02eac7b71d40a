/* The forge's `train` step (user/forge_train.c) on small CSVs: exact int16 thresholds,
 * leaf quantization bounds, knob clamping, J regret, the holdout split, determinism,
 * and errors that name the column. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "forge/forge.h"
#include "model/model.h"

struct fixture {
	char dir[64];
	char out[128];
	char text[1 << 16];
	size_t len;
	struct csv_table *t;
	struct forge_train_opts opts;
	struct forge_train_report rep;
	struct reflex_err err;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_forge_train.XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	snprintf(fx->out, sizeof(fx->out), "%s/m.reflex", fx->dir);
	fx->opts.max_depth = 4;
	fx->opts.min_samples_leaf = 1;
	fx->opts.holdout = 0;
	fx->opts.seed = 1;
	fx->opts.split_block = 1;
	fx->opts.created_at = "2025-01-02T03:04:05Z";
	fx->opts.telemetry_hash = "0123456789abcdef0123456789abcdef01234567";
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	csv_free(fx->t);
	unlink(fx->out);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

static void emit(struct fixture *fx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(struct fixture *fx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fx->len += (size_t)vsnprintf(fx->text + fx->len, sizeof(fx->text) - fx->len, fmt, ap);
	va_end(ap);
	assert_true(fx->len < sizeof(fx->text));
}

static void target(struct fixture *fx, const char *name)
{
	fx->opts.targets[fx->opts.target_count++] = name;
}

static int train(struct fixture *fx)
{
	csv_free(fx->t);
	fx->t = NULL;
	if (csv_parse("train.csv", fx->text, fx->len, &fx->t, &fx->err))
		fail_msg("parse: %s", fx->err.msg);
	return forge_train(fx->t, &fx->opts, fx->out, &fx->rep, &fx->err);
}

static struct model *load(struct fixture *fx)
{
	struct reflex_err me = { 0 };
	struct model *m = NULL;

	if (model_load_file(fx->out, 0, &m, &me))
		fail_msg("load: %s", me.msg);
	return m;
}

static double eval1(const struct model *m, unsigned output, const double *raw)
{
	int16_t q[MODEL_MAX_FEATURES];
	int32_t v[MODEL_MAX_OUTPUTS];

	model_quantize(m, raw, NULL, q);
	model_eval(m, q, v);
	return model_value_raw(m, output, v[output]);
}

/* Features 0..32767 quantize to themselves, so 1000 and 1001 are one int16 step
 * apart: the split between them must survive into the file exactly. */
static void test_threshold_exact_in_int16(void **state)
{
	struct fixture *fx = *state;
	struct model *m;

	emit(fx, "x,y\n0,1\n1000,1\n1001,2\n32767,2\n");
	target(fx, "y");
	assert_int_equal(train(fx), 0);
	assert_false(fx->rep.validated);
	assert_int_equal(fx->rep.out[0].nodes, 3);
	assert_float_equal(fx->rep.out[0].val_accuracy, 1.0, 0);
	m = load(fx);
	assert_int_equal(m->trees[0].nodes[0].threshold, 1000);
	assert_float_equal(eval1(m, 0, (double[]){ 1000 }), 1, 0);
	assert_float_equal(eval1(m, 0, (double[]){ 1001 }), 2, 0);
	/* Unseen values between training points split at the midpoint. */
	assert_float_equal(eval1(m, 0, (double[]){ 1000.4 }), 1, 0);
	model_free(m);
}

/* A continuous target: every leaf is the training mean rounded to the output scale,
 * so the file is off by at most scale/2, and the report says by how much. */
static void test_leaf_quantization_bound(void **state)
{
	struct fixture *fx = *state;
	struct model *m;
	double worst = 0;

	emit(fx, "a,b,y\n");
	for (int i = 0; i < 200; i++)
		emit(fx, "%d,%d,%.6f\n", i, (i * 37) % 101, 3.7 * i + ((i * 37) % 101) / 7.0);
	target(fx, "y");
	fx->opts.max_depth = 3;
	assert_int_equal(train(fx), 0);
	assert_false(fx->rep.out[0].discrete);
	assert_true(fx->rep.out[0].quant_max_error <= fx->rep.out[0].scale / 2);
	assert_true(fx->rep.out[0].quant_max_error > 0);
	/* Power-of-two scale fitting the largest bound (~750) into int16: 2^-5. */
	assert_float_equal(fx->rep.out[0].scale, 1.0 / 32, 0);
	m = load(fx);
	assert_float_equal(m->outputs[0].scale, 1.0 / 32, 0);
	/* The MSE of the file, recomputed here over every row, is the reported one. */
	for (size_t r = 0; r < fx->t->row_count; r++) {
		double raw[2], y;

		assert_int_equal(csv_get_double(fx->t, r, 0, &raw[0], NULL), 0);
		assert_int_equal(csv_get_double(fx->t, r, 1, &raw[1], NULL), 0);
		assert_int_equal(csv_get_double(fx->t, r, 2, &y, NULL), 0);
		worst += (eval1(m, 0, raw) - y) * (eval1(m, 0, raw) - y);
	}
	assert_float_equal(worst / 200, fx->rep.out[0].val_mse, 1e-6 * fx->rep.out[0].val_mse);
	model_free(m);
}

/* Knob outputs get their legal range whatever the data says: flush_threshold is 1..64,
 * so a label of 100 is clamped to 64 and the bounds are [1, 64]. */
static void test_knob_bounds(void **state)
{
	struct fixture *fx = *state;
	struct model *m;

	emit(fx, "x,flush_threshold\n0,4\n1,4\n2,100\n3,100\n");
	target(fx, "flush_threshold");
	assert_int_equal(train(fx), 0);
	m = load(fx);
	assert_float_equal(m->outputs[0].min, 1, 0);
	assert_float_equal(m->outputs[0].max, 64, 0);
	assert_float_equal(eval1(m, 0, (double[]){ 0 }), 4, 0);
	assert_float_equal(eval1(m, 0, (double[]){ 3 }), 64, 0);
	model_free(m);
}

/* Snapping to discrete values can make both sides of a split the same value: such
 * splits are dropped from the file. Twelve rows of 1 with one 64 at x = 9, and leaves
 * of at least 5 rows: the best split (x <= 6.5) leaves means 1 and 13.6, both nearest
 * to 1, so the file holds a single leaf. */
static void test_useless_splits_dropped(void **state)
{
	struct fixture *fx = *state;
	struct model *m;

	emit(fx, "x,flush_threshold\n");
	for (int x = 0; x < 12; x++)
		emit(fx, "%d,%d\n", x, x == 9 ? 64 : 1);
	target(fx, "flush_threshold");
	fx->opts.max_depth = 1;
	fx->opts.min_samples_leaf = 5;
	assert_int_equal(train(fx), 0);
	m = load(fx);
	assert_int_equal(m->trees[0].node_count, 1);
	assert_int_equal(fx->rep.out[0].nodes, 1);
	assert_int_equal(fx->rep.out[0].depth, 0);
	assert_float_equal(eval1(m, 0, (double[]){ 9 }), 1, 0);
	model_free(m);
}

/* Two outputs and J@ columns. y = 1 when a = 0 and 2 when a = 1; choosing the other
 * value costs 3 (a = 0) or 5 (a = 1). The tree is perfect: regret 0. The best single
 * choice over the rows (half each) is y = 2 (mean J 1.5 vs 2.5): regret 1.5. */
static void test_regret(void **state)
{
	struct fixture *fx = *state;

	emit(fx, "a,noise,y,z,J,J@y=1;z=7,J@y=2;z=7\n");
	for (int i = 0; i < 40; i++) {
		int a = i % 2;

		emit(fx, "%d,%d,%d,7,0,%d,%d\n", a, (i * 13) % 17, a ? 2 : 1, a ? 5 : 0, a ? 0 : 3);
	}
	target(fx, "y");
	target(fx, "z");
	assert_int_equal(train(fx), 0);
	assert_int_equal(fx->rep.feature_count, 2); /* J and J@ are not features */
	assert_true(fx->rep.have_regret);
	assert_int_equal(fx->rep.regret_rows, 40);
	assert_float_equal(fx->rep.regret_mean, 0, 0);
	assert_float_equal(fx->rep.regret_constant, 1.5, 1e-12);
	assert_string_equal(fx->rep.constant_choice, "y=2;z=7");
	assert_float_equal(fx->rep.out[0].val_accuracy_majority, 0.5, 0);
}

/* 100 rows, 20 % held out in blocks of 30 (sizes 30, 30, 30, 10): the first block
 * drawn holds 30 rows, or 10 and then 30 more. */
static void test_holdout_blocks(void **state)
{
	struct fixture *fx = *state;

	emit(fx, "x,y\n");
	for (int i = 0; i < 100; i++)
		emit(fx, "%d,%d\n", i, i / 10);
	target(fx, "y");
	fx->opts.holdout = 0.2;
	fx->opts.split_block = 30;
	assert_int_equal(train(fx), 0);
	assert_true(fx->rep.validated);
	assert_true(fx->rep.val_rows == 30 || fx->rep.val_rows == 40);
	assert_int_equal(fx->rep.train_rows + fx->rep.val_rows, 100);
	fx->opts.split_block = 1;
	assert_int_equal(train(fx), 0);
	assert_int_equal(fx->rep.val_rows, 20);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = malloc(1 << 20);

	assert_non_null(f);
	assert_non_null(buf);
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

/* Same CSV, options and created_at: the same bytes. */
static void test_deterministic_bytes(void **state)
{
	struct fixture *fx = *state;
	char *first, *second, value[64];
	size_t len1, len2;
	struct model *m;

	emit(fx, "a,b,c,y\n");
	for (int i = 0; i < 300; i++)
		emit(fx, "%d,%d,%d,%d\n", (i * 7919) % 1000, (i * 104729) % 777, i % 13, ((i * 7919) % 1000 > 500) * 8 + i % 3);
	target(fx, "y");
	fx->opts.holdout = 0.25;
	fx->opts.seed = 42;
	assert_int_equal(train(fx), 0);
	first = slurp(fx->out, &len1);
	assert_int_equal(train(fx), 0);
	second = slurp(fx->out, &len2);
	assert_int_equal(len1, len2);
	assert_memory_equal(first, second, len1);
	m = load(fx);
	assert_int_equal(model_meta_get(m, "created_at", value, sizeof(value)), 0);
	assert_string_equal(value, "2025-01-02T03:04:05Z");
	assert_int_equal(model_meta_get(m, "seed", value, sizeof(value)), 0);
	assert_string_equal(value, "42");
	assert_int_equal(model_meta_get(m, "feature_schema", value, sizeof(value)), 0);
	assert_string_equal(value, "custom");
	assert_int_equal(model_meta_get(m, "val_accuracy_y", value, sizeof(value)), 0);
	model_free(m);
	free(first);
	free(second);
}

static void expect_failure(struct fixture *fx, const char *needle)
{
	assert_int_equal(train(fx), -EINVAL);
	if (!strstr(fx->err.msg, needle))
		print_error("message: %s\n", fx->err.msg);
	assert_non_null(strstr(fx->err.msg, needle));
	/* Nothing written. */
	assert_int_equal(access(fx->out, F_OK), -1);
}

static void test_errors(void **state)
{
	struct fixture *fx = *state;
	static const char *const dup[] = { "x", "x" };
	static const char *const as_feature[] = { "y" };

	emit(fx, "x,y,label\n1,2,a\n3,4,b\n");
	target(fx, "zz");
	expect_failure(fx, "train.csv:1: column 'zz': missing from the header");

	fx->opts.targets[0] = "y";
	expect_failure(fx, "train.csv:2:3: column 'label': 'a' is not a number");

	fx->opts.features = dup;
	fx->opts.feature_count = 2;
	expect_failure(fx, "train.csv:1:1: column 'x': given twice in --features");
	fx->opts.features = as_feature;
	fx->opts.feature_count = 1;
	expect_failure(fx, "column 'y': is a target, it cannot be a feature too");

	fx->opts.features = NULL;
	fx->len = 0;
	emit(fx, "bad name,y\n1,2\n");
	expect_failure(fx, "train.csv:1:1: column 'bad name': feature 0: name byte 0x20");

	fx->len = 0;
	emit(fx, "x,y\n1,2\n");
	fx->opts.holdout = 0.5;
	expect_failure(fx, "1 rows leave no training rows");
}

/* created_at: a pinned value must be a real UTC time; SOURCE_DATE_EPOCH pins "now". */
static void test_created_at(void **state)
{
	struct reflex_err err = { 0 };
	char buf[32];

	(void)state;
	assert_true(forge_created_at_valid("2025-01-02T03:04:05Z"));
	assert_true(forge_created_at_valid("2024-02-29T23:59:59Z"));
	assert_false(forge_created_at_valid("2025-02-29T00:00:00Z"));
	assert_false(forge_created_at_valid("2025-01-02 03:04:05Z"));
	assert_false(forge_created_at_valid("2025-01-02T03:04:05"));
	assert_false(forge_created_at_valid("2025-01-02T03:04:05Z "));
	assert_int_equal(setenv("SOURCE_DATE_EPOCH", "1735787045", 1), 0);
	assert_int_equal(forge_created_at_now(buf, sizeof(buf), &err), 0);
	assert_string_equal(buf, "2025-01-02T03:04:05Z");
	assert_int_equal(setenv("SOURCE_DATE_EPOCH", "soon", 1), 0);
	assert_int_equal(forge_created_at_now(buf, sizeof(buf), &err), -EINVAL);
	assert_non_null(strstr(err.msg, "SOURCE_DATE_EPOCH 'soon'"));
	unsetenv("SOURCE_DATE_EPOCH");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_threshold_exact_in_int16, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leaf_quantization_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_knob_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_useless_splits_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_regret, setup, teardown),
		cmocka_unit_test_setup_teardown(test_holdout_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deterministic_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test(test_created_at),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
