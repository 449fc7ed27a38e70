/*
 * Unit tests for addr.c: a table of inputs with the exact result or the
 * exact error message each must give.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "addr.h"

#define U	ADDR_ALLOW_UNIX
#define Z	ADDR_ALLOW_PORT_ZERO

/* One addr_parse call and what it must produce. */
struct addr_case {
	const char	*text;
	int		 flags;
	const char	*host;		/* NULL: must fail with msg */
	int		 port;
	int		 kind;
	const char	*msg;		/* addr_format result, or the error */
};

static const struct addr_case addr_cases[] = {
	/* Accepted forms. */
	{ "4001", 0, "127.0.0.1", 4001, ADDR_INET, "127.0.0.1:4001" },
	{ "1", 0, "127.0.0.1", 1, ADDR_INET, "127.0.0.1:1" },
	{ "65535", 0, "127.0.0.1", 65535, ADDR_INET, "127.0.0.1:65535" },
	{ "04001", 0, "127.0.0.1", 4001, ADDR_INET, "127.0.0.1:4001" },
	{ "host:4001", 0, "host", 4001, ADDR_INET, "host:4001" },
	{ "proxy.example.com:22", 0, "proxy.example.com", 22, ADDR_INET,
	    "proxy.example.com:22" },
	{ "1.2.3.4:4001", 0, "1.2.3.4", 4001, ADDR_INET, "1.2.3.4:4001" },
	{ "0.0.0.0:4001", 0, "0.0.0.0", 4001, ADDR_INET, "0.0.0.0:4001" },
	{ "[::1]:4001", 0, "::1", 4001, ADDR_INET, "[::1]:4001" },
	{ "[fe80::1]:80", 0, "fe80::1", 80, ADDR_INET, "[fe80::1]:80" },
	{ "[fe80::1%eth0]:80", 0, "fe80::1%eth0", 80, ADDR_INET,
	    "[fe80::1%eth0]:80" },
	{ "[::]:0", Z, "::", 0, ADDR_INET, "[::]:0" },
	{ "0", Z, "127.0.0.1", 0, ADDR_INET, "127.0.0.1:0" },
	{ "host:0", Z, "host", 0, ADDR_INET, "host:0" },
	{ "unix:/run/app.sock", U, "/run/app.sock", 0, ADDR_UNIX,
	    "unix:/run/app.sock" },

	/* Ports. */
	{ "0", 0, NULL, 0, 0, "port 0 out of range (1-65535)" },
	{ "host:0", U, NULL, 0, 0, "port 0 out of range (1-65535)" },
	{ "70000", 0, NULL, 0, 0, "port 70000 out of range (1-65535)" },
	{ "70000", Z, NULL, 0, 0, "port 70000 out of range (0-65535)" },
	{ "65536", 0, NULL, 0, 0, "port 65536 out of range (1-65535)" },
	{ "99999999999999999999", 0, NULL, 0, 0,
	    "port 99999999999999999999 out of range (1-65535)" },
	{ "localhost:65536", 0, NULL, 0, 0,
	    "port 65536 out of range (1-65535)" },
	{ "host:abc", 0, NULL, 0, 0, "invalid port \"abc\" in \"host:abc\": "
	    "expected a number from 1 to 65535" },
	{ "host:-1", Z, NULL, 0, 0, "invalid port \"-1\" in \"host:-1\": "
	    "expected a number from 0 to 65535" },
	{ "host: 80", 0, NULL, 0, 0, "invalid port \" 80\" in \"host: 80\": "
	    "expected a number from 1 to 65535" },
	{ "host:", 0, NULL, 0, 0, "invalid address \"host:\": missing port" },
	{ "[::1]:", 0, NULL, 0, 0, "invalid address \"[::1]:\": missing "
	    "port" },

	/* Hosts. */
	{ ":4001", 0, NULL, 0, 0, "invalid address \":4001\": empty host" },
	{ "[]:80", 0, NULL, 0, 0, "invalid address \"[]:80\": empty host" },
	{ "foo bar:80", 0, NULL, 0, 0, "invalid host \"foo bar\" in "
	    "\"foo bar:80\": only letters, digits, \"-\", \".\" and \"_\" "
	    "are allowed" },
	{ "*:80", 0, NULL, 0, 0, "invalid host \"*\" in \"*:80\": only "
	    "letters, digits, \"-\", \".\" and \"_\" are allowed" },
	{ "[1.2.3.4]:80", 0, NULL, 0, 0, "invalid IPv6 address \"1.2.3.4\" "
	    "in \"[1.2.3.4]:80\"" },
	{ "[fe80::1%]:80", 0, NULL, 0, 0, "invalid IPv6 address \"fe80::1%\" "
	    "in \"[fe80::1%]:80\"" },

	/* Shapes. */
	{ "", 0, NULL, 0, 0, "empty address: expected PORT, HOST:PORT or "
	    "[IPV6]:PORT" },
	{ "x", 0, NULL, 0, 0, "invalid address \"x\": expected PORT, "
	    "HOST:PORT or [IPV6]:PORT" },
	{ "+80", 0, NULL, 0, 0, "invalid address \"+80\": expected PORT, "
	    "HOST:PORT or [IPV6]:PORT" },
	{ "[::1]", 0, NULL, 0, 0, "invalid address \"[::1]\": expected PORT, "
	    "HOST:PORT or [IPV6]:PORT" },
	{ "[::1]80", 0, NULL, 0, 0, "invalid address \"[::1]80\": expected "
	    "PORT, HOST:PORT or [IPV6]:PORT" },
	{ "::1:80", 0, NULL, 0, 0, "invalid address \"::1:80\": put an IPv6 "
	    "address in brackets, e.g. \"[::1]:80\"" },
	{ "fe80::1:4001", 0, NULL, 0, 0, "invalid address \"fe80::1:4001\": "
	    "put an IPv6 address in brackets, e.g. \"[fe80::1]:4001\"" },
	{ "::1", 0, NULL, 0, 0, "invalid address \"::1\": put an IPv6 "
	    "address in brackets and add a port, e.g. \"[::1]:PORT\"" },
	{ "a:b:c", 0, NULL, 0, 0, "invalid address \"a:b:c\": expected PORT, "
	    "HOST:PORT or [IPV6]:PORT (IPv6 addresses go in brackets)" },

	/* Unix sockets. */
	{ "unix:/run/app.sock", 0, NULL, 0, 0,
	    "\"unix:\" targets are not allowed here" },
	{ "unix:/run/app.sock", Z, NULL, 0, 0,
	    "\"unix:\" targets are not allowed here" },
	{ "unix:rel.sock", U, NULL, 0, 0,
	    "unix socket path \"rel.sock\" must be absolute" },
	{ "unix:", U, NULL, 0, 0, "unix socket path \"\" must be absolute" },
};

/* Run every row of addr_cases; report all mismatches, then fail. */
static void
test_addr_table(void **state)
{
	const struct addr_case	*c;
	struct addr		 a;
	char			*cause, buf[ADDR_TEXT_MAX];
	size_t			 i;
	int			 bad = 0, rv;

	(void)state;
	for (i = 0; i < sizeof addr_cases / sizeof addr_cases[0]; i++) {
		c = &addr_cases[i];
		memset(&a, 0x55, sizeof a);
		cause = NULL;
		rv = addr_parse(c->text, "127.0.0.1", c->flags, &a, &cause);
		if (c->host == NULL) {
			if (rv != -1 || cause == NULL ||
			    strcmp(cause, c->msg) != 0) {
				print_error("\"%s\": want error \"%s\", got "
				    "rv %d \"%s\"\n", c->text, c->msg, rv,
				    cause != NULL ? cause : "(null)");
				bad++;
			}
			free(cause);
			continue;
		}
		if (rv != 0 || cause != NULL) {
			print_error("\"%s\": unexpected error \"%s\"\n",
			    c->text, cause != NULL ? cause : "(null)");
			free(cause);
			bad++;
			continue;
		}
		addr_format(&a, buf, sizeof buf);
		if ((int)a.kind != c->kind || strcmp(a.host, c->host) != 0 ||
		    a.port != c->port || strcmp(buf, c->msg) != 0) {
			print_error("\"%s\": got kind %d host \"%s\" port %d "
			    "\"%s\"\n", c->text, a.kind, a.host, a.port, buf);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/* Unix paths must fit sockaddr_un.sun_path (107 bytes + NUL). */
static void
test_addr_unix_length(void **state)
{
	struct addr	 a;
	char		 text[200], want[400], *cause = NULL;

	(void)state;
	memcpy(text, "unix:/", 6);
	memset(text + 6, 'a', 106);
	text[112] = '\0';			/* path of 107 bytes */
	assert_int_equal(addr_parse(text, "x", U, &a, &cause), 0);
	assert_null(cause);
	assert_int_equal(a.kind, ADDR_UNIX);
	assert_int_equal(strlen(a.host), 107);

	text[112] = 'a';
	text[113] = '\0';			/* 108 bytes: too long */
	assert_int_equal(addr_parse(text, "x", U, &a, &cause), -1);
	snprintf(want, sizeof want, "unix socket path \"%s\" is too long "
	    "(108 bytes, at most 107)", text + 5);
	assert_string_equal(cause, want);
	free(cause);
}

/* A host name must fit ADDR_HOST_MAX with its NUL. */
static void
test_addr_host_length(void **state)
{
	struct addr	 a;
	char		 text[ADDR_HOST_MAX + 16], want[ADDR_HOST_MAX + 80];
	char		*cause = NULL;

	(void)state;
	memset(text, 'h', ADDR_HOST_MAX - 1);
	memcpy(text + ADDR_HOST_MAX - 1, ":80", 4);
	assert_int_equal(addr_parse(text, "x", 0, &a, &cause), 0);
	assert_int_equal(strlen(a.host), ADDR_HOST_MAX - 1);

	memset(text, 'h', ADDR_HOST_MAX);
	memcpy(text + ADDR_HOST_MAX, ":80", 4);
	assert_int_equal(addr_parse(text, "x", 0, &a, &cause), -1);
	snprintf(want, sizeof want, "invalid address \"%s\": host is too "
	    "long", text);
	assert_string_equal(cause, want);
	free(cause);
}

/* A failed parse leaves *out untouched. */
static void
test_addr_failure_keeps_out(void **state)
{
	struct addr	 a, before;
	char		*cause = NULL;

	(void)state;
	memset(&a, 0x7f, sizeof a);
	before = a;
	assert_int_equal(addr_parse("host:99999", "x", 0, &a, &cause), -1);
	assert_memory_equal(&a, &before, sizeof a);
	free(cause);
}

/* addr_equal compares spelling; addr_is_ipv6 looks for literals. */
static void
test_addr_equal_ipv6(void **state)
{
	struct addr	 a, b, c, u;
	char		*cause = NULL;

	(void)state;
	assert_int_equal(addr_parse("4001", "127.0.0.1", 0, &a, &cause), 0);
	assert_int_equal(addr_parse("127.0.0.1:4001", "x", 0, &b, &cause), 0);
	assert_int_equal(addr_parse("[::1]:4001", "x", 0, &c, &cause), 0);
	assert_int_equal(addr_parse("unix:/s", "x", U, &u, &cause), 0);
	assert_true(addr_equal(&a, &b));
	assert_false(addr_equal(&a, &c));
	assert_false(addr_equal(&a, &u));
	assert_false(addr_is_ipv6(&a));
	assert_true(addr_is_ipv6(&c));
	assert_false(addr_is_ipv6(&u));
	b.port = 4002;
	assert_false(addr_equal(&a, &b));
}

/* addr_format truncates safely into a short buffer. */
static void
test_addr_format_short(void **state)
{
	struct addr	 a;
	char		 buf[6], *cause = NULL;

	(void)state;
	assert_int_equal(addr_parse("[::1]:4001", "x", 0, &a, &cause), 0);
	addr_format(&a, buf, sizeof buf);
	assert_string_equal(buf, "[::1]");
}

/* Run the tests. */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_table),
		cmocka_unit_test(test_addr_unix_length),
		cmocka_unit_test(test_addr_host_length),
		cmocka_unit_test(test_addr_failure_keeps_out),
		cmocka_unit_test(test_addr_equal_ipv6),
		cmocka_unit_test(test_addr_format_short),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
