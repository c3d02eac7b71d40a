#include <math.h>

#include "lib/log16.h"

uint16_t log16_pack(double value)
{
	int exp;
	double mantissa;

	if (!(value >= 1))
		return 0;
	mantissa = frexp(value, &exp); /* value = mantissa x 2^exp, mantissa in [0.5, 1), exp >= 1 */
	if (exp > 63)
		return UINT16_MAX;
	return (uint16_t)(exp << 10 | (unsigned)((mantissa * 2 - 1) * 1024));
}

double log16_unpack(uint16_t packed)
{
	return packed ? ldexp(1 + (packed & 1023) / 1024.0, (packed >> 10) - 1) : 0;
}
