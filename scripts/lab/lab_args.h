/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * What the lab's programs (trace-link, fct-probe) share outside NFQUEUE: reading an
 * integer option and the monotonic clock. Header-only, like nfq_common.h: lab tools are
 * single programs, not part of libreflex.
 */
#ifndef REFLEX_LAB_ARGS_H
#define REFLEX_LAB_ARGS_H

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* A decimal in min..max, or -1 after "PROG: FLAG: 'ARG' is not an integer in MIN..MAX". */
static inline int lab_parse_u64(const char *prog, const char *arg, const char *flag, uint64_t min,
				uint64_t max, uint64_t *out)
{
	char *end = NULL;
	unsigned long long value;

	errno = 0;
	value = strtoull(arg, &end, 10);
	if (errno || end == arg || *end != '\0' || arg[0] == '-' || value < min || value > max) {
		fprintf(stderr, "%s: %s: '%s' is not an integer in %" PRIu64 "..%" PRIu64 "\n", prog, flag,
			arg, min, max);
		return -1;
	}
	*out = value;
	return 0;
}

static inline uint64_t lab_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
