/*
 * Reconnect delays. Full jitter (a uniform draw below an exponentially
 * growing ceiling) spreads the retries of many daemons that lost the same
 * server at the same moment, so they do not all return in lock-step.
 */
#include "backoff.h"

/* xorshift64*: small, deterministic for a given seed, good enough here. */
static uint64_t
backoff_rand(struct backoff *b)
{
	uint64_t	x = b->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	b->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform integer in [lo, hi]. */
static int64_t
backoff_uniform(struct backoff *b, int64_t lo, int64_t hi)
{
	uint64_t	span;

	if (hi <= lo)
		return lo;
	/* Unsigned: hi - lo + 1 must not overflow whatever the bounds. */
	span = (uint64_t)hi - (uint64_t)lo + 1;
	if (span == 0)
		return (int64_t)((uint64_t)lo + backoff_rand(b));
	return (int64_t)((uint64_t)lo + backoff_rand(b) % span);
}

/* Set up a schedule between initial_ms and max_ms. */
void
backoff_init(struct backoff *b, int64_t initial_ms, int64_t max_ms,
    uint64_t seed)
{
	backoff_set_bounds(b, initial_ms, max_ms);
	b->failures = 0;
	/* xorshift must never hold 0. */
	b->rng = seed ? seed : 0x9E3779B97F4A7C15ULL;
}

/* Change the bounds; the failure count (the growth so far) stays. */
void
backoff_set_bounds(struct backoff *b, int64_t initial_ms, int64_t max_ms)
{
	if (initial_ms < 1)
		initial_ms = 1;
	if (max_ms < initial_ms)
		max_ms = initial_ms;
	b->initial_ms = initial_ms;
	b->max_ms = max_ms;
}

/* The current ceiling: initial * 2^failures, capped at max. */
int64_t
backoff_ceiling(const struct backoff *b)
{
	int64_t		c = b->initial_ms;
	unsigned	i;

	/* c < max / 2 before doubling: c * 2 cannot overflow. */
	for (i = 0; i < b->failures && c < b->max_ms; i++)
		c = c < b->max_ms / 2 ? c * 2 : b->max_ms;
	return c < b->max_ms ? c : b->max_ms;
}

/* Next delay after an expensive failure: uniform in [initial, ceiling]. */
int64_t
backoff_next(struct backoff *b)
{
	int64_t	ceiling = backoff_ceiling(b);

	/* Stop counting once at the cap: the ceiling cannot grow further. */
	if (ceiling < b->max_ms)
		b->failures++;
	return backoff_uniform(b, b->initial_ms, ceiling);
}

/* Next delay after a cheap failure: short, jittered, not growing. */
int64_t
backoff_next_cheap(struct backoff *b)
{
	int64_t	hi = b->initial_ms < BACKOFF_CHEAP_MAX_MS ?
	    b->initial_ms : BACKOFF_CHEAP_MAX_MS;

	return backoff_uniform(b, hi / 2, hi);
}

/* Delay for permanent errors: in [max/2, max]. */
int64_t
backoff_at_cap(struct backoff *b)
{
	return backoff_uniform(b, b->max_ms / 2, b->max_ms);
}

/* Forget past failures (after a stable period up). */
void
backoff_reset(struct backoff *b)
{
	b->failures = 0;
}
