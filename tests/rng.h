/* Deterministic random numbers for tests: xorshift64, the same sequence on every
 * machine, so a failure reproduces. Each including file has its own state. */
#ifndef REFLEX_TEST_RNG_H
#define REFLEX_TEST_RNG_H

#include <stdint.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static inline uint64_t rng_next(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Uniform in [lo, hi). */
static inline double rng_uniform(double lo, double hi)
{
	return lo + (hi - lo) * (double)(rng_next() >> 11) / 9007199254740992.0;
}

#endif
