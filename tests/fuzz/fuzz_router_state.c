// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * The rule and route lines of the router's state file (router_route_parse), which
 * a later reflexd or `reflexd --cleanup` reads to remove what a dead one added. Beyond
 * memory safety: an accepted line formats to a line that parses to the same entry
 * and formats the same again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/router_routes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[256], first[160], second[160];
	struct router_route r, again;
	size_t n = size < sizeof(line) - 1 ? size : sizeof(line) - 1;

	/* fgets hands over at most a buffer's worth, NUL-terminated. */
	memcpy(line, data, n);
	line[n] = '\0';
	if (router_route_parse(line, &r) != 1)
		return 0;
	if (r.family != AF_INET && r.family != AF_INET6)
		abort();
	if (router_route_format(&r, first, sizeof(first)) != 0)
		abort();
	if (router_route_parse(first, &again) != 1 || router_route_format(&again, second, sizeof(second)) != 0 ||
	    strcmp(first, second) != 0) {
		fprintf(stderr, "state line changes on a round trip:\n%s\n%s\n", first, second);
		abort();
	}
	return 0;
}
