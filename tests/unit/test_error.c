/* lib/error: the one error type's formatter for each combination of location
 * fields, and the parsers that fill those fields (a corrupt .reflex names its byte
 * offset, a bad CSV its line and column, a bad config its line, a bad command line
 * its option). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/csv.h"
#include "lib/error.h"
#include "model/model.h"
#include "reflexd/config.h"
#include "reflexd/reflexd_options.h"

/* One message, every location field added in turn: the formatter's layout. */
static void test_format_each_combination(void **state)
{
	static const struct {
		const char *file, *field;
		long line, column;
		long long offset; /* -1: unset */
		const char *want;
	} cases[] = {
		{ NULL, NULL, 0, 0, -1, "bad" },
		{ "f.csv", NULL, 0, 0, -1, "f.csv: bad" },
		{ "f.csv", NULL, 3, 0, -1, "f.csv:3: bad" },
		{ "f.csv", NULL, 3, 7, -1, "f.csv:3:7: bad" },
		{ "f.csv", "column 'rtt'", 3, 7, -1, "f.csv:3:7: column 'rtt': bad" },
		{ "f.csv", "column 'rtt'", 0, 0, -1, "f.csv: column 'rtt': bad" },
		{ NULL, NULL, 3, 0, -1, "line 3: bad" },
		{ NULL, NULL, 3, 7, -1, "line 3:7: bad" },
		{ NULL, NULL, 0, 7, -1, "bad" }, /* a column without a line says nothing */
		{ "m.reflex", NULL, 0, 0, 40, "m.reflex: byte 40: bad" },
		{ "m.reflex", "feature 0", 0, 0, 0, "m.reflex: byte 0: feature 0: bad" },
		{ NULL, NULL, 0, 0, 12, "byte 12: bad" },
		{ NULL, "--iface", 0, 0, -1, "--iface: bad" },
		{ "c.conf", "[host] key 'iface'", 2, 0, -1, "c.conf:2: [host] key 'iface': bad" },
		{ "t.json", NULL, 1, 2, 9, "t.json:1:2: byte 9: bad" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct reflex_err err = { 0 };
		char buf[sizeof(err.msg)];
		int n;

		reflex_err_set(&err, "bad");
		if (cases[i].file)
			reflex_err_at_file(&err, cases[i].file);
		if (cases[i].line || cases[i].column)
			reflex_err_at_line(&err, cases[i].line, cases[i].column);
		reflex_err_at_offset(&err, cases[i].offset);
		if (cases[i].field)
			reflex_err_at_field(&err, "%s", cases[i].field);
		n = reflex_err_format(&err, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].want);
		assert_int_equal(n, strlen(cases[i].want));
		assert_string_equal(err.msg, cases[i].want); /* the setters keep msg rendered */
		assert_string_equal(err.what, "bad");
	}
}

static void test_set_starts_over_and_wrap_keeps_location(void **state)
{
	struct reflex_err err = { 0 };

	(void)state;
	reflex_err_set_file(&err, "a.csv", "first");
	reflex_err_at_line(&err, 2, 1);
	assert_string_equal(err.msg, "a.csv:2:1: first");
	reflex_err_wrap(&err, "loading %s", "table");
	assert_string_equal(err.msg, "a.csv:2:1: loading table: first");
	reflex_err_set(&err, "second");
	assert_string_equal(err.msg, "second");
	assert_int_equal(err.line, 0);
	assert_false(err.has_offset);
	/* a NULL carrier is allowed everywhere */
	reflex_err_set(NULL, "x");
	reflex_err_at_file(NULL, "x");
	reflex_err_at_line(NULL, 1, 1);
	reflex_err_at_offset(NULL, 1);
	reflex_err_at_field(NULL, "x");
	reflex_err_wrap(NULL, "x");
}

/* A message longer than the buffer is cut, never overrun, and stays terminated. */
static void test_format_truncates(void **state)
{
	struct reflex_err err = { 0 };
	char small[8];
	int n;

	(void)state;
	reflex_err_set_file(&err, "file.csv", "a long message");
	n = reflex_err_format(&err, small, sizeof(small));
	assert_string_equal(small, "file.cs");
	assert_int_equal(n, strlen("file.csv: a long message"));
}

/* A corrupt .reflex (bad magic): the loader sets the byte offset and the file. */
static void test_model_sets_offset(void **state)
{
	static const uint8_t junk[64] = "XXXX";
	struct model *m = NULL;
	struct reflex_err err = { 0 };

	(void)state;
	assert_int_equal(model_load_buffer(junk, sizeof(junk), 0, &m, &err), -EINVAL);
	assert_null(m);
	assert_true(err.has_offset);
	assert_int_equal(err.offset, 0);
	assert_string_equal(err.file, "");
	assert_non_null(strstr(err.msg, "byte 0: "));
}

static void test_csv_sets_line_and_column(void **state)
{
	static const char text[] = "a,b\n1,2\n3,\"x\"y\n";
	struct csv_table *t = NULL;
	struct reflex_err err = { 0 };

	(void)state;
	assert_int_equal(csv_parse("bad.csv", text, strlen(text), &t, &err), -EINVAL);
	assert_string_equal(err.file, "bad.csv");
	assert_int_equal(err.line, 3);
	assert_int_equal(err.column, 2);
	assert_string_equal(err.msg, "bad.csv:3:2: unexpected character after a closing quote");
}

static void test_csv_cell_sets_field(void **state)
{
	static const char text[] = "a,rtt\n1,2\n3,x\n";
	struct csv_table *t = NULL;
	struct reflex_err err = { 0 };
	double v;

	(void)state;
	assert_int_equal(csv_parse("cells.csv", text, strlen(text), &t, &err), 0);
	assert_int_equal(csv_get_double(t, 1, 1, &v, &err), -EINVAL);
	assert_int_equal(err.line, 3);
	assert_int_equal(err.column, 2);
	assert_string_equal(err.field, "column 'rtt'");
	assert_non_null(strstr(err.msg, "cells.csv:3:2: column 'rtt': "));
	csv_free(t);
}

static void test_config_sets_line_and_key(void **state)
{
	static const char text[] = "[host]\niface = eth0\nshadow = maybe\n";
	static struct config_file cf;
	struct reflex_err err = { 0 };

	(void)state;
	assert_int_equal(config_load_text(&cf, "bad.conf", text, strlen(text), &err), -1);
	assert_string_equal(err.file, "bad.conf");
	assert_int_equal(err.line, 3);
	assert_string_equal(err.field, "[host] key 'shadow'");
	assert_string_equal(err.msg, "bad.conf:3: [host] key 'shadow': 'maybe' is not true or false");
}

static void test_cli_sets_option(void **state)
{
	char *argv[] = { "reflexd", "--iface", "lo", "--actuator", "bbr", NULL };
	static struct reflexd_options opt;
	struct reflex_err err = { 0 };

	(void)state;
	assert_int_equal(reflexd_parse_args(5, argv, &opt, &err), REFLEXD_ARGS_ERROR);
	assert_string_equal(err.field, "--actuator");
	assert_string_equal(err.file, "");
	assert_int_equal(err.line, 0);
	assert_string_equal(err.msg, "--actuator: 'bbr' is not clamp or cc");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_each_combination),
		cmocka_unit_test(test_set_starts_over_and_wrap_keeps_location),
		cmocka_unit_test(test_format_truncates),
		cmocka_unit_test(test_model_sets_offset),
		cmocka_unit_test(test_csv_sets_line_and_column),
		cmocka_unit_test(test_csv_cell_sets_field),
		cmocka_unit_test(test_config_sets_line_and_key),
		cmocka_unit_test(test_cli_sets_option),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
