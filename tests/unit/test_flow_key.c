/* lib/flow_key: every flow name fits FLOW_NAME_MAX, the longest included. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "lib/flow_key.h"

static void test_ipv4_mapped_ipv6_is_not_truncated(void **state)
{
	const char *expected = "tcp:[::ffff:255.255.255.255]:65535-[::ffff:255.255.255.254]:65535";
	struct flow_key key = { .family = AF_INET6, .proto = 6, .sport = 65535, .dport = 65535 };
	char name[FLOW_NAME_MAX];

	(void)state;
	assert_int_equal(inet_pton(AF_INET6, "::ffff:255.255.255.255", key.saddr), 1);
	assert_int_equal(inet_pton(AF_INET6, "::ffff:255.255.255.254", key.daddr), 1);
	assert_string_equal(flow_key_format(&key, name, sizeof(name)), expected);
}

/* The longest text inet_ntop can give (45 characters) on both ends. */
static void test_longest_name_fits(void **state)
{
	struct flow_key key = { .family = AF_INET6, .proto = 17, .sport = 65535, .dport = 65535 };
	char name[FLOW_NAME_MAX], addr[INET6_ADDRSTRLEN];

	(void)state;
	assert_int_equal(inet_pton(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", key.saddr), 1);
	memcpy(key.daddr, key.saddr, sizeof(key.daddr));
	inet_ntop(AF_INET6, key.saddr, addr, sizeof(addr));
	flow_key_format(&key, name, sizeof(name));
	assert_int_equal(strlen(name), strlen("udp:[]:65535-[]:65535") + 2 * strlen(addr));
	assert_true(strlen(name) < FLOW_NAME_MAX);
	assert_non_null(strstr(name, "]:65535-["));
	assert_string_equal(name + strlen(name) - 7, "]:65535");
}

static void test_ipv4(void **state)
{
	struct flow_key key = { .family = AF_INET, .proto = 6, .sport = 40000, .dport = 5201 };
	char name[FLOW_NAME_MAX];

	(void)state;
	assert_int_equal(inet_pton(AF_INET, "10.0.0.1", key.saddr), 1);
	assert_int_equal(inet_pton(AF_INET, "10.0.0.2", key.daddr), 1);
	assert_string_equal(flow_key_format(&key, name, sizeof(name)), "tcp:10.0.0.1:40000-10.0.0.2:5201");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4_mapped_ipv6_is_not_truncated),
		cmocka_unit_test(test_longest_name_fits),
		cmocka_unit_test(test_ipv4),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
