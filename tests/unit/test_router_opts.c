// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* reflexd's router options: --path NAME:IF:NEXTHOP parsing, the option set's checks. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "router/router.h"

static char *addr4(const struct in_addr *a, char *buf)
{
	return (char *)inet_ntop(AF_INET, a, buf, INET_ADDRSTRLEN);
}

static char *addr6(const struct in6_addr *a, char *buf)
{
	return (char *)inet_ntop(AF_INET6, a, buf, INET6_ADDRSTRLEN);
}

static void test_parse_ipv4(void **state)
{
	struct router_path p;
	struct reflex_err err = { 0 };
	char buf[INET6_ADDRSTRLEN];

	(void)state;
	assert_int_equal(router_parse_path("path1:rfx-r1:10.12.1.2", &p, &err), 0);
	assert_string_equal(p.name, "path1");
	assert_string_equal(p.ifname, "rfx-r1");
	assert_true(p.has_nexthop4);
	assert_false(p.has_nexthop6);
	assert_string_equal(addr4(&p.nexthop4, buf), "10.12.1.2");
}

static void test_parse_ipv6_and_both(void **state)
{
	struct router_path p;
	struct reflex_err err = { 0 };
	char buf[INET6_ADDRSTRLEN];

	(void)state;
	/* The next hop holds ':' itself: only the first two separate the parts. */
	assert_int_equal(router_parse_path("wan-b:eth2:fd00:12:2::2", &p, &err), 0);
	assert_string_equal(p.name, "wan-b");
	assert_string_equal(p.ifname, "eth2");
	assert_false(p.has_nexthop4);
	assert_true(p.has_nexthop6);
	assert_string_equal(addr6(&p.nexthop6, buf), "fd00:12:2::2");

	assert_int_equal(router_parse_path("a.b_c:eth0.100:fe80::1,192.0.2.1", &p, &err), 0);
	assert_string_equal(p.ifname, "eth0.100");
	assert_true(p.has_nexthop4 && p.has_nexthop6);
	assert_string_equal(addr4(&p.nexthop4, buf), "192.0.2.1");
	assert_string_equal(addr6(&p.nexthop6, buf), "fe80::1");
}

/* Each bad argument fails with -EINVAL and a message that names the place. */
static void expect_error(const char *arg, const char *needle)
{
	struct router_path p;
	struct reflex_err err = { 0 };

	assert_int_equal(router_parse_path(arg, &p, &err), -EINVAL);
	if (!strstr(err.msg, needle))
		fail_msg("--path '%s': message '%s' lacks '%s'", arg, err.msg, needle);
}

/* The argument is the text the byte offset points into. */
static void test_parse_error_location(void **state)
{
	struct router_path p;
	struct reflex_err err = { 0 };

	(void)state;
	assert_int_equal(router_parse_path("pa th:eth0:10.0.0.1", &p, &err), -EINVAL);
	assert_string_equal(err.file, "--path 'pa th:eth0:10.0.0.1'");
	assert_true(err.has_offset);
	assert_int_equal(err.offset, 2);
	assert_string_equal(err.msg, "--path 'pa th:eth0:10.0.0.1': byte 2: ' ' is not allowed in a path name "
				     "(A-Z a-z 0-9 _ . -)");
}

static void test_parse_errors(void **state)
{
	(void)state;
	expect_error("path1", "no ':' after the name");
	expect_error("path1:eth0", "no ':' after the interface");
	expect_error(":eth0:10.0.0.1", "byte 0: the path name is empty");
	expect_error("pa th:eth0:10.0.0.1", "byte 2: ' ' is not allowed in a path name");
	expect_error("abcdefghijklmnop:eth0:10.0.0.1", "byte 0: the path name is longer than 15");
	expect_error("p::10.0.0.1", "byte 2: the interface name is empty");
	expect_error("p:et/h0:10.0.0.1", "byte 4: an interface name has no");
	expect_error("p:abcdefghijklmnop:10.0.0.1", "byte 2: the interface name is longer than 15");
	expect_error("p:..:10.0.0.1", "is not an interface name");
	expect_error("p:eth0:", "byte 7: a next hop address is empty");
	expect_error("p:eth0:10.0.0.256", "byte 7: '10.0.0.256' is not an IPv4 or IPv6 address");
	expect_error("p:eth0:10.0.0.1,", "byte 16: a next hop address is empty");
	expect_error("p:eth0:10.0.0.1,10.0.0.2", "byte 16: a second IPv4 next hop");
	expect_error("p:eth0:fd00::1,fd00::2", "byte 15: a second IPv6 next hop");
	expect_error("p:eth0:0.0.0.0", "0.0.0.0 cannot be a next hop");
	expect_error("p:eth0:224.0.0.1", "224.0.0.1 cannot be a next hop");
	expect_error("p:eth0:255.255.255.255", "cannot be a next hop");
	expect_error("p:eth0:::", "byte 7: :: cannot be a next hop");
	expect_error("p:eth0:ff02::1", "ff02::1 cannot be a next hop");
}

static void test_opts_add_and_check(void **state)
{
	struct router_opts o;
	struct reflex_err err = { 0 };

	(void)state;
	router_opts_init(&o);
	assert_int_equal(o.bandit.mode, BANDIT_MODE_UCB1);
	assert_int_equal(router_opts_check(&o, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "--lan IF is required"));
	o.lan = "lan0";
	assert_int_equal(router_opts_check(&o, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "at least one --path"));

	assert_int_equal(router_opts_add_path(&o, "a:wan0:10.0.0.1", &err), 0);
	assert_int_equal(router_opts_add_path(&o, "a:wan1:10.0.1.1", &err), -EEXIST);
	assert_non_null(strstr(err.msg, "a path named 'a'"));
	assert_int_equal(router_opts_add_path(&o, "b:wan0:10.0.1.1", &err), -EEXIST);
	assert_non_null(strstr(err.msg, "interface wan0 is path 'a'"));
	assert_int_equal(router_opts_add_path(&o, "b:wan1:10.0.1.1", &err), 0);
	assert_int_equal(router_opts_add_path(&o, "c:wan2:10.0.2.1", &err), 0);
	assert_int_equal(router_opts_add_path(&o, "d:wan3:10.0.3.1", &err), 0);
	assert_int_equal(router_opts_add_path(&o, "e:wan4:10.0.4.1", &err), -ENOSPC);
	assert_int_equal(o.n_paths, 4);
	assert_int_equal(router_opts_check(&o, &err), 0);

	o.lan = "wan2";
	assert_int_equal(router_opts_check(&o, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "is the --lan interface"));
	o.lan = "lan0";
	o.pin_dir = "relative";
	assert_int_equal(router_opts_check(&o, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "--pin-dir"));
}

static void test_opts_bandit(void **state)
{
	struct router_opts o;
	struct reflex_err err = { 0 };

	(void)state;
	router_opts_init(&o);
	assert_int_equal(router_opts_set_bandit(&o, "discounted", &err), 0);
	assert_int_equal(o.bandit.mode, BANDIT_MODE_DISCOUNTED);
	assert_float_equal(o.bandit.c, 0.2, 1e-12);
	assert_int_equal(router_opts_set_bandit(&o, "round-robin", &err), 0);
	assert_int_equal(o.bandit.mode, BANDIT_MODE_ROUND_ROBIN);
	assert_int_equal(router_opts_set_bandit(&o, "thompson", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "--bandit 'thompson'"));

	assert_int_equal(router_opts_set_bandit_c(&o, "0.5", &err), 0);
	assert_float_equal(o.bandit.c, 0.5, 1e-12);
	assert_int_equal(router_opts_set_bandit_c(&o, "-1", &err), -EINVAL);
	assert_int_equal(router_opts_set_bandit_c(&o, "nan", &err), -EINVAL);
	assert_int_equal(router_opts_set_bandit_c(&o, "1x", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "--bandit-c '1x'"));
	assert_float_equal(o.bandit.c, 0.5, 1e-12);
}

static void test_marks(void **state)
{
	struct router_opts o;
	struct reflex_err err = { 0 };

	(void)state;
	router_opts_init(&o);
	o.lan = "lan0";
	assert_int_equal(router_opts_add_path(&o, "a:wan0:10.0.0.1", &err), 0);
	assert_int_equal(router_opts_add_path(&o, "b:wan1:10.0.1.1", &err), 0);
	assert_int_equal(router_opts_check(&o, &err), 0);
	/* Defaults: base + i x the mask's lowest bit, inside the mask. */
	assert_int_equal(router_path_mark(&o, 0), ROUTER_DEFAULT_MARK_BASE);
	assert_int_equal(router_path_mark(&o, 1), ROUTER_DEFAULT_MARK_BASE + 0x10000);

	assert_int_equal(router_opts_set_mark(&o.mark_mask, "--mark-mask", "0x3f00", &err), 0);
	assert_int_equal(router_opts_set_mark(&o.mark_base, "--mark-base", "256", &err), 0);
	assert_int_equal(router_opts_check(&o, &err), 0);
	assert_int_equal(router_path_mark(&o, 1), 0x200);

	/* A base outside the mask, or paths running past it. */
	o.mark_base = 0x4000;
	assert_int_equal(router_opts_check(&o, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "--mark-base 0x4000 has bits outside --mark-mask 0x3f00"));
	o.mark_base = 0x3f00;
	assert_int_equal(router_opts_check(&o, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "do not fit in --mark-mask 0x3f00"));

	assert_int_equal(router_opts_set_mark(&o.mark_mask, "--mark-mask", "0", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "--mark-mask '0': not a number in 1..0xffffffff"));
	assert_int_equal(router_opts_set_mark(&o.mark_base, "--mark-base", "0x100000000", &err), -EINVAL);
	assert_int_equal(router_opts_set_mark(&o.mark_base, "--mark-base", "-1", &err), -EINVAL);
	assert_int_equal(router_opts_set_mark(&o.mark_base, "--mark-base", "12x", &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ipv4),
		cmocka_unit_test(test_parse_ipv6_and_both),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_error_location),
		cmocka_unit_test(test_opts_add_and_check),
		cmocka_unit_test(test_marks),
		cmocka_unit_test(test_opts_bandit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
