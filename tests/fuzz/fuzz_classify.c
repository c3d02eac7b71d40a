// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * The traffic-class config parser (libinih underneath) on arbitrary bytes.
 * Beyond memory safety it checks two properties: a rejected input leaves the
 * table untouched, and an accepted table prints to a config that parses back
 * to the identical table.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/classify.h"

static struct classify_table table, before, reparsed;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_round_trip(void)
{
	struct reflex_err err = { 0 };
	char *printed = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&printed, &len);

	if (!f || classify_table_print(&table, f) || fclose(f))
		abort();
	if (classify_table_parse(&reparsed, printed, len, "printed", &err)) {
		fprintf(stderr, "printed table does not parse: %s\n%s", err.msg, printed);
		abort();
	}
	if (memcmp(&table, &reparsed, sizeof(table)) != 0) {
		fprintf(stderr, "printed table parses to a different table:\n%s", printed);
		abort();
	}
	free(printed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct flow_facts facts = { 0 };
	struct reflex_err err = { 0 };
	int ret;

	classify_table_default(&table);
	memcpy(&before, &table, sizeof(table));
	ret = classify_table_parse(&table, (const char *)data, size, "fuzz", &err);
	if (ret) {
		if (strncmp(err.msg, "fuzz:", 5) || err.line < 1 != 0 || memcmp(&table, &before, sizeof(table)) != 0)
			abort();
		return 0;
	}
	check_round_trip();
	/* Exercise the matcher with facts taken from the input's first bytes. */
	memcpy(&facts, data, size < sizeof(facts) ? size : sizeof(facts));
	if ((unsigned)classify_flow(&table, &facts, NULL) >= TRAFFIC_CLASS_COUNT)
		abort();
	return 0;
}
