/*
 * Receive-window autotuning for forwarded channels.
 *
 * The server may send a channel no more than our receive window before it
 * waits for a WINDOW_ADJUST, so a channel carries at most one window per
 * round trip. libssh2 keeps every channel's window topped up to its base
 * (2 MiB): 40 MiB/s at 50 ms, 13 MiB/s at 150 ms, whatever the link. Like
 * TCP's receive-buffer autotuning (dynamic right-sizing), this grows a
 * channel's window while the window is the limit: once per round trip it
 * looks at what the channel consumed in that round trip, and when that is
 * at least half the window (on paths of 10 ms and more as soon as half
 * the window is consumed, not a round trip later), it sizes the window to
 * twice what a round trip at that rate brings, at least doubling it — up
 * to the channel's ceiling and while two budgets have room: the daemon's,
 * and the session's (a part of its memory cap, which counts what libssh2
 * holds).
 *
 * What counts as consumed is what the local program read (the bridge
 * passes the bytes that left the local socket's queue, not those it wrote
 * into it: the kernel takes megabytes from a program that never reads),
 * so a channel grows only while its local app keeps up. When the app stops reading, the bridge calls window_stall:
 * the target falls back to the base at once and nothing more is granted;
 * the budget is returned as the granted window drains. A stalled channel
 * therefore holds at most the window it had, and an idle or slow one
 * (less than half a window per round trip) never grows past the base.
 *
 * The budget is charged with the part of a channel's window above the
 * base: max(target, granted) - base, where granted is what the server may
 * still send (libssh2's remote.window_size, which counts bytes not yet
 * consumed), so a window given before a stall stays charged until it is
 * used up.
 */
#include "window.h"

#define MIN(a, b)	((a) < (b) ? (a) : (b))
#define MAX(a, b)	((a) > (b) ? (a) : (b))

/*
 * Below this round trip a 2 MiB window allows 200 MiB/s and more, beyond
 * what the cipher does: growing early there would only follow bursts.
 */
#define WINDOW_EARLY_RTT_MS	10

/*
 * The most one step multiplies a window by: from libssh2's 2 MiB to a
 * 32 MiB ceiling in one round trip on a fast path.
 */
#define WINDOW_STEP_MAX		16

/* Set up a channel's window at libssh2's base; budgets may be NULL. */
void
window_init(struct window *w, struct window_budget *daemon,
    struct window_budget *session, uint32_t base, uint32_t ceiling)
{
	w->budget[0] = daemon;
	w->budget[1] = session;
	w->base = base;
	w->ceiling = MAX(ceiling, base);
	w->target = base;
	w->charged = 0;
	w->epoch_ms = -1;
	w->epoch_bytes = 0;
	w->grows = 0;
	w->stalled = 0;
}

/* Hold from the budget what the window above the base may still bring. */
static void
window_charge(struct window *w, uint32_t granted)
{
	/* target >= base always, so this never wraps. */
	uint64_t	want = MAX(w->target, granted) - (uint64_t)w->base;
	int		i;

	for (i = 0; i < 2; i++)
		if (w->budget[i] != NULL)
			w->budget[i]->used = w->budget[i]->used - w->charged +
			    want;
	w->charged = want;
}

/* The largest target the ceiling and the budgets allow now. */
static uint64_t
window_limit(const struct window *w)
{
	uint64_t	free_bytes = UINT64_MAX;
	int		i;

	for (i = 0; i < 2; i++) {
		if (w->budget[i] == NULL)
			continue;
		if (w->budget[i]->used >= w->budget[i]->limit)
			free_bytes = 0;
		else
			free_bytes = MIN(free_bytes,
			    w->budget[i]->limit - w->budget[i]->used);
	}
	return MIN((uint64_t)w->ceiling,
	    (uint64_t)w->base + w->charged + MIN(free_bytes, w->ceiling));
}

/*
 * Once per round trip: when the channel consumed at least half its
 * window in it, the window is what limits it. It grows to twice what the
 * channel would consume in a round trip at the rate it consumed so far
 * (an estimate of the path's bandwidth-delay product, as TCP's receive
 * autotuning sizes its buffer from what arrives in a round trip), and at
 * least doubles; within its limits, and at most WINDOW_STEP_MAX times.
 */
static void
window_round(struct window *w, const struct window_read *r)
{
	int64_t		elapsed = r->now_ms - w->epoch_ms;
	uint64_t	per_rtt, grown;

	if (r->rtt_ms <= 0)
		return;
	/*
	 * Half the window consumed before the round trip is over: that
	 * already says the window limits, so grow now rather than at the
	 * end of the round trip (a round trip sooner, as TCP's slow start
	 * grows per ACK). Not on short paths, where a burst read in one
	 * round looks as fast and the window cannot be what limits.
	 */
	if (elapsed < r->rtt_ms && (r->rtt_ms < WINDOW_EARLY_RTT_MS ||
	    w->epoch_bytes < w->target / 2))
		return;
	/* What a round trip at this rate brings (a burst: at least 1 ms). */
	per_rtt = w->epoch_bytes * (uint64_t)r->rtt_ms /
	    (uint64_t)MAX(elapsed, 1);
	if (per_rtt >= w->target / 2) {
		grown = MAX((uint64_t)w->target * 2, per_rtt * 2);
		grown = MIN(grown, (uint64_t)w->target * WINDOW_STEP_MAX);
		grown = MIN(grown, window_limit(w));
		if (grown > w->target) {
			w->target = (uint32_t)grown;
			w->grows++;
		}
	}
	w->epoch_ms = r->now_ms;
	w->epoch_bytes = 0;
}

/*
 * The bridge read from the channel, and the local side took r->n bytes
 * since the last call; r->avail is the window the server may still fill. Returns the
 * WINDOW_ADJUST to send now, 0 for none (libssh2 keeps the base itself).
 */
uint32_t
window_on_read(struct window *w, const struct window_read *r)
{
	w->stalled = 0;
	if (w->epoch_ms < 0 || r->now_ms < w->epoch_ms) {
		/* These bytes went before the epoch: not part of its rate. */
		w->epoch_ms = r->now_ms;
		w->epoch_bytes = 0;
	} else {
		w->epoch_bytes += r->n;
		window_round(w, r);
	}
	window_charge(w, r->avail);
	/* Adjust in steps of a quarter window: fewer, larger packets. */
	if (w->target > w->base && r->avail < w->target - w->target / 4)
		return w->target - r->avail;
	return 0;
}

/*
 * The local side stopped taking bytes: grant no more than the base from
 * now on; granted is the window the server may still fill.
 */
void
window_stall(struct window *w, uint32_t granted)
{
	w->stalled = 1;
	w->target = w->base;
	w->epoch_ms = -1;
	w->epoch_bytes = 0;
	window_charge(w, granted);
}

/* The channel is gone: give its share back. */
void
window_release(struct window *w)
{
	int	i;

	for (i = 0; i < 2; i++)
		if (w->budget[i] != NULL)
			w->budget[i]->used -= w->charged;
	w->charged = 0;
}

/*
 * The ceiling changed (a reload): a window above it shrinks to it (its
 * charge follows at the next read, stall or release).
 */
void
window_set_ceiling(struct window *w, uint32_t ceiling)
{
	w->ceiling = MAX(ceiling, w->base);
	if (w->target > w->ceiling)
		w->target = w->ceiling;
}
