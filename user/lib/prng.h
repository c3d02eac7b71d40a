/*
 * The one PRNG of reflex: xoshiro256** seeded through splitmix64, so a seed means
 * the same stream on every platform (no rand()). The simulator, the DQN trainer,
 * the forge's holdout split and the benchmarks draw from it.
 */
#ifndef REFLEX_LIB_PRNG_H
#define REFLEX_LIB_PRNG_H

#include <stdint.h>

struct prng {
	uint64_t s[4];
};

void prng_seed(struct prng *rng, uint64_t seed);
uint64_t prng_next(struct prng *rng);
/* Uniform in [0, 1) with 53 random bits. */
double prng_uniform(struct prng *rng);
/* Uniform integer in [0, n), n > 0 (unbiased). */
uint64_t prng_below(struct prng *rng, uint64_t n);

/* One step of splitmix64, the seeder: on its own a generator whose whole state is
 * one uint64_t (the bandit benchmark's, kept so its figures stay comparable). */
uint64_t prng_splitmix64(uint64_t *state);
/* [0, 1) from the top 53 bits of x. */
double prng_unit(uint64_t x);

#endif /* REFLEX_LIB_PRNG_H */
