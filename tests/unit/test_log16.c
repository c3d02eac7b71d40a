/*
 * lib/log16: 16-bit packing of rates and RTTs. The integer path must give the
 * double path's codes exactly (one encoding, two implementations).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/log16.h"

/* A packed value is at most 0.1 % under the value, never over, and keeps the order. */
static void test_packed_values_keep_order_within_a_tenth_of_a_percent(void **state)
{
	uint16_t prev = 0;

	(void)state;
	assert_int_equal(log16_pack(0), 0);
	assert_int_equal(log16_pack(0.5), 0);
	assert_int_equal(log16_pack(NAN), 0);
	assert_true(log16_unpack(log16_pack(1)) == 1.0);
	assert_true(log16_unpack(log16_pack(50e6)) > 50e6 * 0.999);
	for (double value = 1; value < 1e15; value *= 1.0137) {
		uint16_t packed = log16_pack(value);
		double back = log16_unpack(packed);

		if (back > value || back < value * (1 - 1.0 / 1024))
			fail_msg("%.6g packs to %u, unpacked %.6g", value, packed, back);
		assert_true(packed >= prev);
		prev = packed;
	}
	assert_int_equal(log16_pack(1e30), UINT16_MAX);
}

/* Integers: exact under 2048, the double path's code everywhere, order kept. */
static void test_integers_pack_as_doubles_do(void **state)
{
	uint16_t prev = 0;

	(void)state;
	for (uint32_t v = 0; v < 2048; v++)
		assert_int_equal(log16_unpack_u32(log16_pack_u32(v)), v);
	for (uint64_t v = 1; v <= UINT32_MAX; v = v * 1.0071 + 1) {
		uint16_t packed = log16_pack_u32((uint32_t)v);
		uint32_t back = log16_unpack_u32(packed);

		if (packed != log16_pack((double)v) || back != (uint32_t)log16_unpack(packed))
			fail_msg("%llu: u32 path %u -> %u, double path %u -> %.0f", (unsigned long long)v, packed, back,
				 log16_pack((double)v), log16_unpack(log16_pack((double)v)));
		assert_true(back <= v && back >= v * (1 - 1.0 / 1024));
		assert_true(packed >= prev);
		prev = packed;
	}
	assert_int_equal(log16_unpack_u32(log16_pack_u32(UINT32_MAX)), 0xffe00000u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_packed_values_keep_order_within_a_tenth_of_a_percent),
		cmocka_unit_test(test_integers_pack_as_doubles_do),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
