/* Model drift: PSI against hand-computed values, the sliding window, the hand-over guard. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <math.h>

#include "reflexd/drift.h"

static void assert_close(double got, double want)
{
	if (fabs(got - want) > 1e-6)
		fail_msg("got %.9f, want %.9f", got, want);
}

static void test_psi_hand_computed(void **state)
{
	static const uint32_t ref[] = { 25, 25, 25, 25 }, live[] = { 40, 30, 20, 10 };

	(void)state;
	/* 0.15 ln 1.6 + 0.05 ln 1.2 - 0.05 ln 0.8 - 0.15 ln 0.4 */
	assert_close(drift_psi(ref, 100, live, 100, 4), 0.228217);
	assert_close(drift_psi(ref, 100, ref, 100, 4), 0);
	/* Scale does not matter, only fractions. */
	assert_close(drift_psi(ref, 100, (const uint32_t[]){ 4, 3, 2, 1 }, 10, 4), 0.228217);
}

static void test_psi_empty_bins_are_floored(void **state)
{
	static const uint32_t ref[] = { 100, 0 }, live[] = { 0, 100 };

	(void)state;
	/* (1e-4 - 1) ln 1e-4 + (1 - 1e-4) ln 1e4 = 2 x 0.9999 x ln 1e4 */
	assert_close(drift_psi(ref, 100, live, 100, 2), 2 * 0.9999 * log(1e4));
}

/* Two features; 100 training rows: f0 = 0..99 x 300, f1 = 0 (constant). */
static struct model *reference_model(void)
{
	struct model *m = model_create(MODEL_KIND_TREES, 2, 1);
	static const struct model_tree_node leaf = { .feature_idx = MODEL_LEAF, .leaf_value = 1 };
	struct reflex_err err;
	int16_t q[200];

	assert_non_null(m);
	assert_int_equal(model_set_feature(m, 0, "f0", 0, 1, &err), 0);
	assert_int_equal(model_set_feature(m, 1, "f1", 0, 1, &err), 0);
	assert_int_equal(model_set_output(m, 0, "y", 0, 10, 1, &err), 0);
	assert_int_equal(model_set_tree(m, 0, &leaf, 1, &err), 0);
	for (int i = 0; i < 100; i++) {
		q[2 * i] = (int16_t)(300 * i);
		q[2 * i + 1] = 0;
	}
	assert_int_equal(model_reference_build(m, q, 100, 10, &err), 0);
	return m;
}

static void test_window_like_training(void **state)
{
	struct model *m = reference_model();
	struct drift d;

	(void)state;
	assert_int_equal(drift_init(&d, m, 60), 0);
	/* The training rows again, spread over 50 seconds: each feature's PSI is 0. */
	for (int i = 0; i < 100; i++)
		drift_add(&d, 1000 + (uint64_t)i / 2, (const int16_t[]){ (int16_t)(300 * i), 0 });
	assert_true(drift_compute(&d, 1049));
	assert_int_equal(d.windows, 100);
	assert_close(d.psi[0], 0);
	assert_close(d.psi[1], 0);
	assert_close(d.total, 0);
	/* 60 s later every window has left the window. */
	assert_false(drift_compute(&d, 1109));
	assert_int_equal(d.windows, 0);
	drift_free(&d);
	model_free(m);
}

static void test_window_shifted(void **state)
{
	struct model *m = reference_model();
	unsigned top[2];
	struct drift d;

	(void)state;
	assert_int_equal(drift_init(&d, m, 60), 0);
	/* Every live f0 in the top bin (q > 26999), f1 like training. */
	for (int i = 0; i < 40; i++)
		drift_add(&d, 5000 + (uint64_t)i, (const int16_t[]){ 30000, 0 });
	assert_true(drift_compute(&d, 5039));
	/* Bin 9 goes 0.1 -> 1, nine bins 0.1 -> 1e-4: 0.9 ln 10 + 9 x 0.0999 x ln 1000 */
	assert_close(d.psi[0], 0.9 * log(10) + 9 * 0.0999 * log(1000));
	assert_close(d.psi[1], 0);
	assert_close(d.total, d.psi[0] / 2);
	drift_top_features(&d, top, 2);
	assert_int_equal(top[0], 0);
	assert_int_equal(top[1], 1);
	/* Too few windows: no verdict. */
	drift_free(&d);
	assert_int_equal(drift_init(&d, m, 60), 0);
	for (int i = 0; i < DRIFT_MIN_WINDOWS - 1; i++)
		drift_add(&d, 10, (const int16_t[]){ 30000, 0 });
	assert_false(drift_compute(&d, 10));
	assert_close(d.total, 0);
	drift_free(&d);
	assert_int_equal(drift_init(&d, m, 0), -EINVAL);
	model_free(m);
}

static void test_guard_hold_and_hysteresis(void **state)
{
	struct drift_guard g = { .threshold = 0.25, .hold_s = 10 };

	(void)state;
	for (uint64_t t = 100; t < 110; t++)
		assert_int_equal(drift_guard_update(&g, t, true, 0.3), DRIFT_NONE);
	assert_int_equal(drift_guard_update(&g, 110, true, 0.3), DRIFT_HANDOVER);
	assert_true(g.handed_over);
	/* Below the threshold but above half of it: stays with the heuristic. */
	for (uint64_t t = 111; t < 200; t++)
		assert_int_equal(drift_guard_update(&g, t, true, 0.2), DRIFT_NONE);
	/* Below half: hands back after the hold, a gap in between restarts the timing. */
	assert_int_equal(drift_guard_update(&g, 200, true, 0.1), DRIFT_NONE);
	assert_int_equal(drift_guard_update(&g, 205, false, 0), DRIFT_NONE);
	assert_int_equal(drift_guard_update(&g, 206, true, 0.1), DRIFT_NONE);
	assert_int_equal(drift_guard_update(&g, 215, true, 0.1), DRIFT_NONE);
	assert_int_equal(drift_guard_update(&g, 216, true, 0.1), DRIFT_RETURN);
	assert_false(g.handed_over);
	assert_int_equal(g.handovers, 1);
	assert_int_equal(g.returns, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_psi_hand_computed),
		cmocka_unit_test(test_psi_empty_bins_are_floored),
		cmocka_unit_test(test_window_like_training),
		cmocka_unit_test(test_window_shifted),
		cmocka_unit_test(test_guard_hold_and_hysteresis),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
