/*
 * A small strict JSON reader (RFC 8259) for the files reflexd writes and reflexctl
 * reads back: the whole text becomes a tree of values, each with the byte offset it
 * starts at, so that a reader can say exactly where a field is wrong.
 *
 * Limits: nesting depth 64; strings with \u escapes are decoded to UTF-8 (a lone
 * surrogate is an error); numbers are doubles; a NUL byte anywhere is an error;
 * duplicate object keys are an error.
 */
#ifndef REFLEX_JSON_READ_H
#define REFLEX_JSON_READ_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/error.h"

enum json_type {
	JSON_NULL,
	JSON_BOOL,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

struct json_member;

struct json_value {
	enum json_type type;
	size_t offset; /* where the value starts in the text */
	bool boolean;
	double number;
	char *string; /* NUL-terminated (a \u0000 escape is refused) */
	size_t n;     /* items of an array, members of an object */
	struct json_value *items;
	struct json_member *members;
};

struct json_member {
	char *key;
	struct json_value value;
};

/* 0 and *out (free with json_free), or -EINVAL (err at the byte offset) / -ENOMEM. */
int json_parse(const char *text, size_t len, struct json_value **out, struct reflex_err *err);
void json_free(struct json_value *v);

/* The member named key of an object; NULL if v is no object or has none. */
const struct json_value *json_get(const struct json_value *v, const char *key);
const char *json_type_name(enum json_type type);

#endif /* REFLEX_JSON_READ_H */
