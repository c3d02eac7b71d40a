/* The learn guard: canary share, block size, and when a fine-tuned model is rolled back. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "reflexd/learn_guard.h"

static struct learn_guard guard_default(void)
{
	struct learn_guard_opts o;
	struct learn_guard g;

	learn_guard_opts_default(&o);
	learn_guard_init(&g, &o);
	return g;
}

/* Deterministic noise in [-amp, amp): a reward stream with spread, so that the
 * standard-error part of the threshold is exercised. */
static double noise(uint64_t *s, double amp)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return ((double)(*s >> 11) * 0x1.0p-53 * 2 - 1) * amp;
}

/* Feeds one block the way reflexd does, 1 loaded reward in 5. Returns the verdict of
 * the reward that completed it (WAIT if none did). */
static enum learn_guard_verdict feed(struct learn_guard *g, double loaded_mean, double tuned_mean, double amp,
				     uint64_t *seed, unsigned decisions)
{
	enum learn_guard_verdict v = LEARN_GUARD_WAIT;

	for (unsigned i = 0; i < decisions && v == LEARN_GUARD_WAIT; i++) {
		bool tuned = i % 5 != 0;

		v = learn_guard_observe(g, tuned, (tuned ? tuned_mean : loaded_mean) + noise(seed, amp));
	}
	return v;
}

static void test_defaults(void **state)
{
	struct learn_guard g = guard_default();

	(void)state;
	assert_true(g.opts.canary_share > 0 && g.opts.canary_share < 0.5);
	assert_true(learn_guard_canary(&g, 0.0));
	assert_true(learn_guard_canary(&g, g.opts.canary_share - 1e-9));
	assert_false(learn_guard_canary(&g, g.opts.canary_share));
	assert_false(learn_guard_canary(&g, 0.999));
}

/* No verdict until the block holds `block` fine-tuned rewards and enough loaded ones. */
static void test_waits_for_a_full_block(void **state)
{
	struct learn_guard g = guard_default();

	(void)state;
	for (unsigned i = 0; i < g.opts.block - 1; i++)
		assert_int_equal(learn_guard_observe(&g, true, 0.0), LEARN_GUARD_WAIT);
	/* the block is full of fine-tuned rewards, but no loaded one yet */
	assert_int_equal(learn_guard_observe(&g, true, 0.0), LEARN_GUARD_WAIT);
	for (unsigned i = 0; i < g.opts.min_loaded - 1; i++)
		assert_int_equal(learn_guard_observe(&g, false, 1.0), LEARN_GUARD_WAIT);
	assert_int_equal(learn_guard_observe(&g, false, 1.0), LEARN_GUARD_ROLLBACK);
	assert_int_equal(g.checks, 1);
	assert_int_equal(g.last_tuned_n, g.opts.block);
	assert_int_equal(g.last_loaded_n, g.opts.min_loaded);
}

static void test_equal_models_are_kept(void **state)
{
	struct learn_guard g = guard_default();
	uint64_t seed = 42;

	(void)state;
	for (int block = 0; block < 20; block++)
		assert_int_equal(feed(&g, 0.6, 0.6, 0.3, &seed, 1000), LEARN_GUARD_KEEP);
	assert_int_equal(g.checks, 20);
	assert_int_equal(g.rollbacks, 0);
}

static void test_better_model_is_kept(void **state)
{
	struct learn_guard g = guard_default();
	uint64_t seed = 7;

	(void)state;
	assert_int_equal(feed(&g, 0.5, 0.8, 0.3, &seed, 1000), LEARN_GUARD_KEEP);
	assert_true(g.last_tuned_mean > g.last_loaded_mean);
}

static void test_clearly_worse_model_is_rolled_back(void **state)
{
	struct learn_guard g = guard_default();
	uint64_t seed = 9;

	(void)state;
	assert_int_equal(feed(&g, 0.8, 0.4, 0.3, &seed, 1000), LEARN_GUARD_ROLLBACK);
	assert_int_equal(g.rollbacks, 1);
	assert_true(g.last_loaded_mean - g.last_tuned_mean > g.last_threshold);
	/* the block starts afresh after a verdict */
	assert_int_equal(g.loaded.n, 0);
	assert_int_equal(g.tuned.n, 0);
}

/* A gap inside the noise (well under 3 standard errors of the difference) is no
 * evidence: kept. The threshold is at least the margin. */
static void test_gap_within_noise_is_kept(void **state)
{
	struct learn_guard g = guard_default();
	uint64_t seed = 11;

	(void)state;
	assert_int_equal(feed(&g, 0.60, 0.57, 0.5, &seed, 1000), LEARN_GUARD_KEEP);
	assert_true(g.last_threshold >= g.opts.margin);
	assert_true(g.last_threshold > 0.1); /* 3 se with 20 loaded rewards of spread 0.5 */
}

/* Without noise the margin alone decides. */
static void test_margin_without_noise(void **state)
{
	struct learn_guard g = guard_default();
	uint64_t seed = 1;

	(void)state;
	assert_int_equal(feed(&g, 0.60, 0.59, 0.0, &seed, 1000), LEARN_GUARD_KEEP);
	assert_true(fabs(g.last_threshold - g.opts.margin) < 1e-12);
	assert_int_equal(feed(&g, 0.60, 0.55, 0.0, &seed, 1000), LEARN_GUARD_ROLLBACK);
}

static void test_restart_forgets_the_block(void **state)
{
	struct learn_guard g = guard_default();

	(void)state;
	for (unsigned i = 0; i < g.opts.block - 1; i++)
		learn_guard_observe(&g, true, 0.0);
	for (unsigned i = 0; i < g.opts.min_loaded; i++)
		learn_guard_observe(&g, false, 1.0);
	learn_guard_restart(&g);
	/* the reward that would have completed the old block completes nothing now */
	assert_int_equal(learn_guard_observe(&g, true, 0.0), LEARN_GUARD_WAIT);
	assert_int_equal(g.checks, 0);
}

static void test_non_finite_reward_ignored(void **state)
{
	struct learn_guard g = guard_default();

	(void)state;
	assert_int_equal(learn_guard_observe(&g, true, NAN), LEARN_GUARD_WAIT);
	assert_int_equal(learn_guard_observe(&g, false, INFINITY), LEARN_GUARD_WAIT);
	assert_int_equal(g.tuned.n + g.loaded.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_waits_for_a_full_block),
		cmocka_unit_test(test_equal_models_are_kept),
		cmocka_unit_test(test_better_model_is_kept),
		cmocka_unit_test(test_clearly_worse_model_is_rolled_back),
		cmocka_unit_test(test_gap_within_noise_is_kept),
		cmocka_unit_test(test_margin_without_noise),
		cmocka_unit_test(test_restart_forgets_the_block),
		cmocka_unit_test(test_non_finite_reward_ignored),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
