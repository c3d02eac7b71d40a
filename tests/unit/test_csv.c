/* The strict CSV reader and the atomic writer (user/csv.c). */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/csv.h"

static struct csv_table *parse_ok(const char *text)
{
	struct reflex_err err = { 0 };
	struct csv_table *t = NULL;
	int ret = csv_parse("t.csv", text, strlen(text), &t, &err);

	if (ret)
		print_error("unexpected error: %s\n", err.msg);
	assert_int_equal(ret, 0);
	assert_non_null(t);
	return t;
}

/* Parses text expecting failure at line:column with msg containing `needle`. */
static void parse_fails(const char *text, size_t len, size_t line, size_t column, const char *needle)
{
	struct reflex_err err = { 0 };
	struct csv_table *t = NULL;
	int ret = csv_parse("t.csv", text, len, &t, &err);

	assert_int_equal(ret, -EINVAL);
	assert_null(t);
	assert_int_equal(err.line, line);
	assert_int_equal(err.column, column);
	if (!strstr(err.msg, needle) || strncmp(err.msg, "t.csv:", 6))
		print_error("message: %s\n", err.msg);
	assert_non_null(strstr(err.msg, needle));
	assert_memory_equal(err.msg, "t.csv:", 6);
}

static void test_basic_table(void **state)
{
	struct csv_table *t = parse_ok("a,b,c\n1,2,3\n4,5,6\n");
	double v;

	(void)state;
	assert_int_equal(t->col_count, 3);
	assert_int_equal(t->row_count, 2);
	assert_string_equal(t->header[2], "c");
	assert_int_equal(csv_column(t, "b"), 1);
	assert_int_equal(csv_column(t, "z"), -1);
	assert_string_equal(csv_cell(t, 1, 0), "4");
	assert_int_equal(t->row_line[0], 2);
	assert_int_equal(t->row_line[1], 3);
	assert_int_equal(csv_get_double(t, 1, 2, &v, NULL), 0);
	assert_true(v == 6.0);
	csv_free(t);
}

static void test_crlf_bom_no_final_newline(void **state)
{
	struct csv_table *t = parse_ok("\xef\xbb\xbfx,y\r\n1,2\r\n3,4");

	(void)state;
	assert_string_equal(t->header[0], "x");
	assert_int_equal(t->row_count, 2);
	assert_string_equal(csv_cell(t, 1, 1), "4");
	assert_int_equal(t->row_line[1], 3);
	csv_free(t);
}

static void test_quoted_fields(void **state)
{
	struct csv_table *t = parse_ok("name,\"v,al\"\n\"a \"\"q\"\" b\",1\n\"two\nlines\",2\nlast,3\n");

	(void)state;
	assert_string_equal(t->header[1], "v,al");
	assert_string_equal(csv_cell(t, 0, 0), "a \"q\" b");
	assert_string_equal(csv_cell(t, 1, 0), "two\nlines");
	/* A record is reported at the line it starts on; the next one counts the embedded newline. */
	assert_int_equal(t->row_line[1], 3);
	assert_int_equal(t->row_line[2], 5);
	csv_free(t);
}

static void test_trailing_empty_field(void **state)
{
	struct csv_table *t = parse_ok("a,b\n1,\n");

	(void)state;
	assert_string_equal(csv_cell(t, 0, 1), "");
	csv_free(t);
}

static void test_structural_errors(void **state)
{
	(void)state;
	parse_fails("", 0, 1, 1, "empty file");
	parse_fails("\xef\xbb\xbf", 3, 1, 1, "empty file");
	parse_fails("a,b\n", 4, 2, 1, "no data rows after the header");
	parse_fails("a,b", 3, 1, 1, "no data rows after the header");
	parse_fails("a,b,c\n1,2,3\n4,5\n", 16, 3, 3, "column 'c': missing (row has 2 fields, header has 3)");
	parse_fails("a,b\n1,2,3\n", 10, 2, 3, "extra field (row has 3 fields, header has 2)");
	parse_fails("a,b\n1,2\n\n3,4\n", 13, 3, 1, "blank line");
	parse_fails("a,b\n1,2\n\n", 9, 3, 1, "blank line");
	parse_fails("a,b,a\n1,2,3\n", 12, 1, 3, "column 'a' appears twice");
	parse_fails("a,,c\n1,2,3\n", 11, 1, 2, "empty column name");
	parse_fails("a,b\n1,\"2\n", 9, 2, 2, "unterminated quoted field");
	parse_fails("a,b\n1,2\"x\n", 10, 2, 2, "quote inside an unquoted field");
	parse_fails("a,b\n1,\"2\"x\n", 11, 2, 2, "unexpected character after a closing quote");
	parse_fails("a,b\n1,2\r3,4\n", 12, 2, 2, "carriage return not followed by a line feed");
	parse_fails("a,b\n1,\0\n", 8, 2, 2, "NUL byte");
}

static void number_ok(const char *text, double want)
{
	char buf[64];
	struct csv_table *t;
	double v = -12345;

	snprintf(buf, sizeof(buf), "v\n%s\n", text);
	t = parse_ok(buf);
	assert_int_equal(csv_get_double(t, 0, 0, &v, NULL), 0);
	if (v != want)
		print_error("%s parsed as %.17g, want %.17g\n", text, v, want);
	assert_true(v == want);
	csv_free(t);
}

static void number_fails(const char *text, const char *needle)
{
	char buf[128];
	struct reflex_err err = { 0 };
	struct csv_table *t;
	double v = 0;

	snprintf(buf, sizeof(buf), "ts,value\n1,2\n3,%s\n", text);
	t = parse_ok(buf);
	assert_int_equal(csv_get_double(t, 1, 1, &v, &err), -EINVAL);
	assert_int_equal(err.line, 3);
	assert_int_equal(err.column, 2);
	if (!strstr(err.msg, needle))
		print_error("message: %s\n", err.msg);
	assert_non_null(strstr(err.msg, needle));
	assert_non_null(strstr(err.msg, "t.csv:3:2: column 'value'"));
	csv_free(t);
}

static void test_numbers(void **state)
{
	(void)state;
	number_ok("0", 0);
	number_ok("-12.5", -12.5);
	number_ok("+3", 3);
	number_ok(".5", 0.5);
	number_ok("5.", 5);
	number_ok("1e3", 1000);
	number_ok("2.5E-2", 0.025);
	number_ok("1e-400", 0); /* underflow to zero is a value, not an error */
	number_ok("1.7976931348623157e308", 1.7976931348623157e308);

	number_fails("abc", "'abc' is not a number");
	number_fails("nan", "NaN is not allowed");
	number_fails("NaN", "NaN is not allowed");
	number_fails("inf", "infinity is not allowed");
	number_fails("-Infinity", "infinity is not allowed");
	number_fails("1e999", "out of range");
	number_fails("0x10", "is not a number");
	number_fails("\" 1\"", "is not a number");
	number_fails("1e", "is not a number");
	number_fails("-", "is not a number");
}

static void test_empty_number_and_u64(void **state)
{
	struct csv_table *t = parse_ok("a,b,c,d\n,18446744073709551615,18446744073709551616,-1\n");
	struct reflex_err err = { 0 };
	uint64_t u = 0;
	double v;

	(void)state;
	assert_int_equal(csv_get_double(t, 0, 0, &v, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "t.csv:2:1: column 'a': empty field"));
	assert_int_equal(csv_get_u64(t, 0, 1, &u, &err), 0);
	assert_true(u == UINT64_MAX);
	assert_int_equal(csv_get_u64(t, 0, 2, &u, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "is larger than"));
	assert_int_equal(csv_get_u64(t, 0, 3, &u, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "t.csv:2:4: column 'd': '-1' is not an unsigned integer"));
	csv_free(t);
}

static void test_require_column(void **state)
{
	struct csv_table *t = parse_ok("a,b\n1,2\n");
	struct reflex_err err = { 0 };
	size_t col = 99;

	(void)state;
	assert_int_equal(csv_require_column(t, "b", &col, &err), 0);
	assert_int_equal(col, 1);
	assert_int_equal(csv_require_column(t, "rtt_ewma", &col, &err), -ENOENT);
	assert_int_equal(err.line, 1);
	assert_string_equal(err.msg, "t.csv:1: column 'rtt_ewma': missing from the header");
	csv_free(t);
}

static void test_long_field_excerpt(void **state)
{
	char text[300];
	struct reflex_err err = { 0 };
	struct csv_table *t;
	double v;

	(void)state;
	memcpy(text, "v\n", 2);
	memset(text + 2, 'x', 200);
	memcpy(text + 202, "\n", 2);
	t = parse_ok(text);
	assert_int_equal(csv_get_double(t, 0, 0, &v, &err), -EINVAL);
	/* The bad text is quoted back, shortened. */
	assert_non_null(strstr(err.msg, "xxx...' is not a number"));
	assert_true(strlen(err.msg) < 120);
	csv_free(t);
}

static char *make_dir(void)
{
	char tmpl[] = "/tmp/test_csv.XXXXXX";
	char *dir = mkdtemp(tmpl);

	assert_non_null(dir);
	return strdup(dir);
}

static size_t dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void test_read_file_errors(void **state)
{
	struct reflex_err err = { 0 };
	struct csv_table *t = NULL;
	char *dir = make_dir();
	char path[256];
	FILE *f;

	(void)state;
	assert_int_equal(csv_read_file("/nonexistent/x.csv", &t, &err), -ENOENT);
	assert_string_equal(err.msg, "/nonexistent/x.csv: cannot open: No such file or directory");

	snprintf(path, sizeof(path), "%s/empty.csv", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(csv_read_file(path, &t, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "empty.csv:1:1: empty file"));
	assert_null(t);
	unlink(path);
	rmdir(dir);
	free(dir);
}

static void test_writer_round_trip(void **state)
{
	const char *const names[] = { "x", "y", "z" };
	const double rows[][3] = {
		{ 0.1, 1.0 / 3.0, 123456789012345.0 },
		{ -0.0, 1e-300, 4000 },
	};
	const char *const text[] = { "plain", "with,comma", "say \"hi\"" };
	struct csv_writer *w = NULL;
	struct reflex_err err = { 0 };
	struct csv_table *t = NULL;
	char *dir = make_dir();
	char path[256];
	double v;

	(void)state;
	snprintf(path, sizeof(path), "%s/out.csv", dir);
	assert_int_equal(csv_writer_open(path, names, 3, &w, &err), 0);
	/* Until commit only the temporary file exists. */
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(csv_writer_row(w, rows[0]), 0);
	assert_int_equal(csv_writer_row(w, rows[1]), 0);
	assert_int_equal(csv_writer_row_text(w, text), 0);
	assert_int_equal(csv_writer_commit(w, &err), 0);
	assert_int_equal(dir_entries(dir), 1);

	assert_int_equal(csv_read_file(path, &t, &err), 0);
	assert_int_equal(t->row_count, 3);
	for (size_t r = 0; r < 2; r++) {
		for (size_t c = 0; c < 3; c++) {
			assert_int_equal(csv_get_double(t, r, c, &v, &err), 0);
			assert_memory_equal(&v, &rows[r][c], sizeof(v));
		}
	}
	assert_string_equal(csv_cell(t, 0, 0), "0.1");
	assert_string_equal(csv_cell(t, 2, 1), "with,comma");
	assert_string_equal(csv_cell(t, 2, 2), "say \"hi\"");
	csv_free(t);

	/* An aborted writer leaves nothing, not even its temporary file. */
	unlink(path);
	assert_int_equal(csv_writer_open(path, names, 3, &w, &err), 0);
	assert_int_equal(csv_writer_row(w, rows[0]), 0);
	csv_writer_abort(w);
	assert_int_equal(dir_entries(dir), 0);
	rmdir(dir);
	free(dir);
}

static void test_writer_bad_dir(void **state)
{
	const char *const names[] = { "x" };
	struct csv_writer *w = NULL;
	struct reflex_err err = { 0 };

	(void)state;
	assert_int_equal(csv_writer_open("/nonexistent/out.csv", names, 1, &w, &err), -ENOENT);
	assert_null(w);
	assert_non_null(strstr(err.msg, "/nonexistent/out.csv: cannot create"));
}

static void test_format_double(void **state)
{
	char buf[32];

	(void)state;
	csv_format_double(buf, sizeof(buf), 0.1);
	assert_string_equal(buf, "0.1");
	csv_format_double(buf, sizeof(buf), 4000);
	assert_string_equal(buf, "4000");
	csv_format_double(buf, sizeof(buf), 1.0 / 3.0);
	assert_true(strtod(buf, NULL) == 1.0 / 3.0);
}

/* Parsing in place (csv_parse_owned, what csv_read_file uses) gives the table a
 * copying parse gives, separators next to quotes, escapes and line ends included. */
static void test_in_place_matches_copy(void **state)
{
	static const char *const texts[] = {
		"a,b,c\n1,2,3\n",
		("\xef\xbb\xbf" "a,b\r\n\"x,\"\"y\"\"\",\r\n,\"\"\r\n"),
		"a,\"b\nc\"\n\"\",2\n3,\"4\"",
		"x\n1\n2\n\"3\"",
	};

	(void)state;
	for (size_t k = 0; k < sizeof(texts) / sizeof(texts[0]); k++) {
		size_t len = strlen(texts[k]);
		struct csv_table *copy = NULL, *owned = NULL;
		struct reflex_err err = { 0 };
		char *buf = malloc(len + 1);

		assert_non_null(buf);
		memcpy(buf, texts[k], len + 1);
		assert_int_equal(csv_parse("t.csv", texts[k], len, &copy, &err), 0);
		assert_int_equal(csv_parse_owned("t.csv", buf, len, &owned, &err), 0);
		assert_int_equal(owned->col_count, copy->col_count);
		assert_int_equal(owned->row_count, copy->row_count);
		for (size_t i = 0; i < copy->col_count; i++)
			assert_string_equal(owned->header[i], copy->header[i]);
		for (size_t i = 0; i < copy->col_count * copy->row_count; i++)
			assert_string_equal(owned->cells[i], copy->cells[i]);
		for (size_t r = 0; r < copy->row_count; r++)
			assert_int_equal(owned->row_line[r], copy->row_line[r]);
		csv_free(copy);
		csv_free(owned);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_table),
		cmocka_unit_test(test_crlf_bom_no_final_newline),
		cmocka_unit_test(test_quoted_fields),
		cmocka_unit_test(test_trailing_empty_field),
		cmocka_unit_test(test_structural_errors),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_empty_number_and_u64),
		cmocka_unit_test(test_require_column),
		cmocka_unit_test(test_long_field_excerpt),
		cmocka_unit_test(test_read_file_errors),
		cmocka_unit_test(test_in_place_matches_copy),
		cmocka_unit_test(test_writer_round_trip),
		cmocka_unit_test(test_writer_bad_dir),
		cmocka_unit_test(test_format_double),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
