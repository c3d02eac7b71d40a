/* reflexd's flow table when full: tc-only tuples are refused and counted, a socket
 * of the cgroup displaces a tc-only flow, and nothing is dropped silently. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "reflexd/telemetry.h"

static struct flow_key key_of(unsigned int i)
{
	struct flow_key key = { .family = AF_INET, .proto = 17, .sport = (__u16)(1000 + i), .dport = 53 };

	key.saddr[0] = 0x0100000a;
	key.daddr[0] = 0x0200000a;
	return key;
}

static void tc_record(struct telemetry *t, unsigned int i)
{
	struct tc_sample s = { .ts_ns = 1000000000ULL + i, .key = key_of(i) };

	telemetry_on_tc_sample(t, &s);
}

static void sock_record(struct telemetry *t, unsigned int i)
{
	struct sock_sample s = { .ts_ns = 1000000000ULL + i, .key = key_of(i) };

	s.key.proto = 6;
	telemetry_on_sock_sample(t, &s);
}

static void test_full_table_refuses_tc_and_counts(void **state)
{
	struct telemetry t;

	(void)state;
	telemetry_init(&t, "lo", NULL, NULL);
	t.max_flows = 4;
	for (unsigned int i = 0; i < 6; i++)
		tc_record(&t, i);
	assert_int_equal(t.flow_count, 4);
	assert_int_equal(t.flows_refused, 2);
	assert_int_equal(t.flows_displaced, 0);
	telemetry_free(&t);
}

static void test_socket_displaces_tc_only_flow(void **state)
{
	struct flow_key want;
	struct telemetry t;

	(void)state;
	telemetry_init(&t, "lo", NULL, NULL);
	t.max_flows = 4;
	for (unsigned int i = 0; i < 4; i++)
		tc_record(&t, i);
	sock_record(&t, 100);
	want = key_of(100);
	want.proto = 6;
	assert_non_null(telemetry_flow(&t, &want));
	assert_int_equal(t.flow_count, 4);
	assert_int_equal(t.sock_flow_count, 1);
	assert_int_equal(t.flows_displaced, 1);
	assert_int_equal(t.flows_refused, 0);
	/* Once every entry is a socket's, a new socket is refused too, and counted. */
	for (unsigned int i = 101; i < 104; i++)
		sock_record(&t, i);
	assert_int_equal(t.sock_flow_count, 4);
	sock_record(&t, 200);
	assert_int_equal(t.flows_refused, 1);
	assert_int_equal(t.flow_count, 4);
	telemetry_free(&t);
	assert_int_equal(t.flow_count, 0);
	assert_int_equal(t.sock_flow_count, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_table_refuses_tc_and_counts),
		cmocka_unit_test(test_socket_displaces_tc_only_flow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
