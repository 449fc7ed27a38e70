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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sshmem_accounting),
		cmocka_unit_test(test_sshmem_release),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
