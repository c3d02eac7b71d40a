// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * The `reflexctl paths` file reader (JSON reader + router_view mapping) on arbitrary
 * bytes. Beyond memory safety: a refused file has a message, and an accepted view
 * prints back to JSON that reads back to a view printing identically.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/router_view.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct router_view view, again;

static char *print(const struct router_view *v, size_t *len)
{
	char *out = NULL;
	FILE *f = open_memstream(&out, len);

	if (!f || router_view_print_json(v, f) || fclose(f))
		abort();
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *first, *second;
	struct reflex_err err = { 0 };
	size_t first_len, second_len;

	if (router_view_parse_json((const char *)data, size, &view, &err) != 0) {
		if (!err.msg[0])
			abort();
		return 0;
	}
	first = print(&view, &first_len);
	if (router_view_parse_json(first, first_len, &again, &err) != 0) {
		fprintf(stderr, "printed view does not read back: %s\n%s", err.msg, first);
		abort();
	}
	second = print(&again, &second_len);
	if (first_len != second_len || memcmp(first, second, first_len) != 0) {
		fprintf(stderr, "printed view changes on a round trip:\n%s\n%s", first, second);
		abort();
	}
	free(first);
	free(second);
	return 0;
}
