// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* The one PRNG (lib/prng.h): the exact stream a seed gives (models and the DQN's
 * determinism depend on it), range and spread of its draws. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/prng.h"

/* Seed 1's first outputs, recorded from the simulator's generator before it moved
 * to lib/: a change here changes every simulator label and the shipped DQN. */
static void test_known_stream(void **state)
{
	static const uint64_t want[] = { 0xb3f2af6d0fc710c5ULL, 0x853b559647364ceaULL, 0x92f89756082a4514ULL };
	struct prng rng;

	(void)state;
	prng_seed(&rng, 1);
	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		uint64_t got = prng_next(&rng);

		if (got != want[i])
			fail_msg("output %u: got 0x%016llx, want 0x%016llx", i, (unsigned long long)got,
				 (unsigned long long)want[i]);
	}
	assert_float_equal(prng_uniform(&rng), 0.39132860204190445, 0);
	assert_int_equal(prng_below(&rng, 1000), 371);
}

static void test_same_seed_same_stream(void **state)
{
	struct prng a, b;

	(void)state;
	prng_seed(&a, 123);
	prng_seed(&b, 123);
	for (int i = 0; i < 1000; i++)
		assert_true(prng_next(&a) == prng_next(&b));
	prng_seed(&b, 124);
	assert_true(prng_next(&a) != prng_next(&b));
}

static void test_ranges_and_mean(void **state)
{
	struct prng rng;
	double sum = 0;
	unsigned hits[7] = { 0 };

	(void)state;
	prng_seed(&rng, 123);
	for (int i = 0; i < 10000; i++) {
		double u = prng_uniform(&rng);
		uint64_t k = prng_below(&rng, 7);

		assert_true(u >= 0.0 && u < 1.0);
		sum += u;
		assert_in_range(k, 0, 6);
		hits[k]++;
	}
	assert_float_equal(sum / 10000, 0.5, 0.02);
	for (int k = 0; k < 7; k++)
		assert_in_range(hits[k], 10000 / 7 - 150, 10000 / 7 + 150);
	assert_int_equal(prng_below(&rng, 1), 0);
}

/* splitmix64 from state 0 (Vigna's reference values) and the 53-bit unit map. */
static void test_splitmix_and_unit(void **state)
{
	uint64_t s = 0;

	(void)state;
	assert_true(prng_splitmix64(&s) == 0xe220a8397b1dcdafULL);
	assert_true(prng_splitmix64(&s) == 0x6e789e6aa1b965f4ULL);
	assert_float_equal(prng_unit(0), 0.0, 0);
	assert_true(prng_unit(UINT64_MAX) < 1.0);
	assert_float_equal(prng_unit(1ULL << 63), 0.5, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_stream),
		cmocka_unit_test(test_same_seed_same_stream),
		cmocka_unit_test(test_ranges_and_mean),
		cmocka_unit_test(test_splitmix_and_unit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
