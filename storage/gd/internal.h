/* Shared helpers of the codec's translation units; not part of the API. */
#ifndef DREAM_GD_INTERNAL_H
#define DREAM_GD_INTERNAL_H

#include <stdint.h>

/* Bits needed to hold every value in [0, range], at least 1. */
static inline uint8_t gd_width_of(uint64_t range)
{
        return range == 0 ? 1 : (uint8_t)(64 - __builtin_clzll(range));
}

/* ceil(log2(n)), 0 for n <= 1. */
static inline uint32_t gd_ceil_log2(uint64_t n)
{
        return n <= 1 ? 0 : (uint32_t)(64 - __builtin_clzll(n - 1));
}

static inline uint64_t gd_code(int64_t v, int64_t min)
{
        return (uint64_t)v - (uint64_t)min;
}

/* Mask of the low w bits (w in 1..64). */
static inline uint64_t gd_low_mask(unsigned w)
{
        return w >= 64 ? ~0ULL : ((1ULL << w) - 1);
}

#endif
