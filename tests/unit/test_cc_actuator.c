// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* The cc actuator's user-facing parts: `--actuator clamp|cc` and how a congestion
 * control list is searched for `reflex`. Registration itself needs the kernel and is
 * tested in tests/integration/test_cc_actuator.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "reflexd/cc_actuator.h"
#include "reflexd/reflexd_options.h"

#define ARGC(argv) ((int)(sizeof(argv) / sizeof((argv)[0])) - 1)

static void test_name_listed(void **state)
{
	(void)state;
	assert_true(cc_name_listed("reno bbr cubic reflex\n", "reflex"));
	assert_true(cc_name_listed("reflex", "reflex"));
	assert_true(cc_name_listed("reno reflex cubic", "reflex"));
	assert_false(cc_name_listed("reno bbr cubic\n", "reflex"));
	assert_false(cc_name_listed("reno reflexx cubic", "reflex"));
	assert_false(cc_name_listed("reno xreflex", "reflex"));
	assert_false(cc_name_listed("", "reflex"));
	/* A later exact word after a partial match still counts. */
	assert_true(cc_name_listed("reflex2 reflex", "reflex"));
}

static void test_actuator_default_is_clamp(void **state)
{
	char *argv[] = { "reflexd", "--iface", "lo", "--cgroup", "/sys/fs/cgroup", NULL };
	struct reflexd_options opt;
	struct reflex_err err = { 0 };

	(void)state;
	assert_int_equal(reflexd_parse_args(ARGC(argv), argv, &opt, &err), REFLEXD_ARGS_RUN);
	assert_int_equal(opt.config.actuator, REFLEX_ACTUATOR_CLAMP);
}

static void test_actuator_values(void **state)
{
	char *cc[] = { "reflexd", "--iface", "lo", "--cgroup", "/sys/fs/cgroup", "--actuator", "cc", NULL };
	char *clamp[] = { "reflexd", "--actuator", "cc", "--actuator", "clamp", "--iface", "lo", NULL };
	char *cleanup[] = { "reflexd", "--cleanup", "--actuator", "cc", NULL };
	struct reflexd_options opt;
	struct reflex_err err = { 0 };

	(void)state;
	assert_int_equal(reflexd_parse_args(ARGC(cc), cc, &opt, &err), REFLEXD_ARGS_RUN);
	assert_int_equal(opt.config.actuator, REFLEX_ACTUATOR_CC);
	assert_int_equal(reflexd_parse_args(ARGC(clamp), clamp, &opt, &err), REFLEXD_ARGS_RUN);
	assert_int_equal(opt.config.actuator, REFLEX_ACTUATOR_CLAMP);
	/* --cleanup --actuator cc sweeps dead registrations: no cgroup needed. */
	assert_int_equal(reflexd_parse_args(ARGC(cleanup), cleanup, &opt, &err), REFLEXD_ARGS_RUN);
	assert_int_equal(opt.config.actuator, REFLEX_ACTUATOR_CC);
	assert_true(opt.cleanup_only);
}

static void test_actuator_errors(void **state)
{
	char *unknown[] = { "reflexd", "--iface", "lo", "--cgroup", "/x", "--actuator", "bbr", NULL };
	char *empty[] = { "reflexd", "--iface", "lo", "--cgroup", "/x", "--actuator", "", NULL };
	char *no_cgroup[] = { "reflexd", "--iface", "lo", "--actuator", "cc", NULL };
	char *no_value[] = { "reflexd", "--iface", "lo", "--actuator", NULL };
	struct reflexd_options opt;
	struct reflex_err err = { 0 };

	(void)state;
	assert_int_equal(reflexd_parse_args(ARGC(unknown), unknown, &opt, &err), REFLEXD_ARGS_ERROR);
	assert_string_equal(err.msg, "--actuator: 'bbr' is not clamp or cc");
	assert_int_equal(reflexd_parse_args(ARGC(empty), empty, &opt, &err), REFLEXD_ARGS_ERROR);
	assert_string_equal(err.msg, "--actuator: '' is not clamp or cc");
	assert_int_equal(reflexd_parse_args(ARGC(no_cgroup), no_cgroup, &opt, &err), REFLEXD_ARGS_ERROR);
	assert_string_equal(err.msg, "--actuator cc needs --cgroup (the connections it runs)");
	assert_int_equal(reflexd_parse_args(ARGC(no_value), no_value, &opt, &err), REFLEXD_ARGS_ERROR);
	assert_string_equal(err.msg, "option '--actuator' needs a value");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_listed),
		cmocka_unit_test(test_actuator_default_is_clamp),
		cmocka_unit_test(test_actuator_values),
		cmocka_unit_test(test_actuator_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
