// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* The nearest-rank percentile (lib/percentile.h) against a sort, on runs of
 * equal values and at the edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/percentile.h"
#include "lib/prng.h"

static void test_rank(void **state)
{
	(void)state;
	assert_int_equal(percentile_rank(100, 0.95), 95);
	assert_int_equal(percentile_rank(100, 0.50), 50);
	assert_int_equal(percentile_rank(101, 0.50), 51);
	assert_int_equal(percentile_rank(10, 0.0), 1);
	assert_int_equal(percentile_rank(10, 1.0), 10);
	assert_int_equal(percentile_rank(1, 0.95), 1);
	assert_int_equal(percentile_rank(7, 2.0), 7);
}

static void test_small_sets(void **state)
{
	uint32_t one[] = { 42 }, v[] = { 5, 1, 4, 2, 3 };
	uint64_t w[] = { 30, 10, 20 };

	(void)state;
	assert_int_equal(percentile_u32(NULL, 0, 0.5), 0);
	assert_int_equal(percentile_u64(NULL, 0, 0.5), 0);
	assert_int_equal(percentile_u32(one, 1, 0.95), 42);
	assert_int_equal(percentile_u32(v, 5, 0.5), 3);   /* rank 3 */
	assert_int_equal(percentile_u32(v, 5, 0.95), 5);  /* rank 5 */
	assert_int_equal(percentile_u32(v, 5, 0.0), 1);   /* rank 1 */
	assert_int_equal(percentile_u64(w, 3, 0.34), 20); /* rank ceil(1.02) = 2 */
	assert_int_equal(percentile_u64(w, 3, 0.33), 10);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Random sets with many repeats (a standing queue): the k-th of a sorted copy. */
static void test_matches_sort(void **state)
{
	enum { N = 2000 };
	static uint32_t v[N], sorted[N], work[N];
	static uint64_t work64[N];
	const double qs[] = { 0.0, 0.01, 0.05, 0.5, 0.95, 0.99, 1.0 };
	struct prng rng;

	(void)state;
	prng_seed(&rng, 7);
	for (int round = 0; round < 20; round++) {
		size_t n = 1 + (size_t)prng_below(&rng, N);
		uint64_t spread = round % 2 ? 5 : 1000000;

		for (size_t i = 0; i < n; i++)
			v[i] = (uint32_t)prng_below(&rng, spread);
		memcpy(sorted, v, n * sizeof(*v));
		qsort(sorted, n, sizeof(*sorted), cmp_u32);
		for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
			uint32_t want = sorted[percentile_rank(n, qs[k]) - 1];

			memcpy(work, v, n * sizeof(*v));
			for (size_t i = 0; i < n; i++)
				work64[i] = (uint64_t)v[i] << 20;
			assert_int_equal(percentile_u32(work, n, qs[k]), want);
			assert_true(percentile_u64(work64, n, qs[k]) == (uint64_t)want << 20);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rank),
		cmocka_unit_test(test_small_sets),
		cmocka_unit_test(test_matches_sort),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
