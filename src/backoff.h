/*
 * Reconnect delays: exponential growth with full jitter between an initial
 * delay and a cap, and a separate short schedule for cheap failures (a
 * refused TCP connect costs the server nothing, so retry it often). Pure:
 * no clock reads, no I/O; the caller supplies the seed.
 */
#ifndef TUNNELS_BACKOFF_H
#define TUNNELS_BACKOFF_H

#include <stdint.h>

/* A session that stayed up this long resets the schedule. */
#define BACKOFF_STABLE_MS	60000
/* Cheap failures are retried after at most this long. */
#define BACKOFF_CHEAP_MAX_MS	1000

struct backoff {
	int64_t		initial_ms;
	int64_t		max_ms;
	unsigned	failures;	/* expensive failures since reset */
	uint64_t	rng;
};

void	 backoff_init(struct backoff *, int64_t initial_ms, int64_t max_ms,
	    uint64_t seed);
/* New bounds (a reload): the next delay uses them; failures are kept. */
void	 backoff_set_bounds(struct backoff *, int64_t initial_ms,
	    int64_t max_ms);
/* Delay before the next attempt after an expensive failure; grows. */
int64_t	 backoff_next(struct backoff *);
/* Delay after a cheap failure (refused/unreachable); does not grow. */
int64_t	 backoff_next_cheap(struct backoff *);
/* Delay for permanent errors: around the cap, never less than half. */
int64_t	 backoff_at_cap(struct backoff *);
/* The ceiling backoff_next() would use now (for status messages). */
int64_t	 backoff_ceiling(const struct backoff *);
void	 backoff_reset(struct backoff *);

#endif
