/* Decision hysteresis: margin, hold time, at most one reversal per gap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "reflexd/hysteresis.h"

#define MS (1000ULL * 1000)
#define S (1000 * MS)

static const struct hysteresis_params params = { .margin = 0.10, .hold_ns = 300 * MS, .reversal_gap_ns = 30 * S };

static void test_first_decision_is_immediate(void **state)
{
	struct hysteresis h = { 0 };

	(void)state;
	assert_true(hysteresis_offer(&h, &params, 100, 1 * S));
	assert_int_equal((int)h.current, 100);
}

static void test_small_changes_ignored(void **state)
{
	struct hysteresis h = { 0 };

	(void)state;
	hysteresis_offer(&h, &params, 100, 1 * S);
	for (uint64_t t = 0; t < 20; t++)
		assert_false(hysteresis_offer(&h, &params, t % 2 ? 109 : 92, 2 * S + t * 100 * MS));
	assert_int_equal((int)h.current, 100);
	assert_int_equal((int)h.changes, 1);
}

static void test_change_must_hold(void **state)
{
	struct hysteresis h = { 0 };

	(void)state;
	hysteresis_offer(&h, &params, 100, 1 * S);
	assert_false(hysteresis_offer(&h, &params, 150, 2 * S));
	assert_false(hysteresis_offer(&h, &params, 150, 2 * S + 200 * MS));
	/* A dip back inside the margin cancels the wait. */
	assert_false(hysteresis_offer(&h, &params, 105, 2 * S + 250 * MS));
	assert_false(hysteresis_offer(&h, &params, 150, 2 * S + 300 * MS));
	assert_false(hysteresis_offer(&h, &params, 150, 2 * S + 500 * MS));
	assert_true(hysteresis_offer(&h, &params, 150, 2 * S + 600 * MS));
	assert_int_equal((int)h.current, 150);
}

static void test_one_reversal_per_gap(void **state)
{
	struct hysteresis h = { 0 };
	uint64_t t = 1 * S;

	(void)state;
	hysteresis_offer(&h, &params, 100, t);
	/* up */
	hysteresis_offer(&h, &params, 200, t += S);
	assert_true(hysteresis_offer(&h, &params, 200, t += 400 * MS));
	/* down: the first reversal is allowed */
	hysteresis_offer(&h, &params, 100, t += S);
	assert_true(hysteresis_offer(&h, &params, 100, t += 400 * MS));
	assert_int_equal((int)h.reversals, 1);
	/* up again within 30 s: refused, however long it holds */
	hysteresis_offer(&h, &params, 200, t += S);
	assert_false(hysteresis_offer(&h, &params, 200, t += 10 * S));
	assert_int_equal((int)h.current, 100);
	assert_true(h.reversals_refused > 0);
	/* further down is not a reversal */
	hysteresis_offer(&h, &params, 50, t += S);
	assert_true(hysteresis_offer(&h, &params, 50, t += 400 * MS));
	/* after the gap the reversal goes through */
	hysteresis_offer(&h, &params, 200, t += 30 * S);
	assert_true(hysteresis_offer(&h, &params, 200, t += 400 * MS));
	assert_int_equal((int)h.reversals, 2);
}

static void test_withdraw_is_immediate(void **state)
{
	struct hysteresis h = { 0 };

	(void)state;
	hysteresis_offer(&h, &params, 100, 1 * S);
	assert_true(hysteresis_offer(&h, &params, 0, 1 * S + MS));
	assert_int_equal((int)h.current, 0);
	assert_false(hysteresis_offer(&h, &params, 0, 2 * S));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_decision_is_immediate),
		cmocka_unit_test(test_small_changes_ignored),
		cmocka_unit_test(test_change_must_hold),
		cmocka_unit_test(test_one_reversal_per_gap),
		cmocka_unit_test(test_withdraw_is_immediate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
