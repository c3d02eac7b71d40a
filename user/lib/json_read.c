/* A small strict JSON reader: see json_read.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json_read.h"

#define MAX_DEPTH 64

struct parser {
	const char *text;
	size_t len;
	size_t pos;
	struct reflex_err *err;
	int ret;
};

static int fail_at(struct parser *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail_at(struct parser *p, size_t at, const char *fmt, ...)
{
	char what[160];
	va_list ap;

	if (p->ret)
		return p->ret; /* the first error is the one that explains */
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	reflex_err_set(p->err, "%s", what);
	reflex_err_at_offset(p->err, (long long)at);
	p->ret = -EINVAL;
	return p->ret;
}

static int out_of_memory(struct parser *p)
{
	if (!p->ret) {
		reflex_err_set(p->err, "out of memory");
		p->ret = -ENOMEM;
	}
	return p->ret;
}

const char *json_type_name(enum json_type type)
{
	static const char *const names[] = { "null", "a boolean", "a number", "a string", "an array", "an object" };

	return (unsigned)type < sizeof(names) / sizeof(names[0]) ? names[type] : "?";
}

static void skip_space(struct parser *p)
{
	while (p->pos < p->len && (p->text[p->pos] == ' ' || p->text[p->pos] == '\t' || p->text[p->pos] == '\n' ||
				   p->text[p->pos] == '\r'))
		p->pos++;
}

static bool literal(struct parser *p, const char *word)
{
	size_t n = strlen(word);

	if (p->len - p->pos < n || memcmp(p->text + p->pos, word, n))
		return false;
	p->pos += n;
	return true;
}

static int hex4(struct parser *p, uint32_t *out)
{
	uint32_t v = 0;

	if (p->len - p->pos < 4)
		return fail_at(p, p->pos, "\\u needs four hex digits");
	for (int i = 0; i < 4; i++) {
		char c = p->text[p->pos + i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return fail_at(p, p->pos + i, "'%c' is not a hex digit", c);
	}
	p->pos += 4;
	*out = v;
	return 0;
}

static size_t utf8_put(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static int escape(struct parser *p, char *buf, size_t *n)
{
	size_t at = p->pos;
	uint32_t cp, low;
	char c;

	if (p->pos >= p->len)
		return fail_at(p, at, "unterminated string");
	c = p->text[p->pos++];
	switch (c) {
	case '"': case '\\': case '/': buf[(*n)++] = c; return 0;
	case 'b': buf[(*n)++] = '\b'; return 0;
	case 'f': buf[(*n)++] = '\f'; return 0;
	case 'n': buf[(*n)++] = '\n'; return 0;
	case 'r': buf[(*n)++] = '\r'; return 0;
	case 't': buf[(*n)++] = '\t'; return 0;
	case 'u': break;
	default: return fail_at(p, at, "'\\%c' is not a JSON escape", c);
	}
	if (hex4(p, &cp))
		return p->ret;
	if (cp == 0)
		return fail_at(p, at, "\\u0000 is not allowed");
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return fail_at(p, at, "a low surrogate without a high one");
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (!literal(p, "\\u") || hex4(p, &low) || low < 0xdc00 || low > 0xdfff)
			return fail_at(p, at, "a high surrogate without a low one");
		cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
	}
	*n += utf8_put(buf + *n, cp);
	return 0;
}

/* Bytes from the opening quote at start to the closing one, or 0 if there is none:
 * the decoded string is never longer (no escape decodes to more than it takes). */
static size_t string_raw_len(const struct parser *p, size_t start)
{
	for (size_t i = start + 1; i < p->len; i++) {
		if (p->text[i] == '"')
			return i - start;
		if (p->text[i] == '\\')
			i++;
	}
	return 0;
}

/* p->pos is at the opening quote. Each string allocates what its own text needs, so
 * a document of many strings stays linear in time and memory. */
static int parse_string(struct parser *p, char **out)
{
	size_t start = p->pos++, n = 0, raw = string_raw_len(p, start);
	char *buf;

	if (!raw)
		return fail_at(p, start, "unterminated string");
	buf = malloc(raw + 1);
	if (!buf)
		return out_of_memory(p);
	for (;;) {
		unsigned char c;

		if (p->pos >= p->len) {
			free(buf);
			return fail_at(p, start, "unterminated string");
		}
		c = (unsigned char)p->text[p->pos];
		if (c == '"') {
			p->pos++;
			break;
		}
		if (c < 0x20) {
			free(buf);
			return fail_at(p, p->pos, "control character 0x%02x in a string", c);
		}
		p->pos++;
		if (c != '\\') {
			buf[n++] = (char)c;
			continue;
		}
		if (escape(p, buf, &n)) {
			free(buf);
			return p->ret;
		}
	}
	buf[n] = '\0';
	*out = buf;
	return 0;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int parse_number(struct parser *p, struct json_value *v)
{
	size_t start = p->pos;
	char buf[64];
	char *end;

	if (p->pos < p->len && p->text[p->pos] == '-')
		p->pos++;
	if (p->pos < p->len && p->text[p->pos] == '0')
		p->pos++;
	else if (p->pos < p->len && is_digit(p->text[p->pos]))
		while (p->pos < p->len && is_digit(p->text[p->pos]))
			p->pos++;
	else
		return fail_at(p, start, "not a JSON value");
	if (p->pos < p->len && p->text[p->pos] == '.') {
		p->pos++;
		if (p->pos >= p->len || !is_digit(p->text[p->pos]))
			return fail_at(p, p->pos, "a digit must follow the decimal point");
		while (p->pos < p->len && is_digit(p->text[p->pos]))
			p->pos++;
	}
	if (p->pos < p->len && (p->text[p->pos] == 'e' || p->text[p->pos] == 'E')) {
		p->pos++;
		if (p->pos < p->len && (p->text[p->pos] == '+' || p->text[p->pos] == '-'))
			p->pos++;
		if (p->pos >= p->len || !is_digit(p->text[p->pos]))
			return fail_at(p, p->pos, "a digit must follow the exponent");
		while (p->pos < p->len && is_digit(p->text[p->pos]))
			p->pos++;
	}
	if (p->pos - start >= sizeof(buf))
		return fail_at(p, start, "number longer than %zu characters", sizeof(buf) - 1);
	memcpy(buf, p->text + start, p->pos - start);
	buf[p->pos - start] = '\0';
	v->type = JSON_NUMBER;
	v->number = strtod(buf, &end);
	return 0;
}

static int parse_value(struct parser *p, struct json_value *v, int depth);

static int parse_array(struct parser *p, struct json_value *v, int depth)
{
	size_t cap = 0;

	v->type = JSON_ARRAY;
	p->pos++;
	skip_space(p);
	if (p->pos < p->len && p->text[p->pos] == ']') {
		p->pos++;
		return 0;
	}
	for (;;) {
		if (v->n == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			struct json_value *items = realloc(v->items, ncap * sizeof(*items));

			if (!items)
				return out_of_memory(p);
			v->items = items;
			cap = ncap;
		}
		memset(&v->items[v->n], 0, sizeof(v->items[0]));
		v->n++;
		if (parse_value(p, &v->items[v->n - 1], depth + 1))
			return p->ret;
		skip_space(p);
		if (p->pos < p->len && p->text[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->pos < p->len && p->text[p->pos] == ']') {
			p->pos++;
			return 0;
		}
		return fail_at(p, p->pos, "expected ',' or ']' in an array");
	}
}

struct key_ref {
	const char *key;
	size_t at;
};

static int key_ref_cmp(const void *a, const void *b)
{
	const struct key_ref *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : (x->at > y->at) - (x->at < y->at);
}

/*
 * Duplicate keys, found by sorting (n log n; pairwise was quadratic): the error names
 * the key whose second appearance comes first in the text, as a reader going left
 * to right would have found it.
 */
static void duplicate_check(struct parser *p, const struct json_value *v, const size_t *key_at)
{
	struct key_ref *refs;
	size_t first_dup = SIZE_MAX;
	const char *dup = NULL;

	if (v->n < 2)
		return;
	refs = malloc(v->n * sizeof(*refs));
	if (!refs) {
		out_of_memory(p);
		return;
	}
	for (size_t i = 0; i < v->n; i++)
		refs[i] = (struct key_ref){ v->members[i].key, key_at[i] };
	qsort(refs, v->n, sizeof(*refs), key_ref_cmp);
	for (size_t i = 1; i < v->n; i++)
		if (!strcmp(refs[i - 1].key, refs[i].key) && refs[i].at < first_dup) {
			first_dup = refs[i].at;
			dup = refs[i].key;
		}
	if (dup)
		fail_at(p, first_dup, "key \"%.64s\" appears twice", dup);
	free(refs);
}

static int parse_object(struct parser *p, struct json_value *v, int depth)
{
	size_t cap = 0, *key_at = NULL; /* where each member's key starts, for messages */

	v->type = JSON_OBJECT;
	p->pos++;
	skip_space(p);
	if (p->pos < p->len && p->text[p->pos] == '}') {
		p->pos++;
		return 0;
	}
	for (;;) {
		struct json_member *m;

		skip_space(p);
		if (p->pos >= p->len || p->text[p->pos] != '"') {
			fail_at(p, p->pos, "expected a string key in an object");
			break;
		}
		if (v->n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct json_member *members = realloc(v->members, ncap * sizeof(*members));
			size_t *offsets;

			if (members)
				v->members = members;
			offsets = members ? realloc(key_at, ncap * sizeof(*offsets)) : NULL;
			if (!offsets) {
				out_of_memory(p);
				break;
			}
			key_at = offsets;
			cap = ncap;
		}
		m = &v->members[v->n];
		memset(m, 0, sizeof(*m));
		key_at[v->n] = p->pos;
		v->n++;
		if (parse_string(p, &m->key))
			break;
		skip_space(p);
		if (p->pos >= p->len || p->text[p->pos] != ':') {
			fail_at(p, p->pos, "expected ':' after the key \"%.64s\"", m->key);
			break;
		}
		p->pos++;
		if (parse_value(p, &m->value, depth + 1))
			break;
		skip_space(p);
		if (p->pos < p->len && p->text[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->pos < p->len && p->text[p->pos] == '}') {
			p->pos++;
			duplicate_check(p, v, key_at);
			break;
		}
		fail_at(p, p->pos, "expected ',' or '}' in an object");
		break;
	}
	free(key_at);
	return p->ret;
}

static int parse_value(struct parser *p, struct json_value *v, int depth)
{
	skip_space(p);
	v->offset = p->pos;
	if (depth > MAX_DEPTH)
		return fail_at(p, p->pos, "nested deeper than %d", MAX_DEPTH);
	if (p->pos >= p->len)
		return fail_at(p, p->pos, "unexpected end of text");
	switch (p->text[p->pos]) {
	case '{': return parse_object(p, v, depth);
	case '[': return parse_array(p, v, depth);
	case '"':
		v->type = JSON_STRING;
		return parse_string(p, &v->string);
	case 't':
	case 'f':
	case 'n':
		if (literal(p, "true") || literal(p, "false")) {
			v->type = JSON_BOOL;
			v->boolean = p->text[v->offset] == 't';
			return 0;
		}
		if (literal(p, "null")) {
			v->type = JSON_NULL;
			return 0;
		}
		return fail_at(p, p->pos, "not a JSON value");
	default:
		return parse_number(p, v);
	}
}

static void value_release(struct json_value *v)
{
	for (size_t i = 0; v->items && i < v->n; i++)
		value_release(&v->items[i]);
	for (size_t i = 0; v->members && i < v->n; i++) {
		free(v->members[i].key);
		value_release(&v->members[i].value);
	}
	free(v->items);
	free(v->members);
	free(v->string);
}

void json_free(struct json_value *v)
{
	if (!v)
		return;
	value_release(v);
	free(v);
}

int json_parse(const char *text, size_t len, struct json_value **out, struct reflex_err *err)
{
	struct parser p = { .text = text, .len = len, .err = err };
	struct json_value *root;
	const char *nul = memchr(text, '\0', len);

	*out = NULL;
	if (nul) {
		reflex_err_set(err, "NUL byte in JSON text");
		reflex_err_at_offset(err, nul - text);
		return -EINVAL;
	}
	root = calloc(1, sizeof(*root));
	if (!root) {
		reflex_err_set(err, "out of memory");
		return -ENOMEM;
	}
	if (parse_value(&p, root, 0) == 0) {
		skip_space(&p);
		if (p.pos != p.len)
			fail_at(&p, p.pos, "text after the JSON value");
	}
	if (p.ret) {
		json_free(root);
		return p.ret;
	}
	*out = root;
	return 0;
}

const struct json_value *json_get(const struct json_value *v, const char *key)
{
	if (!v || v->type != JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->members[i].key, key))
			return &v->members[i].value;
	return NULL;
}
