// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * reflexd's --path NAME:IF:NEXTHOP parser on arbitrary bytes. Beyond memory safety:
 * an accepted path has a name the bandit accepts, an interface name of 1-15
 * characters without '/', ':' or space, at least one next hop, and the same
 * argument parses to the same result again; a refused one has a message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct router_path p, again;
	struct bandit_config cfg;
	struct bandit *b;
	struct reflex_err err = { 0 };
	char *arg = malloc(size + 1);
	size_t n;

	if (!arg)
		return 0;
	memcpy(arg, data, size);
	arg[size] = '\0'; /* the shell hands over a C string: stop at the first NUL */
	if (router_parse_path(arg, &p, &err) != 0) {
		if (!err.msg[0])
			abort();
		free(arg);
		return 0;
	}
	n = strlen(p.ifname);
	if (n == 0 || n >= sizeof(p.ifname) || strpbrk(p.ifname, "/: \t\n\v\f\r") || !(p.has_nexthop4 || p.has_nexthop6))
		abort();
	if (router_parse_path(arg, &again, &err) != 0 || memcmp(&p, &again, sizeof(p)) != 0)
		abort();
	bandit_config_default(&cfg, BANDIT_MODE_UCB1);
	b = bandit_new(&cfg);
	if (b && bandit_add_path(b, p.name) != 0)
		abort();
	bandit_free(b);
	free(arg);
	return 0;
}
