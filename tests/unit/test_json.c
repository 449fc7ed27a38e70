/*
 * Unit tests for json.c: string escaping, and parsing what we emit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "json.h"
#include "util.h"

/* Escaping covers quotes, backslashes and control characters. */
static void
test_json_str_escapes(void **state)
{
	struct buf	b;

	(void)state;
	buf_init(&b);
	json_str(&b, "a\"b\\c\nd\te\x01");
	assert_string_equal(buf_cstr(&b), "\"a\\\"b\\\\c\\nd\\te\\u0001\"");
	buf_clear(&b);
	json_str(&b, NULL);
	assert_string_equal(buf_cstr(&b), "null");
	buf_clear(&b);
}

/* A status-shaped document parses and members can be read back. */
static void
test_json_parse_document(void **state)
{
	const char		*text = "{\"version\":\"0.1\",\"pid\":123,"
	    "\"ok\":true,\"none\":null,\"servers\":[{\"name\":\"vps\","
	    "\"last_error\":\"x\\\"y\\u0001\"}],\"neg\":-1.5e2}";
	const struct json	*servers;
	struct json		*doc;
	char			*cause = NULL;

	(void)state;
	doc = json_parse(text, &cause);
	assert_non_null(doc);
	assert_string_equal(json_get_str(doc, "version"), "0.1");
	assert_int_equal((int)json_get_num(doc, "pid", 0), 123);
	assert_int_equal((int)json_get_num(doc, "ok", 0), 1);
	assert_null(json_get_str(doc, "none"));
	assert_int_equal((int)json_get_num(doc, "neg", 0), -150);
	assert_int_equal((int)json_get_num(doc, "missing", 7), 7);
	servers = json_get(doc, "servers");
	assert_non_null(servers);
	assert_int_equal(servers->type, JSON_ARRAY);
	assert_int_equal(servers->nkids, 1);
	assert_string_equal(json_get_str(&servers->kids[0], "name"), "vps");
	assert_string_equal(json_get_str(&servers->kids[0], "last_error"),
	    "x\"y\x01");
	json_free(doc);
}

/* What json_str writes, json_parse reads back unchanged. */
static void
test_json_round_trip(void **state)
{
	const char	*samples[] = { "", "plain", "quote\" back\\slash",
	    "tab\tnl\ncr\r", "ctl\x02\x1f", "utf-8 \xc3\xa9" };
	struct json	*doc;
	struct buf	 b;
	char		*cause = NULL;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof samples / sizeof samples[0]; i++) {
		buf_init(&b);
		buf_printf(&b, "{\"k\":");
		json_str(&b, samples[i]);
		buf_printf(&b, "}");
		doc = json_parse(buf_cstr(&b), &cause);
		assert_non_null(doc);
		assert_string_equal(json_get_str(doc, "k"), samples[i]);
		json_free(doc);
		buf_clear(&b);
	}
}

/* Malformed input is refused with a reason. */
static void
test_json_parse_errors(void **state)
{
	/*
	 * The last ones are fuzzer findings: a member name at the end and a
	 * short \u escape read past the NUL; strtod's words are not JSON.
	 */
	const char	*bad[] = { "", "{", "{\"a\" 1}", "[1,]", "{\"a\":1}x",
	    "\"open", "tru", "{1:2}", "{\"a\"", "{\"known key \\\"hy\"",
	    "\"\\u1\"", "[\"\\u12", "nan", "inf", "-inf", "0x10", "1e999" };
	struct json	*doc;
	char		*cause, *text;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cause = NULL;
		/* On the heap: ASan sees a read past its end. */
		text = xstrdup(bad[i]);
		doc = json_parse(text, &cause);
		free(text);
		assert_null(doc);
		assert_non_null(cause);
		assert_non_null(strstr(cause, "invalid JSON"));
		free(cause);
	}
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_json_str_escapes),
		cmocka_unit_test(test_json_parse_document),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_json_parse_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
