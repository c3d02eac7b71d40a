/*
 * A positive quantity in 16 bits, for per-flow state kept at 100k flows: a 6-bit
 * power of two and the 10 bits below its leading one, rounded down. Integers under
 * 2048 are exact; anything larger is at most 1/1024 (0.1 %) under its value, from 1
 * to 2^63. Packing keeps order, so packed values compare, sort and take their max
 * as the values do. 0 stands for anything under 1. Rates (bit/s) and kept RTTs (µs)
 * use it.
 */
#ifndef REFLEX_LIB_LOG16_H
#define REFLEX_LIB_LOG16_H

#include <stdint.h>

uint16_t log16_pack(double value);
double log16_unpack(uint16_t packed);

/* The same encoding for integers, without floating point (the window's RTTs, packed
 * per sample and unpacked per window for every flow). */
static inline uint16_t log16_pack_u32(uint32_t value)
{
	unsigned exp, frac;

	if (!value)
		return 0;
	exp = 32 - (unsigned)__builtin_clz(value); /* value in [2^(exp-1), 2^exp) */
	frac = exp >= 11 ? value >> (exp - 11) : value << (11 - exp);
	return (uint16_t)(exp << 10 | (frac - 1024));
}

static inline uint32_t log16_unpack_u32(uint16_t packed)
{
	unsigned exp = packed >> 10;
	uint64_t mantissa = 1024 + (packed & 1023u);

	if (!packed)
		return 0;
	if (exp > 32)
		return UINT32_MAX;
	return (uint32_t)(exp >= 11 ? mantissa << (exp - 11) : mantissa >> (11 - exp));
}

#endif
