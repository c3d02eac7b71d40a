/* mahimahi link traces: parsing (and its refusals, naming the line), the looping
 * schedule (cursor and counts across loop boundaries, where the last lines of one loop
 * and the first of the next share a millisecond), and a real trace read through gzip. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "lib/trace.h"

static struct trace parse_ok(const char *text)
{
	struct trace t = { 0 };
	struct reflex_err err = { 0 };

	if (trace_parse("t", text, strlen(text), &t, &err))
		fail_msg("unexpected error: %s", err.msg);
	return t;
}

static void expect_error(const char *text, const char *fragment)
{
	struct trace t = { 0 };
	struct reflex_err err = { 0 };

	assert_int_equal(trace_parse("t", text, strlen(text), &t, &err), -EINVAL);
	if (!strstr(err.msg, fragment))
		fail_msg("message '%s' lacks '%s'", err.msg, fragment);
	assert_string_equal(err.file, "t");
	if (!strncmp(fragment, "t:", 2))
		assert_int_equal(err.line, strtol(fragment + 2, NULL, 10));
	assert_null(t.ms);
}

static void test_parse_lines(void **state)
{
	struct trace t = parse_ok("0\n1\n1\r\n5");

	(void)state;
	assert_int_equal(t.count, 4);
	assert_int_equal(t.ms[0], 0);
	assert_int_equal(t.ms[2], 1);
	assert_int_equal(t.ms[3], 5);
	assert_int_equal(t.period_ms, 5);
	trace_free(&t);
}

static void test_refusals_name_the_line(void **state)
{
	(void)state;
	expect_error("", "empty trace");
	expect_error("1\n\n2\n", "t:2: empty line");
	expect_error("1\n2 \n", "t:2: '2 ' is not");
	expect_error("1\n-2\n", "t:2:");
	expect_error("5\n3\n", "t:2: 3 ms comes before");
	expect_error("0\n0\n", "t:2: the last line is 0 ms");
	expect_error("99999999999\n", "t:1: timestamp above");
}

/* Opportunities in loop k are at k * period + ms[i]: with "0 2 4" (period 4) the times
 * are 0 2 4 | 4 6 8 | 8 10 12 ... */
static void test_cursor_loops(void **state)
{
	struct trace t = parse_ok("0\n2\n4\n");
	struct trace_cursor c;
	const uint64_t expected[] = { 0, 2, 4, 4, 6, 8, 8, 10 };

	(void)state;
	trace_seek(&t, 0, &c);
	for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
		assert_int_equal(trace_cursor_ms(&t, &c), expected[i]);
		trace_advance(&t, &c);
	}
	/* Seeking onto a boundary lands on the previous loop's last line, at that time. */
	trace_seek(&t, 8, &c);
	assert_int_equal(c.base_ms, 4);
	assert_int_equal(trace_cursor_ms(&t, &c), 8);
	trace_seek(&t, 9, &c);
	assert_int_equal(trace_cursor_ms(&t, &c), 10);
	trace_seek(&t, 5, &c);
	assert_int_equal(trace_cursor_ms(&t, &c), 6);
	trace_free(&t);
}

/* trace_count agrees with walking the cursor, for every window of a small trace. */
static void test_count_matches_cursor(void **state)
{
	struct trace t = parse_ok("1\n1\n3\n3\n3\n7\n");

	(void)state;
	for (uint64_t from = 0; from < 30; from++) {
		for (uint64_t to = from; to < 40; to++) {
			struct trace_cursor c;
			uint64_t walked = 0;

			trace_seek(&t, from, &c);
			while (trace_cursor_ms(&t, &c) < to) {
				walked++;
				trace_advance(&t, &c);
			}
			if (trace_count(&t, from, to) != walked)
				fail_msg("[%lu, %lu): count %lu, walked %lu", (unsigned long)from,
					 (unsigned long)to, (unsigned long)trace_count(&t, from, to),
					 (unsigned long)walked);
		}
	}
	/* Loops 0..98 fit whole into 700 ms, loop 99 (693 + 1 1 3 3 3 7) all but its last. */
	assert_int_equal(trace_count(&t, 0, 700), 99 * 6 + 5);
	trace_free(&t);
}

static void test_read_gzip_file(void **state)
{
	char path[] = "/tmp/test_trace_XXXXXX";
	struct trace t = { 0 };
	struct reflex_err err = { 0 };
	int fd = mkstemp(path);
	gzFile gz;

	(void)state;
	assert_true(fd >= 0);
	gz = gzdopen(fd, "wb");
	assert_non_null(gz);
	for (int i = 1; i <= 1000; i++)
		gzprintf(gz, "%d\n%d\n", i, i);
	gzclose(gz);
	assert_int_equal(trace_read_file(path, &t, &err), 0);
	assert_int_equal(t.count, 2000);
	assert_int_equal(t.period_ms, 1000);
	/* 2 packets per ms = 24 Mbit/s over any 1000 ms (from 0: the 2 at 1000 ms fall out). */
	assert_int_equal(trace_count(&t, 1, 1001) * TRACE_MTU_BYTES * 8, 24000000);
	trace_free(&t);
	unlink(path);
	assert_int_equal(trace_read_file(path, &t, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "cannot open"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_lines),
		cmocka_unit_test(test_refusals_name_the_line),
		cmocka_unit_test(test_cursor_loops),
		cmocka_unit_test(test_count_matches_cursor),
		cmocka_unit_test(test_read_gzip_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
