/* CART regression trees (user/cart.c): known best splits, limits, determinism. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "forge/cart.h"

static size_t *all_rows(size_t n)
{
	size_t *rows = malloc(n * sizeof(*rows));

	assert_non_null(rows);
	for (size_t i = 0; i < n; i++)
		rows[i] = i;
	return rows;
}

/* x = 1,2,3,4 and y = 1,1,3,5: the SSE of the three candidate splits is
 * 8 (t=1.5), 2 (t=2.5) and 24/9 (t=3.5), so the root splits at 2.5 into leaves 1 and 4. */
static void test_hand_computed_split(void **state)
{
	const double x[] = { 3, 1, 4, 2 };
	const double y[] = { 3, 1, 5, 1 };
	size_t *rows = all_rows(4);
	struct cart_data data = { .x = x, .y = y, .feature_count = 1, .rows = rows, .row_count = 4 };
	struct cart_params params = { .max_depth = 1, .min_samples_leaf = 1 };
	struct cart_tree tree;

	(void)state;
	assert_int_equal(cart_fit(&data, &params, &tree), 0);
	assert_int_equal(tree.node_count, 3);
	assert_int_equal(tree.depth, 1);
	assert_int_equal(tree.nodes[0].feature, 0);
	assert_float_equal(tree.nodes[0].threshold, 2.5, 0);
	assert_float_equal(tree.nodes[0].sse, 11.0, 1e-12); /* mean 2.5: 2.25*2 + 0.25 + 6.25 */
	assert_int_equal(tree.nodes[0].left, 1);
	assert_int_equal(tree.nodes[0].right, 2);
	assert_float_equal(tree.nodes[1].value, 1.0, 1e-12);
	assert_float_equal(tree.nodes[2].value, 4.0, 1e-12);
	assert_float_equal(tree.nodes[1].sse + tree.nodes[2].sse, 2.0, 1e-12);
	assert_float_equal(cart_predict(&tree, (double[]){ 2.4 }), 1.0, 1e-12);
	assert_float_equal(cart_predict(&tree, (double[]){ 2.6 }), 4.0, 1e-12);
	cart_free(&tree);
	free(rows);
}

/* y depends on feature 2 only (three levels); features 0 and 1 are noise. A
 * depth-2 tree finds the two thresholds on feature 2 and predicts exactly. */
static void test_finds_informative_feature(void **state)
{
	enum { N = 300, F = 3 };
	double *x = malloc(N * F * sizeof(*x)), *y = malloc(N * sizeof(*y));
	size_t *rows = all_rows(N);
	struct cart_data data = { .x = x, .y = y, .feature_count = F, .rows = rows, .row_count = N };
	struct cart_params params = { .max_depth = 2, .min_samples_leaf = 1 };
	struct cart_tree tree;
	uint32_t seed = 12345;

	(void)state;
	assert_non_null(x);
	assert_non_null(y);
	for (size_t i = 0; i < N; i++) {
		for (size_t f = 0; f < F; f++) {
			seed = seed * 1664525u + 1013904223u;
			x[i * F + f] = (seed >> 8) / (double)(1u << 24);
		}
		y[i] = x[i * F + 2] < 0.3 ? 10 : x[i * F + 2] < 0.7 ? 20 : 40;
	}
	assert_int_equal(cart_fit(&data, &params, &tree), 0);
	assert_int_equal(tree.nodes[0].feature, 2);
	for (size_t n = 0; n < tree.node_count; n++) {
		if (tree.nodes[n].feature == CART_LEAF)
			assert_float_equal(tree.nodes[n].sse, 0, 1e-9);
		else
			assert_int_equal(tree.nodes[n].feature, 2);
	}
	for (size_t i = 0; i < N; i++)
		assert_float_equal(cart_predict(&tree, &x[i * F]), y[i], 1e-9);
	cart_free(&tree);
	free(rows);
	free(x);
	free(y);
}

static void test_limits(void **state)
{
	const double x[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	const double y[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	size_t *rows = all_rows(8);
	struct cart_data data = { .x = x, .y = y, .feature_count = 1, .rows = rows, .row_count = 8 };
	struct cart_params params = { .max_depth = 0, .min_samples_leaf = 1 };
	struct cart_tree tree;

	(void)state;
	/* Depth 0: one leaf, the mean. */
	assert_int_equal(cart_fit(&data, &params, &tree), 0);
	assert_int_equal(tree.node_count, 1);
	assert_float_equal(tree.nodes[0].value, 4.5, 1e-12);
	cart_free(&tree);

	/* Leaves of at least 3: the ramp splits 4/4 once, and a node of 4 cannot split again. */
	params.max_depth = 10;
	params.min_samples_leaf = 3;
	assert_int_equal(cart_fit(&data, &params, &tree), 0);
	for (size_t n = 0; n < tree.node_count; n++)
		if (tree.nodes[n].feature == CART_LEAF)
			assert_true(tree.nodes[n].samples >= 3);
	assert_int_equal(tree.depth, 1);
	cart_free(&tree);

	/* Depth 2 on a ramp: exactly 7 nodes, children after their parent. */
	params.max_depth = 2;
	params.min_samples_leaf = 1;
	assert_int_equal(cart_fit(&data, &params, &tree), 0);
	assert_int_equal(tree.node_count, 7);
	assert_int_equal(tree.depth, 2);
	for (size_t n = 0; n < tree.node_count; n++) {
		if (tree.nodes[n].feature == CART_LEAF)
			continue;
		assert_true(tree.nodes[n].left > n);
		assert_true(tree.nodes[n].right > tree.nodes[n].left);
	}
	cart_free(&tree);
	free(rows);
}

/* Two identical columns: the tie goes to the lower feature index. */
static void test_tie_goes_to_lowest_feature(void **state)
{
	const double x[] = { 0, 0, 1, 1, 2, 2, 3, 3 };
	const double y[] = { 0, 0, 9, 9 };
	size_t *rows = all_rows(4);
	struct cart_data data = { .x = x, .y = y, .feature_count = 2, .rows = rows, .row_count = 4 };
	struct cart_params params = { .max_depth = 4, .min_samples_leaf = 1 };
	struct cart_tree tree;

	(void)state;
	assert_int_equal(cart_fit(&data, &params, &tree), 0);
	assert_int_equal(tree.nodes[0].feature, 0);
	assert_float_equal(tree.nodes[0].threshold, 1.5, 0);
	/* Pure children are not split further. */
	assert_int_equal(tree.node_count, 3);
	cart_free(&tree);
	free(rows);
}

/* Only the listed rows train the tree: the outlier in row 4 is held out. */
static void test_row_subset(void **state)
{
	const double x[] = { 1, 2, 3, 4, 5 };
	const double y[] = { 2, 2, 2, 2, 1000 };
	const size_t rows[] = { 3, 1, 0, 2 };
	struct cart_data data = { .x = x, .y = y, .feature_count = 1, .rows = rows, .row_count = 4 };
	struct cart_params params = { .max_depth = 4, .min_samples_leaf = 1 };
	struct cart_tree tree;

	(void)state;
	assert_int_equal(cart_fit(&data, &params, &tree), 0);
	assert_int_equal(tree.node_count, 1);
	assert_float_equal(cart_predict(&tree, &x[4]), 2, 0);
	cart_free(&tree);
}

static void test_deterministic(void **state)
{
	enum { N = 500, F = 4 };
	double *x = malloc(N * F * sizeof(*x)), *y = malloc(N * sizeof(*y));
	size_t *rows = all_rows(N);
	struct cart_data data = { .x = x, .y = y, .feature_count = F, .rows = rows, .row_count = N };
	struct cart_params params = { .max_depth = 4, .min_samples_leaf = 5 };
	struct cart_tree a, b;
	uint32_t seed = 7;

	(void)state;
	for (size_t i = 0; i < N * F; i++) {
		seed = seed * 1664525u + 1013904223u;
		x[i] = (double)(seed >> 20);
	}
	for (size_t i = 0; i < N; i++)
		y[i] = sin(x[i * F]) * 3 + x[i * F + 1] / 100 + (i % 7);
	assert_int_equal(cart_fit(&data, &params, &a), 0);
	assert_int_equal(cart_fit(&data, &params, &b), 0);
	assert_int_equal(a.node_count, b.node_count);
	assert_true(a.node_count > 1);
	for (size_t n = 0; n < a.node_count; n++) {
		assert_int_equal(a.nodes[n].feature, b.nodes[n].feature);
		assert_memory_equal(&a.nodes[n].threshold, &b.nodes[n].threshold, sizeof(double));
		assert_memory_equal(&a.nodes[n].value, &b.nodes[n].value, sizeof(double));
	}
	assert_true(a.depth <= 4);
	cart_free(&a);
	cart_free(&b);
	free(rows);
	free(x);
	free(y);
}

static void test_rejects_bad_input(void **state)
{
	double x[] = { 1, NAN };
	const double y[] = { 1, 2 };
	size_t *rows = all_rows(2);
	struct cart_data data = { .x = x, .y = y, .feature_count = 1, .rows = rows, .row_count = 2 };
	struct cart_params params = { .max_depth = 4, .min_samples_leaf = 1 };
	struct cart_tree tree;

	(void)state;
	assert_int_equal(cart_fit(&data, &params, &tree), -EINVAL);
	x[1] = 2;
	params.min_samples_leaf = 0;
	assert_int_equal(cart_fit(&data, &params, &tree), -EINVAL);
	params.min_samples_leaf = 1;
	params.max_depth = CART_MAX_DEPTH + 1;
	assert_int_equal(cart_fit(&data, &params, &tree), -EINVAL);
	params.max_depth = 4;
	data.row_count = 0;
	assert_int_equal(cart_fit(&data, &params, &tree), -EINVAL);
	free(rows);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hand_computed_split),
		cmocka_unit_test(test_finds_informative_feature),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_tie_goes_to_lowest_feature),
		cmocka_unit_test(test_row_subset),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_rejects_bad_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
