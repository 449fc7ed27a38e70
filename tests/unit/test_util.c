/*
 * Unit tests for util.c's sanitiser: what a server sends must reach a log
 * line, a journald field or a terminal as one bounded line with no control
 * character, and a cut never splits a character.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util.h"

/* 1 if s holds a byte no terminal should see (C0 or DEL). */
static int
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return 1;
	return 0;
}

/* Newlines, escapes and DEL become '?'; printable ASCII stays. */
static void
test_sanitize_controls(void **state)
{
	static const char in[] = "ok\n2026-01-01T00:00:00 fake\r\x1b[31mred"
	    "\x7f\t.";
	char	*s;

	(void)state;
	s = str_sanitize(in, sizeof in - 1, 200);
	assert_string_equal(s, "ok?2026-01-01T00:00:00 fake??[31mred??.");
	free(s);
}

/* A NUL inside the data is a byte like any other: '?', no early end. */
static void
test_sanitize_nul(void **state)
{
	char	buf[16];

	(void)state;
	str_sanitize_buf("a\0b", 3, buf, sizeof buf, 0);
	assert_string_equal(buf, "a?b");
}

/* The cut: max bytes and "..." (str_sanitize), or the buffer's size. */
static void
test_sanitize_cut(void **state)
{
	char	*big = malloc(30000), *s, buf[8];

	(void)state;
	memset(big, 'x', 30000);
	big[100] = '\n';
	s = str_sanitize(big, 30000, 200);
	assert_int_equal(strlen(s), 203);
	assert_string_equal(s + 200, "...");
	assert_int_equal(s[100], '?');
	free(s);
	/* Exactly full: no cut mark. */
	str_sanitize_buf("1234567", 7, buf, sizeof buf, 0);
	assert_string_equal(buf, "1234567");
	str_sanitize_buf("12345678", 8, buf, sizeof buf, 0);
	assert_string_equal(buf, "1234...");
	/* Too small for the mark: just cut. */
	str_sanitize_buf("12345678", 8, buf, 3, 0);
	assert_string_equal(buf, "12");
	str_sanitize_buf("abc", 3, buf, 1, 0);
	assert_string_equal(buf, "");
	free(big);
}

/* Without STR_UTF8 every non-ASCII byte is '?'. */
static void
test_sanitize_ascii_only(void **state)
{
	char	*s;

	(void)state;
	s = str_sanitize("caf\xc3\xa9", 5, 10);
	assert_string_equal(s, "caf??");
	free(s);
}

/* STR_UTF8 keeps characters, refuses C1, separators, bidi, bad forms. */
static void
test_sanitize_utf8(void **state)
{
	static const struct {
		const char	*in;
		const char	*out;
	} cases[] = {
		{ "caf\xc3\xa9", "caf\xc3\xa9" },		/* é */
		{ "\xe2\x82\xac\xf0\x9f\x99\x82", "\xe2\x82\xac\xf0\x9f\x99\x82" },
		{ "\xc2\x9b" "31m", "??31m" },		/* C1 CSI */
		{ "\xc2\x85", "??" },			/* NEL */
		{ "a\xe2\x80\xa8" "b", "a???b" },	/* U+2028 */
		{ "\xe2\x80\xae" "evil", "???evil" },	/* U+202E RLO */
		{ "\xe2\x81\xa6", "???" },		/* U+2066 LRI */
		{ "\xc0\xaf", "??" },			/* overlong '/' */
		{ "\xe0\x80\xaf", "???" },		/* overlong */
		{ "\xed\xa0\x80", "???" },		/* surrogate */
		{ "\xf4\x90\x80\x80", "????" },		/* > U+10FFFF */
		{ "\xc3", "?" },			/* truncated */
		{ "\xc3" "a", "?a" },			/* bad continuation */
		{ "\x9b", "?" },			/* raw C1 byte */
	};
	char	buf[64];
	size_t	i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		str_sanitize_buf(cases[i].in, strlen(cases[i].in), buf,
		    sizeof buf, STR_UTF8);
		assert_string_equal(buf, cases[i].out);
		assert_false(has_control(buf));
	}
}

/* A cut never splits a multi-byte character. */
static void
test_sanitize_utf8_cut(void **state)
{
	char	buf[8];

	(void)state;
	/* "ab" + é + é + é = 8 bytes into 8: cut at 4 bytes + "...". */
	str_sanitize_buf("ab\xc3\xa9\xc3\xa9\xc3\xa9", 8, buf, sizeof buf,
	    STR_UTF8);
	assert_string_equal(buf, "ab\xc3\xa9...");
	/* "a" + é + é + é = 7 bytes: the é at bytes 3-4 would cross 4. */
	str_sanitize_buf("a\xc3\xa9\xc3\xa9\xc3\xa9x", 8, buf, sizeof buf,
	    STR_UTF8);
	assert_string_equal(buf, "a\xc3\xa9...");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sanitize_controls),
		cmocka_unit_test(test_sanitize_nul),
		cmocka_unit_test(test_sanitize_cut),
		cmocka_unit_test(test_sanitize_ascii_only),
		cmocka_unit_test(test_sanitize_utf8),
		cmocka_unit_test(test_sanitize_utf8_cut),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
