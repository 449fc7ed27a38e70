/*
 * Unit tests for base64.c against RFC 4648 test vectors, and for the
 * white space skipping variant that reads wrapped key files.
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
	assert_int_equal(base64_decode("Zm9v\n", &out, &len), -1);
	assert_int_equal(base64_decode("Zm9v\tYmFy", &out, &len), -1);
}

/* Padding may only complete the last quad, and nothing may follow it. */
static void
test_base64_decode_padding(void **state)
{
	static const char *bad[] = {
		"Zm9v=", "Zm9v==", "Zg===", "Zm8==", "Z===", "=", "==",
		"Zg==Zg==", "Zg=g", "Zm9v=Zm9v",
	};
	unsigned char	*out;
	size_t		 len, i;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(base64_decode(bad[i], &out, &len), -1);
		assert_int_equal(base64_decode_ws(bad[i], &out, &len), -1);
	}
	/* Partial padding is still the one quad it completes. */
	assert_int_equal(base64_decode("Zg=", &out, &len), 0);
	assert_int_equal(len, 1);
	assert_memory_equal(out, "f", 1);
	free(out);
}

/* The white space variant decodes wrapped text and rejects the rest. */
static void
test_base64_decode_ws(void **state)
{
	static const struct {
		const char	*text;
		const char	*plain;		/* NULL: invalid */
	} cases[] = {
		{ "Zm9vYmFy", "foobar" },
		{ "Zm9v\nYmFy\n", "foobar" },
		{ "  Zm9v\r\n\tYmE=\r\n", "fooba" },
		{ "Z m 9 v Y g = =", "foob" },
		{ "Zm8\n=\n", "fo" },
		{ "Zg==\n \t\r\v\f", "f" },
		{ " \n\t", "" },
		{ "", "" },
		{ "Zm9v\nYm!y", NULL },
		{ "Zm9v\nY", NULL },
		{ "Zg==\nZm9v", NULL },
		{ "Zm9v\0", "foo" },		/* the string ends at NUL */
	};
	unsigned char	*out;
	size_t		 len, i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (cases[i].plain == NULL) {
			assert_int_equal(base64_decode_ws(cases[i].text, &out,
			    &len), -1);
			continue;
		}
		assert_int_equal(base64_decode_ws(cases[i].text, &out, &len),
		    0);
		assert_int_equal(len, strlen(cases[i].plain));
		assert_memory_equal(out, cases[i].plain, len);
		free(out);
	}
}

/* Every byte value survives encoding, wrapping at 70 columns, decoding. */
static void
test_base64_wrapped_round_trip(void **state)
{
	unsigned char	 plain[256], *out;
	char		*text, *wrapped, *w;
	size_t		 i, n, len;

	(void)state;
	for (i = 0; i < sizeof plain; i++)
		plain[i] = (unsigned char)i;
	for (n = 0; n <= sizeof plain; n++) {
		text = base64_encode(plain, n, 1);
		wrapped = w = malloc(strlen(text) * 2 + 1);
		assert_non_null(wrapped);
		for (i = 0; text[i] != '\0'; i++) {
			if (i > 0 && i % 70 == 0)
				*w++ = '\n';
			*w++ = text[i];
		}
		*w = '\0';
		assert_int_equal(base64_decode_ws(wrapped, &out, &len), 0);
		assert_int_equal(len, n);
		assert_memory_equal(out, plain, n);
		free(out);
		/* The strict variant refuses what has a line break. */
		assert_int_equal(base64_decode(wrapped, &out, &len),
		    strchr(wrapped, '\n') != NULL ? -1 : 0);
		if (strchr(wrapped, '\n') == NULL)
			free(out);
		free(wrapped);
		free(text);
	}
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_base64_encode),
		cmocka_unit_test(test_base64_decode),
		cmocka_unit_test(test_base64_decode_padding),
		cmocka_unit_test(test_base64_decode_ws),
		cmocka_unit_test(test_base64_wrapped_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
