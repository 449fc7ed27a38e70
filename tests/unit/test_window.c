/*
 * Unit tests for window.c: a window-limited channel at least doubles per
 * round trip up to its ceiling, a burst sizes it to its rate at once; slow, idle, unmeasured and loopback channels
 * never grow; a stall drops the target at once and the budget is held
 * until the granted window drains; the daemon's and the session's budgets
 * bound growth.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "window.h"

#define MiB	(1024u * 1024u)
#define BASE	(2 * MiB)

/* A channel and the window the server sees (granted, not yet consumed). */
struct chan {
	struct window	w;
	uint32_t	avail;
	int64_t		now;
	uint64_t	adjusted;
};

static void
chan_init(struct chan *c, struct window_budget *b, uint32_t ceiling)
{
	window_init(&c->w, b, NULL, BASE, ceiling);
	c->avail = BASE;
	c->now = 1000;
	c->adjusted = 0;
}

/*
 * span ms of a path with a round trip of rtt ms in which the channel
 * consumes bytes in 16 reads spread evenly; the window given back as the
 * bridge would.
 */
static void
chan_consume(struct chan *c, int64_t rtt, int64_t span, uint64_t bytes)
{
	struct window_read	r;
	uint32_t		adj;
	int			i;

	for (i = 0; i < 16; i++) {
		c->now += span / 16 > 0 ? span / 16 : 1;
		r.now_ms = c->now;
		r.rtt_ms = rtt;
		r.n = bytes / 16;
		/* Consumed; libssh2 keeps the base topped up itself. */
		c->avail -= c->avail >= r.n ? (uint32_t)r.n : c->avail;
		if (c->avail < BASE / 4 * 3)
			c->avail = BASE;
		r.avail = c->avail;
		adj = window_on_read(&c->w, &r);
		c->avail += adj;
		c->adjusted += adj;
	}
}

/* One round trip of rtt ms in which the channel consumes bytes. */
static void
chan_round(struct chan *c, int64_t rtt, uint64_t bytes)
{
	chan_consume(c, rtt, rtt, bytes);
}

/*
 * Consuming a whole window per round trip at least doubles it per round
 * trip (a steady rate: about doubles), up to the ceiling.
 */
static void
test_window_limited_doubles(void **state)
{
	struct window_budget	b = { 1ull << 30, 0 };
	struct chan		c;
	uint32_t		before;
	int			i;

	(void)state;
	chan_init(&c, &b, 32 * MiB);
	for (i = 0; i < 6; i++) {
		before = c.w.target;
		chan_round(&c, 50, c.w.target);
		if (before < 32 * MiB) {
			assert_true(c.w.target >= 2 * before ||
			    c.w.target == 32 * MiB);
			/* A steady rate is no burst: no jump past ~2x. */
			assert_true(c.w.target <= 3 * before);
		}
		/* The server always has at least 3/4 of it to fill. */
		assert_true(c.avail >= c.w.target / 4 * 3);
	}
	assert_int_equal(c.w.target, 32 * MiB);
	assert_true(c.w.grows >= 3 && c.w.grows <= 4);
	assert_true(c.adjusted > 0);
	assert_int_equal(b.used, 30 * MiB);
	window_release(&c.w);
	assert_int_equal(b.used, 0);
}

/*
 * A window consumed in a burst (far faster than one per round trip: a
 * fast path) grows to what a round trip at that rate needs at once, by
 * at most 16x per step; a steady quarter window per round trip does not
 * grow at all.
 */
static void
test_window_burst_sizes_to_rate(void **state)
{
	struct window_budget	b = { 1ull << 30, 0 };
	struct chan		c;

	(void)state;
	chan_init(&c, &b, 64 * MiB);
	/*
	 * 2 MiB read in 16 reads 2 ms apart on a 150 ms path: half of it
	 * (the first read opens the epoch) took 16 ms, so a round trip at
	 * that rate brings 1 MiB * 150 / 16; the window is twice that.
	 */
	chan_consume(&c, 150, 32, BASE);
	assert_int_equal(c.w.target, 2 * (MiB * 150 / 16));
	assert_int_equal(c.w.grows, 1);
	window_release(&c.w);
	/* Twice as fast: 37.5 MiB, but one step is at most 16x. */
	chan_init(&c, &b, 64 * MiB);
	chan_consume(&c, 150, 16, BASE);
	assert_int_equal(c.w.target, 16 * BASE);
	window_release(&c.w);
	chan_init(&c, &b, 64 * MiB);
	chan_round(&c, 300, BASE / 4);
	chan_round(&c, 300, BASE / 4);
	assert_int_equal(c.w.target, BASE);
}

/* Without a round-trip figure nothing grows and nothing is adjusted. */
static void
test_window_no_rtt_no_growth(void **state)
{
	struct window_budget	b = { 1ull << 30, 0 };
	struct chan		c;
	int			i;

	(void)state;
	chan_init(&c, &b, 32 * MiB);
	for (i = 0; i < 10; i++)
		chan_round(&c, 0, 64 * MiB);
	assert_int_equal(c.w.target, BASE);
	assert_int_equal(c.adjusted, 0);
	assert_int_equal(b.used, 0);
}

/* Less than half a window per round trip: the window is not the limit. */
static void
test_window_slow_channel_stays(void **state)
{
	struct window_budget	b = { 1ull << 30, 0 };
	struct chan		c;
	int			i;

	(void)state;
	chan_init(&c, &b, 32 * MiB);
	for (i = 0; i < 50; i++)
		chan_round(&c, 150, BASE / 4);
	assert_int_equal(c.w.target, BASE);
	/* Loopback: 300 KiB per 1 ms round trip is far from a window. */
	for (i = 0; i < 50; i++)
		chan_round(&c, 1, 16 * 300 * 1024);
	assert_int_equal(c.w.target, BASE);
	assert_int_equal(c.adjusted, 0);
}

/* A long pause then a burst is not a fast round trip. */
static void
test_window_idle_then_burst(void **state)
{
	struct window_budget	b = { 1ull << 30, 0 };
	struct chan		c;
	uint32_t		before;

	(void)state;
	chan_init(&c, &b, 32 * MiB);
	chan_round(&c, 50, BASE);
	before = c.w.target;
	c.now += 60000;
	chan_round(&c, 50, BASE / 16);
	assert_int_equal(c.w.target, before);
}

/* A stall drops the target; the budget is held until the grant drains. */
static void
test_window_stall_drops_target(void **state)
{
	struct window_budget	b = { 1ull << 30, 0 };
	struct chan		c;
	struct window_read	r = { 0, 50, 0, 0 };
	int			i;

	(void)state;
	chan_init(&c, &b, 8 * MiB);
	for (i = 0; i < 4; i++)
		chan_round(&c, 50, c.w.target);
	assert_int_equal(c.w.target, 8 * MiB);
	window_stall(&c.w, c.avail);
	assert_int_equal(c.w.target, BASE);
	assert_true(c.w.stalled);
	/* The server may still send what it was given: still charged. */
	assert_int_equal(b.used, (uint64_t)c.avail - BASE);
	/* Reading again once it drained: nothing above the base is given. */
	r.now_ms = c.now + 10;
	r.n = 4096;
	r.avail = BASE;
	assert_int_equal(window_on_read(&c.w, &r), 0);
	assert_int_equal(b.used, 0);
	assert_false(c.w.stalled);
}

/* The budget caps growth across channels; a release makes room. */
static void
test_window_budget_shared(void **state)
{
	struct window_budget	b = { 6 * MiB, 0 };
	struct chan		a, c;
	int			i;

	(void)state;
	chan_init(&a, &b, 32 * MiB);
	chan_init(&c, &b, 32 * MiB);
	for (i = 0; i < 6; i++)
		chan_round(&a, 50, a.w.target);
	assert_int_equal(a.w.target, 8 * MiB);
	assert_int_equal(b.used, 6 * MiB);
	for (i = 0; i < 6; i++)
		chan_round(&c, 50, c.w.target);
	assert_int_equal(c.w.target, BASE);
	window_stall(&a.w, BASE);
	window_release(&a.w);
	assert_int_equal(b.used, 0);
	for (i = 0; i < 6; i++)
		chan_round(&c, 50, c.w.target);
	assert_int_equal(c.w.target, 8 * MiB);
	assert_true(b.used <= b.limit);
}

/* The session's budget bounds growth too, and both are charged. */
static void
test_window_session_budget(void **state)
{
	struct window_budget	b = { 1ull << 30, 0 }, s = { 2 * MiB, 0 };
	struct chan		c;
	int			i;

	(void)state;
	chan_init(&c, &b, 32 * MiB);
	window_init(&c.w, &b, &s, BASE, 32 * MiB);
	for (i = 0; i < 6; i++)
		chan_round(&c, 50, c.w.target);
	assert_int_equal(c.w.target, 4 * MiB);
	assert_int_equal(b.used, 2 * MiB);
	assert_int_equal(s.used, 2 * MiB);
	window_release(&c.w);
	assert_int_equal(b.used, 0);
	assert_int_equal(s.used, 0);
}

/* A ceiling at or below the base: never grows. */
static void
test_window_ceiling_below_base(void **state)
{
	struct chan	c;
	int		i;

	(void)state;
	chan_init(&c, NULL, 0);
	for (i = 0; i < 6; i++)
		chan_round(&c, 50, c.w.target);
	assert_int_equal(c.w.target, BASE);
	assert_int_equal(c.adjusted, 0);
}

/* A lower ceiling (a reload) shrinks a grown window; growth stops there. */
static void
test_window_set_ceiling(void **state)
{
	struct window_budget	b = { 1ull << 30, 0 };
	struct chan		c;
	int			i;

	(void)state;
	chan_init(&c, &b, 32 * MiB);
	for (i = 0; i < 4; i++)
		chan_round(&c, 50, c.w.target);
	assert_true(c.w.target >= 8 * MiB);
	window_set_ceiling(&c.w, 4 * MiB);
	assert_int_equal(c.w.target, 4 * MiB);
	for (i = 0; i < 4; i++)
		chan_round(&c, 50, c.w.target);
	assert_int_equal(c.w.target, 4 * MiB);
	/* Off: back to the base, the charge follows the granted window. */
	window_set_ceiling(&c.w, 0);
	assert_int_equal(c.w.target, BASE);
	window_release(&c.w);
	assert_int_equal(b.used, 0);
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_window_limited_doubles),
		cmocka_unit_test(test_window_burst_sizes_to_rate),
		cmocka_unit_test(test_window_no_rtt_no_growth),
		cmocka_unit_test(test_window_slow_channel_stays),
		cmocka_unit_test(test_window_idle_then_burst),
		cmocka_unit_test(test_window_stall_drops_target),
		cmocka_unit_test(test_window_budget_shared),
		cmocka_unit_test(test_window_session_budget),
		cmocka_unit_test(test_window_ceiling_below_base),
		cmocka_unit_test(test_window_set_ceiling),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
