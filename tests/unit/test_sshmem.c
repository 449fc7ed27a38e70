/*
 * Unit tests for sshmem.c: the pool accounts for every block through
 * alloc, realloc and free, and release frees what was left behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sshmem.h"

/* Blocks and bytes follow alloc/realloc/free; payloads stay aligned. */
static void
test_sshmem_accounting(void **state)
{
	struct sshmem	m;
	char		*a, *b, *c;

	(void)state;
	sshmem_init(&m);
	a = sshmem_alloc(&m, 100);
	b = sshmem_alloc(&m, 10);
	c = sshmem_alloc(&m, 1);
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_int_equal((uintptr_t)a % _Alignof(max_align_t), 0);
	assert_int_equal(m.blocks, 3);
	assert_int_equal(m.bytes, 111);
	memset(a, 'x', 100);
	a = sshmem_realloc(&m, a, 5000);
	assert_non_null(a);
	assert_int_equal(a[99], 'x');
	assert_int_equal(m.bytes, 5011);
	assert_int_equal(m.peak, 5011);
	sshmem_free(&m, b);		/* the middle of the list */
	sshmem_free(&m, NULL);
	assert_int_equal(m.blocks, 2);
	assert_int_equal(m.bytes, 5001);
	assert_null(sshmem_alloc(&m, (size_t)-1));
	assert_null(sshmem_realloc(&m, c, (size_t)-8));
	assert_int_equal(m.blocks, 2);	/* a failed realloc keeps the block */
	sshmem_free(&m, c);
	sshmem_free(&m, a);
	assert_int_equal(m.blocks, 0);
	assert_int_equal(m.bytes, 0);
	assert_null(m.head);
}

/* What the library forgot is freed by release (LeakSanitizer checks). */
static void
test_sshmem_release(void **state)
{
	struct sshmem	m;
	int		i;

	(void)state;
	sshmem_init(&m);
	for (i = 0; i < 50; i++)
		assert_non_null(sshmem_alloc(&m, (size_t)i * 7 + 1));
	assert_non_null(sshmem_realloc(&m, NULL, 64));
	assert_int_equal(sshmem_release(&m), 51);
	assert_int_equal(m.blocks, 0);
	assert_int_equal(m.bytes, 0);
	assert_int_equal(sshmem_release(&m), 0);
}

/* The cost counts header and chunk overhead, and follows every block. */
static void
test_sshmem_cost(void **state)
{
	struct sshmem	m;
	void		*a, *b;

	(void)state;
	assert_int_equal(sshmem_block_cost(0) % 16, 0);
	assert_true(sshmem_block_cost(1) >= 1 + sizeof(void *) * 3);
	assert_true(sshmem_block_cost(1000) >= 1000);
	assert_true(sshmem_block_cost(1000) < 1000 + 64);
	assert_int_equal(sshmem_block_cost((size_t)-1), (size_t)-1);
	sshmem_init(&m);
	a = sshmem_alloc(&m, 10);
	b = sshmem_alloc(&m, 3000);
	assert_int_equal(m.cost, sshmem_block_cost(10) +
	    sshmem_block_cost(3000));
	b = sshmem_realloc(&m, b, 20);
	assert_int_equal(m.cost, sshmem_block_cost(10) + sshmem_block_cost(20));
	sshmem_free(&m, a);
	sshmem_free(&m, b);
	assert_int_equal(m.cost, 0);
	assert_int_equal(m.cost_peak, sshmem_block_cost(10) +
	    sshmem_block_cost(3000));
}

/*
 * Past the cap an allocation or a growing realloc fails and is recorded;
 * frees and shrinking reallocs still work; release keeps the cap and
 * forgets the refusal.
 */
static void
test_sshmem_cap(void **state)
{
	struct sshmem	m;
	void		*v[64], *p;
	size_t		 n = 0, cap = 100 * sshmem_block_cost(100);

	(void)state;
	sshmem_init(&m);
	sshmem_set_cap(&m, cap);
	while (n < 64 && (v[n] = sshmem_alloc(&m, 1000)) != NULL)
		n++;
	assert_true(n > 0 && n < 64);
	assert_true(m.cost <= cap);
	assert_true(m.cost + sshmem_block_cost(1000) > cap);
	assert_int_equal(m.over, 1);
	assert_int_equal(m.refused, 1000);
	/* A later refusal does not overwrite the first one. */
	assert_null(sshmem_alloc(&m, 5000));
	assert_int_equal(m.refused, 1000);
	/* Growing a block is refused, shrinking one goes. */
	assert_null(sshmem_realloc(&m, v[0], 20000));
	p = sshmem_realloc(&m, v[0], 10);
	assert_non_null(p);
	v[0] = p;
	/* Room again after a free. */
	sshmem_free(&m, v[--n]);
	assert_non_null(v[n] = sshmem_alloc(&m, 900));
	n++;
	/* A huge request is refused without overflowing the sum. */
	assert_null(sshmem_alloc(&m, (size_t)-1 / 2));
	assert_true(m.cost <= cap);
	assert_int_equal(sshmem_release(&m), n);
	assert_int_equal(m.cap, cap);
	assert_int_equal(m.over, 0);
	assert_int_equal(m.cost, 0);
	/* No cap: anything malloc gives. */
	sshmem_set_cap(&m, 0);
	assert_non_null(p = sshmem_alloc(&m, 1 << 20));
	sshmem_free(&m, p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sshmem_accounting),
		cmocka_unit_test(test_sshmem_release),
		cmocka_unit_test(test_sshmem_cost),
		cmocka_unit_test(test_sshmem_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
