/*
 * The METADATA section: UTF-8 YAML text. reflex reads and writes only flat
 * `key: value` lines (created_at, telemetry_hash, trainer_commit, lambda,
 * feature_schema, validation figures), so this is a line scanner, not a YAML parser:
 * other YAML in the section is kept byte for byte and ignored by model_meta_get.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/model_internal.h"

size_t model_utf8_error_at(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		unsigned char lo = 0x80, hi = 0xbf;
		size_t need;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			if (c == 0xe0)
				lo = 0xa0; /* overlong */
			else if (c == 0xed)
				hi = 0x9f; /* UTF-16 surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			if (c == 0xf0)
				lo = 0x90; /* overlong */
			else if (c == 0xf4)
				hi = 0x8f; /* above U+10FFFF */
		} else {
			return i;
		}
		if (len - i <= need)
			return i;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return i;
		for (size_t k = 2; k <= need; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xbf)
				return i;
		i += need + 1;
	}
	return len;
}

bool model_utf8_valid(const char *s, size_t len)
{
	return model_utf8_error_at(s, len) == len;
}

static bool key_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Start of the first line that is exactly `key:` followed by a blank or the line end. */
static const char *find_key_line(const char *text, size_t len, const char *key)
{
	size_t klen = strlen(key);
	const char *line = text, *end = text + len;

	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *line_end = nl ? nl : end;

		if ((size_t)(line_end - line) > klen && !memcmp(line, key, klen) && line[klen] == ':' &&
		    (line + klen + 1 == line_end || line[klen + 1] == ' ' || line[klen + 1] == '\t' ||
		     line[klen + 1] == '\r'))
			return line;
		line = nl ? nl + 1 : end;
	}
	return NULL;
}

static int put(char *out, size_t size, size_t *n, char c)
{
	if (*n + 1 >= size)
		return -ENOSPC;
	out[(*n)++] = c;
	return 0;
}

static int unquote_double(const char *v, const char *end, char *out, size_t size, size_t *n)
{
	for (v++; v < end && *v != '"'; v++) {
		char c = *v;

		if (c == '\\' && v + 1 < end) {
			v++;
			c = *v == 'n' ? '\n' : *v == 't' ? '\t' : *v;
		}
		if (put(out, size, n, c))
			return -ENOSPC;
	}
	return 0;
}

static int unquote_single(const char *v, const char *end, char *out, size_t size, size_t *n)
{
	for (v++; v < end; v++) {
		if (*v == '\'') {
			if (v + 1 < end && v[1] == '\'')
				v++;
			else
				break;
		}
		if (put(out, size, n, *v))
			return -ENOSPC;
	}
	return 0;
}

int model_meta_get(const struct model *m, const char *key, char *value, size_t value_size)
{
	const char *line, *v, *end, *nl;
	size_t n = 0;
	int rc = 0;

	if (!value_size)
		return -ENOSPC;
	value[0] = '\0';
	if (!m->metadata_len)
		return -ENOENT;
	line = find_key_line(m->metadata, m->metadata_len, key);
	if (!line)
		return -ENOENT;
	v = line + strlen(key) + 1;
	nl = memchr(v, '\n', (size_t)(m->metadata + m->metadata_len - v));
	end = nl ? nl : m->metadata + m->metadata_len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (v < end && *v == '"') {
		rc = unquote_double(v, end, value, value_size, &n);
	} else if (v < end && *v == '\'') {
		rc = unquote_single(v, end, value, value_size, &n);
	} else {
		/* A plain scalar ends at a comment (" #"). */
		for (const char *c = v; c + 1 < end; c++)
			if ((*c == ' ' || *c == '\t') && c[1] == '#') {
				end = c;
				break;
			}
		while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		for (; v < end && !rc; v++)
			rc = put(value, value_size, &n, *v);
	}
	value[n] = '\0';
	return rc;
}

/* Whether a value can be written as a YAML plain scalar that reads back unchanged. */
static bool plain_ok(const char *v)
{
	size_t len = strlen(v);

	if (!len || v[0] == '-' || v[0] == ':' || v[0] == '~' || v[len - 1] == ':')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = v[i];

		if (!key_char_ok(c) && c != '.' && c != '+' && c != '/' && c != '@' && c != '=' &&
		    c != '-' && c != ':')
			return false;
	}
	return true;
}

/* `key: value\n` with value plain or double-quoted; malloc'd, NULL on ENOMEM. */
static char *render_line(const char *key, const char *value, size_t *len)
{
	size_t vlen = strlen(value), cap = strlen(key) + 2 * vlen + 6, n;
	char *line = malloc(cap);

	if (!line)
		return NULL;
	n = (size_t)snprintf(line, cap, "%s: ", key);
	if (plain_ok(value)) {
		memcpy(line + n, value, vlen);
		n += vlen;
	} else {
		line[n++] = '"';
		for (size_t i = 0; i < vlen; i++) {
			if (value[i] == '"' || value[i] == '\\')
				line[n++] = '\\';
			line[n++] = value[i];
		}
		line[n++] = '"';
	}
	line[n++] = '\n';
	line[n] = '\0';
	*len = n;
	return line;
}

static int check_key_value(const char *key, const char *value, struct reflex_err *err)
{
	size_t klen = strlen(key), vlen = strlen(value);

	if (!klen || klen > 64)
		return model_fail(err, -1, "metadata key '%.64s' must be 1..64 bytes", key);
	for (size_t i = 0; i < klen; i++)
		if (!key_char_ok(key[i]))
			return model_fail(err, -1, "metadata key '%.64s': byte 0x%02x is not [A-Za-z0-9_]",
					  key, (unsigned char)key[i]);
	if (!model_utf8_valid(value, vlen))
		return model_fail(err, -1, "metadata %s: value is not valid UTF-8", key);
	for (size_t i = 0; i < vlen; i++)
		if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
			return model_fail(err, -1, "metadata %s: value has control byte 0x%02x", key,
					  (unsigned char)value[i]);
	return 0;
}

int model_meta_set(struct model *m, const char *key, const char *value, struct reflex_err *err)
{
	const char *old = m->metadata ? m->metadata : "";
	size_t old_len = m->metadata_len, line_len, keep_before, skip, new_len;
	const char *at, *nl;
	char *line, *text;
	bool add_newline;
	int rc = check_key_value(key, value, err);

	if (rc)
		return rc;
	line = render_line(key, value, &line_len);
	if (!line)
		return model_fail(err, -1, "metadata %s: out of memory", key);
	at = find_key_line(old, old_len, key);
	if (at) {
		keep_before = (size_t)(at - old);
		nl = memchr(at, '\n', old_len - keep_before);
		skip = nl ? (size_t)(nl + 1 - at) : old_len - keep_before;
		add_newline = false;
	} else {
		keep_before = old_len;
		skip = 0;
		add_newline = old_len && old[old_len - 1] != '\n';
	}
	new_len = old_len - skip + line_len + add_newline;
	if (new_len > MODEL_MAX_METADATA) {
		free(line);
		return model_fail(err, -1, "metadata would be %zu bytes, over the %d cap", new_len,
				  MODEL_MAX_METADATA);
	}
	text = malloc(new_len + 1);
	if (!text) {
		free(line);
		return model_fail(err, -1, "metadata %s: out of memory", key);
	}
	memcpy(text, old, keep_before);
	if (add_newline)
		text[keep_before] = '\n';
	memcpy(text + keep_before + add_newline, line, line_len);
	memcpy(text + keep_before + add_newline + line_len, old + keep_before + skip,
	       old_len - keep_before - skip);
	text[new_len] = '\0';
	free(line);
	free(m->metadata);
	m->metadata = text;
	m->metadata_len = new_len;
	return 0;
}

int model_meta_setf(struct model *m, const char *key, struct reflex_err *err, const char *fmt, ...)
{
	char value[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(value))
		return model_fail(err, -1, "metadata %s: value over %zu bytes", key, sizeof(value) - 1);
	return model_meta_set(m, key, value, err);
}
