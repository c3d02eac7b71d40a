/* The controller's arithmetic: BDP caps and the full-pipe test that ends startup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "reflexd/controller.h"

static void test_cap_is_multiple_of_bdp(void **state)
{
	(void)state;
	/* 50 Mbit/s x 20 ms = 125000 bytes = 86.3 packets of 1448 -> 1.25 x = 107.9 -> 108. */
	assert_int_equal(cwnd_cap_packets(1.25, 50e6, 20000, 1448), 108);
	assert_int_equal(cwnd_cap_packets(1.0, 50e6, 20000, 1448), 87);
	/* Never below the floor; 0 multiple, rate or RTT means no cap. */
	assert_int_equal(cwnd_cap_packets(0.5, 1e6, 1000, 1448), CWND_MIN_CLAMP);
	/* A 20 us RTT counts as 1 ms: 10 Gbit/s x 1 ms = 1.25 MB = 863.3 packets. */
	assert_int_equal(cwnd_cap_packets(1.0, 10e9, 20, 1448), 864);
	assert_int_equal(cwnd_cap_packets(0, 50e6, 20000, 1448), 0);
	assert_int_equal(cwnd_cap_packets(1.25, 0, 20000, 1448), 0);
	assert_int_equal(cwnd_cap_packets(1.25, 50e6, 0, 1448), 0);
	/* mss 0 falls back to 1448. */
	assert_int_equal(cwnd_cap_packets(1.0, 50e6, 20000, 0), 87);
}

static void test_full_pipe_after_three_flat_windows(void **state)
{
	struct flow_control fc = { 0 };

	(void)state;
	assert_false(full_pipe_update(&fc, 1e6, 20000, 20000));
	assert_false(full_pipe_update(&fc, 4e6, 20000, 20000));  /* growing */
	assert_false(full_pipe_update(&fc, 16e6, 20000, 20000));
	assert_false(full_pipe_update(&fc, 18e6, 20000, 20000)); /* < 25 % growth: 1 */
	assert_false(full_pipe_update(&fc, 19e6, 20000, 20000)); /* 2 */
	assert_true(full_pipe_update(&fc, 19e6, 20000, 20000));  /* 3: full */
	assert_true(full_pipe_update(&fc, 80e6, 20000, 20000));  /* stays full */
}

static void test_growth_resets_the_count(void **state)
{
	struct flow_control fc2 = { 0 };

	(void)state;
	full_pipe_update(&fc2, 10e6, 20000, 20000);
	full_pipe_update(&fc2, 11e6, 20000, 20000);             /* 1 */
	assert_false(full_pipe_update(&fc2, 14e6, 20000, 20000)); /* +40 %: reset */
	assert_false(full_pipe_update(&fc2, 14e6, 20000, 20000)); /* 1 */
	assert_false(full_pipe_update(&fc2, 14e6, 20000, 20000)); /* 2 */
	assert_true(full_pipe_update(&fc2, 14e6, 20000, 20000));  /* 3 */
}

static void test_queue_building_ends_startup(void **state)
{
	struct flow_control fc = { 0 };

	(void)state;
	assert_false(full_pipe_update(&fc, 1e6, 29000, 20000));  /* 1.45 x min RTT: not yet */
	assert_true(full_pipe_update(&fc, 4e6, 31000, 20000));   /* 1.55 x: a queue builds */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cap_is_multiple_of_bdp),
		cmocka_unit_test(test_full_pipe_after_three_flat_windows),
		cmocka_unit_test(test_growth_resets_the_count),
		cmocka_unit_test(test_queue_building_ends_startup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
