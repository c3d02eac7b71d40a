/*
 * The nearest-rank percentile of reflex (window latency features, the simulator's
 * RTT percentiles, the batching oracle's p95): the q-quantile of n values is the
 * ceil(q * n)-th smallest, at least the first.
 */
#ifndef REFLEX_LIB_PERCENTILE_H
#define REFLEX_LIB_PERCENTILE_H

#include <stddef.h>
#include <stdint.h>

/* 1-based rank of the q-quantile (q in [0, 1]) among n > 0 values, in [1, n]. */
size_t percentile_rank(size_t n, double q);
/* The q-quantile of n values; reorders them (quickselect, linear also on long runs
 * of equal values). 0 if n == 0. */
uint32_t percentile_u32(uint32_t *values, size_t n, double q);
uint64_t percentile_u64(uint64_t *values, size_t n, double q);

#endif /* REFLEX_LIB_PERCENTILE_H */
