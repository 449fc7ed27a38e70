/*
 * Unit tests for base64.c against RFC 4648 test vectors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base64.h"

static const struct {
	const char	*plain;
	const char	*padded;
	const char	*unpadded;
} vectors[] = {
	{ "", "", "" },
	{ "f", "Zg==", "Zg" },
	{ "fo", "Zm8=", "Zm8" },
	{ "foo", "Zm9v", "Zm9v" },
	{ "foob", "Zm9vYg==", "Zm9vYg" },
	{ "fooba", "Zm9vYmE=", "Zm9vYmE" },
	{ "foobar", "Zm9vYmFy", "Zm9vYmFy" },
};

/* Encoding matches the RFC vectors, with and without padding. */
static void
test_base64_encode(void **state)
{
	char	*s;
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		s = base64_encode(vectors[i].plain, strlen(vectors[i].plain),
		    1);
		assert_string_equal(s, vectors[i].padded);
		free(s);
		s = base64_encode(vectors[i].plain, strlen(vectors[i].plain),
		    0);
		assert_string_equal(s, vectors[i].unpadded);
		free(s);
	}
}

/* Decoding accepts both forms and rejects garbage. */
static void
test_base64_decode(void **state)
{
	unsigned char	*out;
	size_t		 len, i;

	(void)state;
	for (i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		assert_int_equal(base64_decode(vectors[i].padded, &out, &len),
		    0);
		assert_int_equal(len, strlen(vectors[i].plain));
		assert_memory_equal(out, vectors[i].plain, len);
		free(out);
		assert_int_equal(base64_decode(vectors[i].unpadded, &out,
		    &len), 0);
		assert_int_equal(len, strlen(vectors[i].plain));
		free(out);
	}
	assert_int_equal(base64_decode("Zm9v!", &out, &len), -1);
	assert_int_equal(base64_decode("Z", &out, &len), -1);
	assert_int_equal(base64_decode("Zm 9v", &out, &len), -1);
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_base64_encode),
		cmocka_unit_test(test_base64_decode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
