/* Nearest-rank percentiles by quickselect: lib/percentile.h. */
#include "lib/percentile.h"

#include <math.h>

size_t percentile_rank(size_t n, double q)
{
	double rank = ceil(q * (double)n);

	if (!(rank >= 1))
		return 1;
	return rank > (double)n ? n : (size_t)rank;
}

/* k-th smallest (0-based) of a[0..n) by quickselect with a three-way partition, so
 * long runs of equal values (a standing queue's RTTs) stay linear. Reorders a. */
#define DEFINE_SELECT_KTH(name, type)                                                          \
	static type name(type *a, size_t n, size_t k)                                          \
	{                                                                                      \
		size_t lo = 0, hi = n;                                                         \
                                                                                               \
		while (hi - lo > 1) {                                                          \
			type x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi - 1];              \
			type pivot = x < y ? (y < z ? y : (x < z ? z : x))                     \
					   : (x < z ? x : (y < z ? z : y));                    \
			size_t lt = lo, i = lo, gt = hi;                                       \
                                                                                               \
			while (i < gt) {                                                       \
				type v = a[i];                                                 \
                                                                                               \
				if (v < pivot) {                                               \
					a[i++] = a[lt];                                        \
					a[lt++] = v;                                           \
				} else if (v > pivot) {                                        \
					a[i] = a[--gt];                                        \
					a[gt] = v;                                             \
				} else {                                                       \
					i++;                                                   \
				}                                                              \
			}                                                                      \
			if (k < lt)                                                            \
				hi = lt;                                                       \
			else if (k >= gt)                                                      \
				lo = gt;                                                       \
			else                                                                   \
				return pivot;                                                  \
		}                                                                              \
		return a[lo];                                                                  \
	}

DEFINE_SELECT_KTH(select_kth_u32, uint32_t)
DEFINE_SELECT_KTH(select_kth_u64, uint64_t)

uint32_t percentile_u32(uint32_t *values, size_t n, double q)
{
	return n ? select_kth_u32(values, n, percentile_rank(n, q) - 1) : 0;
}

uint64_t percentile_u64(uint64_t *values, size_t n, double q)
{
	return n ? select_kth_u64(values, n, percentile_rank(n, q) - 1) : 0;
}
