/*
 * Unit tests for backoff.c: bounds, growth, cap, reset, the cheap
 * schedule and determinism for a seed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "backoff.h"

/* Every delay stays within [initial, ceiling] and the ceiling doubles. */
static void
test_backoff_grows_within_bounds(void **state)
{
	struct backoff	b;
	int64_t		d, ceiling;
	int		i;

	(void)state;
	backoff_init(&b, 1000, 60000, 42);
	for (i = 0; i < 20; i++) {
		ceiling = backoff_ceiling(&b);
		d = backoff_next(&b);
		assert_true(d >= 1000);
		assert_true(d <= ceiling);
		assert_true(ceiling <= 60000);
	}
	/* After 20 failures the ceiling is the cap. */
	assert_int_equal(backoff_ceiling(&b), 60000);
}

/* The ceiling sequence is exactly initial * 2^n, capped. */
static void
test_backoff_ceiling_sequence(void **state)
{
	static const int64_t	want[] = { 1000, 2000, 4000, 8000, 16000,
				    32000, 60000, 60000 };
	struct backoff		b;
	size_t			i;

	(void)state;
	backoff_init(&b, 1000, 60000, 7);
	for (i = 0; i < sizeof want / sizeof want[0]; i++) {
		assert_int_equal(backoff_ceiling(&b), want[i]);
		(void)backoff_next(&b);
	}
}

/* Full jitter really spreads: many draws at the cap are not all equal. */
static void
test_backoff_jitter_spreads(void **state)
{
	struct backoff	b;
	int64_t		lo = INT64_MAX, hi = 0, d;
	int		i;

	(void)state;
	backoff_init(&b, 1000, 60000, 12345);
	for (i = 0; i < 10; i++)
		(void)backoff_next(&b);
	for (i = 0; i < 1000; i++) {
		d = backoff_next(&b);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	assert_true(lo < 15000);
	assert_true(hi > 45000);
}

/* Reset goes back to the initial ceiling. */
static void
test_backoff_reset(void **state)
{
	struct backoff	b;
	int		i;

	(void)state;
	backoff_init(&b, 500, 30000, 1);
	for (i = 0; i < 8; i++)
		(void)backoff_next(&b);
	assert_int_equal(backoff_ceiling(&b), 30000);
	backoff_reset(&b);
	assert_int_equal(backoff_ceiling(&b), 500);
	assert_int_equal(backoff_next(&b), 500);
}

/* Cheap failures never wait more than BACKOFF_CHEAP_MAX_MS, nor grow. */
static void
test_backoff_cheap(void **state)
{
	struct backoff	b;
	int64_t		d;
	int		i;

	(void)state;
	backoff_init(&b, 5000, 60000, 99);
	for (i = 0; i < 100; i++) {
		d = backoff_next_cheap(&b);
		assert_true(d >= BACKOFF_CHEAP_MAX_MS / 2);
		assert_true(d <= BACKOFF_CHEAP_MAX_MS);
	}
	assert_int_equal(backoff_ceiling(&b), 5000);
	backoff_init(&b, 200, 2000, 99);
	for (i = 0; i < 100; i++) {
		d = backoff_next_cheap(&b);
		assert_true(d >= 100 && d <= 200);
	}
}

/* Permanent errors wait between half the cap and the cap. */
static void
test_backoff_at_cap(void **state)
{
	struct backoff	b;
	int64_t		d;
	int		i;

	(void)state;
	backoff_init(&b, 1000, 60000, 3);
	for (i = 0; i < 100; i++) {
		d = backoff_at_cap(&b);
		assert_true(d >= 30000 && d <= 60000);
	}
}

/* New bounds (a reload) apply to the next delay; the growth is kept. */
static void
test_backoff_set_bounds(void **state)
{
	struct backoff	b;
	int64_t		d;
	int		i;

	(void)state;
	backoff_init(&b, 1000, 60000, 5);
	for (i = 0; i < 10; i++)
		(void)backoff_next(&b);
	assert_int_equal(backoff_ceiling(&b), 60000);
	backoff_set_bounds(&b, 500, 4000);
	assert_int_equal(backoff_ceiling(&b), 4000);
	for (i = 0; i < 100; i++) {
		d = backoff_next(&b);
		assert_true(d >= 500 && d <= 4000);
		d = backoff_at_cap(&b);
		assert_true(d >= 2000 && d <= 4000);
	}
	backoff_set_bounds(&b, 0, -1);
	assert_int_equal(backoff_ceiling(&b), 1);
}

/* The same seed gives the same sequence; bad bounds are fixed up. */
static void
test_backoff_deterministic(void **state)
{
	struct backoff	a, b;
	int		i;

	(void)state;
	backoff_init(&a, 100, 10000, 77);
	backoff_init(&b, 100, 10000, 77);
	for (i = 0; i < 50; i++)
		assert_int_equal(backoff_next(&a), backoff_next(&b));
	backoff_init(&a, 0, -5, 0);
	assert_int_equal(a.initial_ms, 1);
	assert_int_equal(a.max_ms, 1);
	assert_int_equal(backoff_next(&a), 1);
}

/*
 * Different seeds give different schedules: each daemon (and each server)
 * seeds its own, so many daemons that lost one server do not come back
 * in lock-step. Twenty draws of [1000, 60000] agreeing by chance: never.
 */
static void
test_backoff_seeds_differ(void **state)
{
	struct backoff	a, b;
	int		i, same = 0;

	(void)state;
	backoff_init(&a, 1000, 60000, 1);
	backoff_init(&b, 1000, 60000, 2);
	for (i = 0; i < 20; i++)
		if (backoff_at_cap(&a) == backoff_at_cap(&b))
			same++;
	assert_true(same < 20);
	backoff_init(&a, 200, 2000, 0x1234);
	backoff_init(&b, 200, 2000, 0x5678);
	for (i = same = 0; i < 20; i++)
		if (backoff_next_cheap(&a) == backoff_next_cheap(&b))
			same++;
	assert_true(same < 20);
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_backoff_grows_within_bounds),
		cmocka_unit_test(test_backoff_ceiling_sequence),
		cmocka_unit_test(test_backoff_jitter_spreads),
		cmocka_unit_test(test_backoff_reset),
		cmocka_unit_test(test_backoff_cheap),
		cmocka_unit_test(test_backoff_at_cap),
		cmocka_unit_test(test_backoff_set_bounds),
		cmocka_unit_test(test_backoff_deterministic),
		cmocka_unit_test(test_backoff_seeds_differ),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
