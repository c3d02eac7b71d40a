/* Shared by the compiled benchmarks: a monotonic clock and medians. Benchmarks print
 * medians (and ranges) of repeated runs, never a pass/fail on time. */
#ifndef REFLEX_BENCH_H
#define REFLEX_BENCH_H

#include <stdlib.h>
#include <time.h>

struct result {
	double median, min, max;
};

static inline double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sorts v; the median (mean of the middle two for an even n), min and max. */
static inline struct result summarize(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return (struct result){ n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v[0], v[n - 1] };
}

static inline double median(double *v, int n)
{
	return summarize(v, n).median;
}

#endif
