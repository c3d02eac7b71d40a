/* Decision hysteresis: margin, hold time, at most one reversal per gap unless the
 * run it reverses moved more than a factor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "reflexd/hysteresis.h"

#define MS (1000ULL * 1000)
#define S (1000 * MS)

static const struct hysteresis_params params = HYSTERESIS_DEFAULTS;

static void test_first_decision_is_immediate(void **state)
{
	struct hysteresis h = { 0 };

	(void)state;
	assert_true(hysteresis_offer(&h, &params, 100, 1 * S, false));
	assert_int_equal((int)h.current, 100);
}

static void test_small_changes_ignored(void **state)
{
	struct hysteresis h = { 0 };

	(void)state;
	hysteresis_offer(&h, &params, 100, 1 * S, false);
	for (uint64_t t = 0; t < 20; t++)
		assert_false(hysteresis_offer(&h, &params, t % 2 ? 109 : 92, 2 * S + t * 100 * MS, false));
	assert_int_equal((int)h.current, 100);
	assert_int_equal((int)h.changes, 1);
}

static void test_change_must_hold(void **state)
{
	struct hysteresis h = { 0 };

	(void)state;
	hysteresis_offer(&h, &params, 100, 1 * S, false);
	assert_false(hysteresis_offer(&h, &params, 150, 2 * S, false));
	assert_false(hysteresis_offer(&h, &params, 150, 2 * S + 200 * MS, false));
	/* A dip back inside the margin cancels the wait. */
	assert_false(hysteresis_offer(&h, &params, 105, 2 * S + 250 * MS, false));
	assert_false(hysteresis_offer(&h, &params, 150, 2 * S + 300 * MS, false));
	assert_false(hysteresis_offer(&h, &params, 150, 2 * S + 500 * MS, false));
	assert_true(hysteresis_offer(&h, &params, 150, 2 * S + 600 * MS, false));
	assert_int_equal((int)h.current, 150);
}

/* The first cap is the cwnd that filled the pipe, startup's queue included; a measured
 * cut of it (the queue still there a window later) is taken at once, not after the hold.
 * Only that one: later measured cuts wait the hold, and so does an unmeasured one. */
static void test_first_measured_cut_is_immediate(void **state)
{
	struct hysteresis h = { 0 };
	uint64_t t = 1 * S;

	(void)state;
	hysteresis_offer(&h, &params, 250, t, false);
	assert_true(hysteresis_offer(&h, &params, 100, t += 100 * MS, true));
	assert_int_equal((int)h.current, 100);
	assert_false(hysteresis_offer(&h, &params, 60, t += 2 * S, true));
	assert_true(hysteresis_offer(&h, &params, 60, t += params.hold_ns, true));

	h = (struct hysteresis){ 0 };
	hysteresis_offer(&h, &params, 250, t, false);
	assert_false(hysteresis_offer(&h, &params, 100, t += 100 * MS, false));
	assert_int_equal((int)h.current, 250);
}

static void test_one_reversal_per_gap(void **state)
{
	struct hysteresis h = { 0 };
	uint64_t t = 1 * S;

	(void)state;
	hysteresis_offer(&h, &params, 100, t, false);
	/* up */
	hysteresis_offer(&h, &params, 200, t += S, false);
	assert_true(hysteresis_offer(&h, &params, 200, t += 400 * MS, false));
	/* down: the first reversal is allowed */
	hysteresis_offer(&h, &params, 100, t += S, false);
	assert_true(hysteresis_offer(&h, &params, 100, t += 400 * MS, false));
	assert_int_equal((int)h.reversals, 1);
	/* up again within 30 s: refused, however long it holds */
	hysteresis_offer(&h, &params, 200, t += S, false);
	assert_false(hysteresis_offer(&h, &params, 200, t += 10 * S, false));
	assert_int_equal((int)h.current, 100);
	assert_true(h.reversals_refused > 0);
	/* further down is not a reversal */
	hysteresis_offer(&h, &params, 50, t += S, false);
	assert_true(hysteresis_offer(&h, &params, 50, t += 400 * MS, false));
	/* after the gap the reversal goes through */
	hysteresis_offer(&h, &params, 200, t += 30 * S, false);
	assert_true(hysteresis_offer(&h, &params, 200, t += 400 * MS, false));
	assert_int_equal((int)h.reversals, 2);
}

static void test_defaults_are_what_the_tests_assume(void **state)
{
	(void)state;
	assert_true(params.margin == 0.10);
	assert_int_equal(params.hold_ns, 300 * MS);
	assert_int_equal(params.reversal_gap_ns, 30 * S);
	assert_int_equal(params.quick_reversal_gap_ns, 1 * S);
	assert_true(params.quick_reversal_factor == 2.0);
}

/* Takes a change to value (offered, then held for the hold time); returns whether it was taken. */
static bool settle(struct hysteresis *h, double value, uint64_t *t)
{
	bool taken = hysteresis_offer(h, &params, value, *t += 100 * MS, false);

	return hysteresis_offer(h, &params, value, *t += 400 * MS, false) || taken;
}

static void test_reversal_after_a_large_run_is_quick(void **state)
{
	struct hysteresis h = { 0 };
	uint64_t t = 1 * S, reversed_at;

	(void)state;
	hysteresis_offer(&h, &params, 200, t, false);
	assert_true(settle(&h, 300, &t));
	/* down: the first reversal; the run down then falls 300 -> 60, 5x */
	assert_true(settle(&h, 150, &t));
	assert_int_equal((int)h.reversals, 1);
	reversed_at = (uint64_t)h.reversed_ms * MS;
	assert_true(settle(&h, 60, &t));
	/* back up under a second after the last reversal: still refused */
	assert_true(t - reversed_at < 1 * S);
	assert_false(hysteresis_offer(&h, &params, 120, t += 100 * MS, false));
	assert_false(hysteresis_offer(&h, &params, 120, t = reversed_at + 900 * MS, false));
	assert_int_equal((int)h.current, 60);
	/* a second after it, well inside 30 s: taken, because the run it reverses moved 5x */
	assert_true(hysteresis_offer(&h, &params, 120, t = reversed_at + 1 * S, false));
	assert_int_equal((int)h.current, 120);
	assert_int_equal((int)h.reversals, 2);
	/* this new run up moved only 2x (60 -> 120): the next reversal waits the 30 s */
	hysteresis_offer(&h, &params, 60, t += 2 * S, false);
	assert_false(hysteresis_offer(&h, &params, 60, t += 10 * S, false));
	assert_int_equal((int)h.current, 120);
	t = reversed_at + 1 * S + 30 * S;
	assert_true(settle(&h, 60, &t));
	assert_int_equal((int)h.reversals, 3);
}

/* Noise inside a band narrower than the quick factor reverses at most once per 30 s,
 * however long it goes on. */
static void test_noise_in_a_band_reverses_once_per_gap(void **state)
{
	struct hysteresis h = { 0 };
	uint64_t t = 1 * S;

	(void)state;
	hysteresis_offer(&h, &params, 100, t, false);
	for (int i = 0; i < 600; i++) {
		hysteresis_offer(&h, &params, i % 2 ? 190 : 100, t += 500 * MS, false);
		hysteresis_offer(&h, &params, i % 2 ? 190 : 100, t += 500 * MS, false);
	}
	/* 600 s of offers: the first change up is no reversal, then one per 30 s */
	assert_in_range(h.reversals, 1, 600 / 30 + 1);
	assert_true(h.reversals_refused > 0);
}

/* 100, up to 150, then down to 110: one reversal, of a run of 1.36x; returns its time. */
static uint64_t reversed_once(struct hysteresis *h, uint64_t *t)
{
	hysteresis_offer(h, &params, 100, *t, false);
	assert_true(settle(h, 150, t));
	assert_true(settle(h, 110, t));
	assert_int_equal((int)h->reversals, 1);
	return (uint64_t)h->reversed_ms * MS;
}

/* A measured reversal (a probe with no queue, a cut while a queue builds) of a run of
 * less than the quick factor waits the quick gap, not the 30 s; still one a second,
 * and the hold and the margin still apply. */
static void test_measured_reversal_waits_only_the_quick_gap(void **state)
{
	struct hysteresis h = { 0 }, m = { 0 };
	uint64_t t = 1 * S, reversed_at;

	(void)state;
	reversed_at = reversed_once(&h, &t);
	hysteresis_offer(&h, &params, 140, t = reversed_at + 1 * S, false);
	assert_false(hysteresis_offer(&h, &params, 140, t += 10 * S, false));
	assert_int_equal((int)h.current, 110);

	t = 1 * S;
	reversed_at = reversed_once(&m, &t);
	hysteresis_offer(&m, &params, 140, t = reversed_at + 100 * MS, true);
	assert_false(hysteresis_offer(&m, &params, 140, t = reversed_at + 900 * MS, true));
	assert_int_equal((int)m.current, 110);
	assert_true(hysteresis_offer(&m, &params, 140, t = reversed_at + 1 * S, true));
	assert_int_equal((int)m.current, 140);
	assert_int_equal((int)m.reversals, 2);
	reversed_at = (uint64_t)m.reversed_ms * MS;
	assert_false(hysteresis_offer(&m, &params, 100, t = reversed_at + 2 * S, true));
	assert_false(hysteresis_offer(&m, &params, 130, t += 400 * MS, true));
	assert_int_equal((int)m.current, 140);
}

static void test_withdraw_is_immediate(void **state)
{
	struct hysteresis h = { 0 };

	(void)state;
	hysteresis_offer(&h, &params, 100, 1 * S, false);
	assert_true(hysteresis_offer(&h, &params, 0, 1 * S + MS, false));
	assert_int_equal((int)h.current, 0);
	assert_false(hysteresis_offer(&h, &params, 0, 2 * S, false));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_decision_is_immediate),
		cmocka_unit_test(test_small_changes_ignored),
		cmocka_unit_test(test_change_must_hold),
		cmocka_unit_test(test_first_measured_cut_is_immediate),
		cmocka_unit_test(test_one_reversal_per_gap),
		cmocka_unit_test(test_defaults_are_what_the_tests_assume),
		cmocka_unit_test(test_reversal_after_a_large_run_is_quick),
		cmocka_unit_test(test_noise_in_a_band_reverses_once_per_gap),
		cmocka_unit_test(test_measured_reversal_waits_only_the_quick_gap),
		cmocka_unit_test(test_withdraw_is_immediate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
