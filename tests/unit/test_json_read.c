/* lib/json_read at size: many strings and many keys stay linear, and the duplicate
 * key that is reported is the first one a left-to-right reader meets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "lib/json_read.h"

#define DOC_BYTES (1 << 20)

static double cpu_seconds(void)
{
	return (double)clock() / CLOCKS_PER_SEC;
}

/* {"k0":0,"k1":1,...} of about 1 MB: ~80,000 keys. */
static char *big_object(size_t *len, size_t *keys)
{
	char *doc = malloc(DOC_BYTES + 64);
	size_t n = 0;

	assert_non_null(doc);
	doc[n++] = '{';
	*keys = 0;
	while (n < DOC_BYTES) {
		n += (size_t)snprintf(doc + n, 64, "%s\"k%zu\":%zu", *keys ? "," : "", *keys, *keys);
		(*keys)++;
	}
	doc[n++] = '}';
	*len = n;
	return doc;
}

/* ["ab","ab",...] of about 1 MB: ~200,000 strings. */
static char *big_array(size_t *len, size_t *items)
{
	char *doc = malloc(DOC_BYTES + 16);
	size_t n = 0;

	assert_non_null(doc);
	doc[n++] = '[';
	*items = 0;
	while (n < DOC_BYTES) {
		memcpy(doc + n, *items ? ",\"ab\"" : "\"ab\"", *items ? 5 : 4);
		n += *items ? 5 : 4;
		(*items)++;
	}
	doc[n++] = ']';
	*len = n;
	return doc;
}

/*
 * The quadratic reader took 14 s for a 539 KB object and allocated the rest of the
 * input per string; a linear one parses a megabyte in well under a second. The bound
 * is 20x that, so a slow shared machine does not fail it and a quadratic reader does.
 */
static void test_megabyte_documents_parse_linearly(void **state)
{
	struct json_value *v = NULL;
	size_t len, n;
	struct reflex_err err = { 0 };
	char *doc;
	double t0;

	(void)state;
	doc = big_object(&len, &n);
	t0 = cpu_seconds();
	assert_int_equal(json_parse(doc, len, &v, &err), 0);
	assert_int_equal(v->n, n);
	assert_non_null(json_get(v, "k0"));
	json_free(v);
	free(doc);
	doc = big_array(&len, &n);
	assert_int_equal(json_parse(doc, len, &v, &err), 0);
	assert_int_equal(v->n, n);
	assert_string_equal(v->items[n - 1].string, "ab");
	json_free(v);
	free(doc);
	assert_true(cpu_seconds() - t0 < 20.0);
}

static void test_first_duplicate_in_text_order(void **state)
{
	const char *doc = "{\"b\":1,\"a\":2,\"c\":{\"x\":1},\"a\":3,\"b\":4}";
	struct json_value *v = NULL;
	struct reflex_err err = { 0 };

	(void)state;
	assert_int_equal(json_parse(doc, strlen(doc), &v, &err), -22);
	assert_null(v);
	assert_string_equal(err.msg, "byte 25: key \"a\" appears twice");
	assert_int_equal(err.offset, 25);
	doc = "{\"x\":{\"k\":1,\"k\":2}}";
	assert_int_equal(json_parse(doc, strlen(doc), &v, &err), -22);
	assert_string_equal(err.msg, "byte 12: key \"k\" appears twice");
}

static void test_escapes_in_strings(void **state)
{
	const char *doc = "[\"a\\\"b\", \"\\u00e9\\ud83d\\ude00\", \"\\\\\"]";
	struct json_value *v = NULL;
	struct reflex_err err = { 0 };

	(void)state;
	assert_int_equal(json_parse(doc, strlen(doc), &v, &err), 0);
	assert_string_equal(v->items[0].string, "a\"b");
	assert_string_equal(v->items[1].string, "\xc3\xa9\xf0\x9f\x98\x80");
	assert_string_equal(v->items[2].string, "\\");
	json_free(v);
	doc = "[\"abc\\\"]";
	assert_int_equal(json_parse(doc, strlen(doc), &v, &err), -22);
	assert_string_equal(err.msg, "byte 1: unterminated string");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_megabyte_documents_parse_linearly),
		cmocka_unit_test(test_first_duplicate_in_text_order),
		cmocka_unit_test(test_escapes_in_strings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
