// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * The JSON reader on arbitrary bytes, up to 1 MB (tests/fuzz/fuzz_json.flags): memory
 * safety, a message for every refusal, and time linear in the input (libFuzzer's
 * -timeout catches a quadratic path).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t count(const struct json_value *v)
{
	size_t n = 1;

	if (v->type == JSON_ARRAY)
		for (size_t i = 0; i < v->n; i++)
			n += count(&v->items[i]);
	if (v->type == JSON_OBJECT)
		for (size_t i = 0; i < v->n; i++) {
			if (json_get(v, v->members[i].key) != &v->members[i].value)
				abort(); /* keys are unique, so lookup finds each member */
			n += count(&v->members[i].value);
		}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_value *v = NULL;
	struct reflex_err err = { 0 };
	int ret = json_parse((const char *)data, size, &v, &err);

	if (ret) {
		if (v || !err.msg[0])
			abort();
		return 0;
	}
	if (count(v) > size)
		abort(); /* every value takes at least one byte */
	json_free(v);
	return 0;
}
