/* The caps of flows in a shared queue: summed per min RTT band over two epochs, a
 * mean only where another flow saw a queue too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "reflexd/fair_share.h"

static struct fair_share fs;

static int reset(void **state)
{
	(void)state;
	fs = (struct fair_share){ 0 };
	return 0;
}

static void test_a_flow_alone_has_no_shared_mean(void **state)
{
	(void)state;
	for (uint32_t ms = 5000; ms < 8000; ms += 100) {
		fair_share_note(&fs, 40000, 60, 1, ms);
		assert_true(fair_share_mean(&fs, 40000, 1, ms) == 0);
	}
}

static void test_two_flows_of_one_band_share_their_mean(void **state)
{
	(void)state;
	fair_share_note(&fs, 40000, 60, 1, 5000);
	fair_share_note(&fs, 41000, 20, 2, 5100);
	assert_float_equal(fair_share_mean(&fs, 40000, 1, 5100), 40, 1e-9);
	assert_float_equal(fair_share_mean(&fs, 41000, 2, 5100), 40, 1e-9);
	/* the last epoch still counts, the one before it no longer */
	assert_float_equal(fair_share_mean(&fs, 40000, 1, 6900), 40, 1e-9);
	assert_true(fair_share_mean(&fs, 40000, 1, 7000) == 0);
}

static void test_the_neighbouring_band_counts_a_far_one_not(void **state)
{
	(void)state;
	fair_share_note(&fs, 40000, 60, 1, 5000);
	fair_share_note(&fs, 48000, 20, 2, 5000);  /* 1.2 x: this band or the next */
	fair_share_note(&fs, 160000, 10, 3, 5000); /* 4 x: apart */
	assert_float_equal(fair_share_mean(&fs, 40000, 1, 5000), 40, 1e-9);
	assert_true(fair_share_mean(&fs, 160000, 3, 5000) == 0);
}

static void test_epochs_roll_over(void **state)
{
	(void)state;
	fair_share_note(&fs, 40000, 100, 1, 5000);
	fair_share_note(&fs, 40000, 100, 2, 5000);
	fair_share_note(&fs, 40000, 20, 1, 6000);
	fair_share_note(&fs, 40000, 20, 2, 6000);
	assert_float_equal(fair_share_mean(&fs, 40000, 1, 6000), 60, 1e-9);
	/* two epochs later only the newest holds */
	fair_share_note(&fs, 40000, 30, 1, 8000);
	fair_share_note(&fs, 40000, 10, 2, 8000);
	assert_float_equal(fair_share_mean(&fs, 40000, 1, 8000), 20, 1e-9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_a_flow_alone_has_no_shared_mean, reset),
		cmocka_unit_test_setup(test_two_flows_of_one_band_share_their_mean, reset),
		cmocka_unit_test_setup(test_the_neighbouring_band_counts_a_far_one_not, reset),
		cmocka_unit_test_setup(test_epochs_roll_over, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
