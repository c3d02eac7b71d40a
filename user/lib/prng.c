/* xoshiro256** (Blackman and Vigna) seeded through splitmix64: lib/prng.h. */
#include "lib/prng.h"

uint64_t prng_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

double prng_unit(uint64_t x)
{
	return (double)(x >> 11) * 0x1.0p-53;
}

void prng_seed(struct prng *rng, uint64_t seed)
{
	uint64_t state = seed;

	for (int i = 0; i < 4; i++)
		rng->s[i] = prng_splitmix64(&state);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t prng_next(struct prng *rng)
{
	uint64_t *s = rng->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double prng_uniform(struct prng *rng)
{
	return prng_unit(prng_next(rng));
}

uint64_t prng_below(struct prng *rng, uint64_t n)
{
	/* Rejection keeps it unbiased: draw again from the short last bucket. */
	uint64_t limit = UINT64_MAX - UINT64_MAX % n;
	uint64_t x;

	do {
		x = prng_next(rng);
	} while (x >= limit);
	return x % n;
}
