/*
 * Arithmetic on millisecond times and durations: saturating sums and
 * products, and whole seconds for messages. The config
 * caps every duration (24 h) and keepalive_count (100), so these never
 * saturate in practice; they keep a timer computation from overflowing
 * (undefined behaviour) whatever a struct config holds.
 */
#ifndef TUNNELS_MSMATH_H
#define TUNNELS_MSMATH_H

#include <stdint.h>

/* a + b, clamped to the int64_t range. */
static inline int64_t
ms_add(int64_t a, int64_t b)
{
	int64_t	r;

	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

/* a * b, clamped to the int64_t range. */
static inline int64_t
ms_mul(int64_t a, int64_t b)
{
	int64_t	r;

	if (__builtin_mul_overflow(a, b, &r))
		return (a < 0) == (b < 0) ? INT64_MAX : INT64_MIN;
	return r;
}

/* ms in whole seconds, rounded up: "retrying in 1s" while any is left. */
static inline int64_t
ms_ceil_s(int64_t ms)
{
	return ms_add(ms, 999) / 1000;
}

#endif
