// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* The router's rule and route records: the state-file lines a later cleanup reads. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "router/router_routes.h"

static void test_round_trip(void **state)
{
	struct router_route rule = { .kind = ROUTER_ROUTE_RULE, .family = AF_INET6, .table = 21075,
				     .priority = 21075, .mark = 0x530000, .mask = 0xff0000 };
	struct router_route route = { .kind = ROUTER_ROUTE_DEFAULT, .family = AF_INET, .table = 21074,
				      .ifname = "rfx-r1" };
	struct router_route back;
	char line[160], read_line[168];

	(void)state;
	assert_int_equal(router_route_format(&rule, line, sizeof(line)), 0);
	assert_string_equal(line, "rule family=6 priority=21075 mark=0x530000 mask=0xff0000 table=21075");
	assert_int_equal(router_route_parse(line, &back), 1);
	assert_memory_equal(&back, &rule, sizeof(rule));

	inet_pton(AF_INET, "10.12.1.2", &route.gateway);
	assert_int_equal(router_route_format(&route, line, sizeof(line)), 0);
	assert_string_equal(line, "route family=4 table=21074 gateway=10.12.1.2 ifname=rfx-r1");
	snprintf(read_line, sizeof(read_line), "%s\n", line); /* as fgets hands it over */
	assert_int_equal(router_route_parse(read_line, &back), 1);
	assert_memory_equal(&back, &route, sizeof(route));
	assert_int_equal(router_route_format(&route, line, 20), -ENOSPC);
}

static void test_other_and_bad_lines(void **state)
{
	struct router_route r;

	(void)state;
	assert_int_equal(router_route_parse("pid=42\n", &r), 0);
	assert_int_equal(router_route_parse("iface=rfx-rc ifindex=4 clsact_created=1\n", &r), 0);
	assert_int_equal(router_route_parse("rule family=4 priority=1 mark=0x1 mask=0x1\n", &r), -EINVAL);
	assert_int_equal(router_route_parse("rule family=5 priority=1 mark=0x1 mask=0x1 table=1\n", &r), -EINVAL);
	assert_int_equal(router_route_parse("rule family=4 priority=1 mark=0x1 mask=0x1 table=1 x\n", &r), -EINVAL);
	assert_int_equal(router_route_parse("route family=4 table=1 gateway=fd00::1 ifname=a\n", &r), -EINVAL);
	assert_int_equal(router_route_parse("route family=6 table=1 gateway=fd00::1\n", &r), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_other_and_bad_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
