// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* BDP -> packets (lib/bdp.h), the cap rule reflexd, the simulator and the DQN
 * environment share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/bdp.h"

static void test_ceil_of_the_bdp(void **state)
{
	(void)state;
	/* 50 Mbit/s x 20 ms = 125000 B = 86.33 packets of 1448 B. */
	assert_int_equal(bdp_cap_packets(1.0, 50e6, 20000, 1448), 87);
	assert_int_equal(bdp_cap_packets(1.25, 50e6, 20000, 1448), 108); /* ceil(107.91) */
	assert_int_equal(bdp_cap_packets(1.0, 12e6, 10000, 1500), 10);    /* exactly 10: no rounding up */
}

static void test_floors_and_limits(void **state)
{
	(void)state;
	assert_int_equal(bdp_cap_packets(0.5, 1e6, 1000, 1448), BDP_MIN_CAP_PACKETS);
	/* A 20 us veth RTT counts as BDP_RTT_FLOOR_US: 10 Gbit/s x 1 ms = 863.5 packets. */
	assert_int_equal(bdp_cap_packets(1.0, 10e9, 20, 1448), 864);
	assert_int_equal(bdp_cap_packets(4.0, 100e9, 1e6, 1448), BDP_MAX_CAP_PACKETS);
}

static void test_no_cap(void **state)
{
	(void)state;
	assert_int_equal(bdp_cap_packets(0, 50e6, 20000, 1448), 0);
	assert_int_equal(bdp_cap_packets(-1, 50e6, 20000, 1448), 0);
	assert_int_equal(bdp_cap_packets(1.25, 0, 20000, 1448), 0);
	assert_int_equal(bdp_cap_packets(1.25, 50e6, 0, 1448), 0);
	assert_int_equal(bdp_cap_packets(1.25, 50e6, 20000, 0), 0);
	assert_int_equal(bdp_cap_packets(0.0 / 0.0, 50e6, 20000, 1448), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ceil_of_the_bdp),
		cmocka_unit_test(test_floors_and_limits),
		cmocka_unit_test(test_no_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
