/*
 * Unit tests for knownhosts.c: host names as ssh(1) looks them up,
 * pattern lists, hashed names (vectors made by ssh-keygen -H), markers,
 * skipped key types, and every way a line or a file can be refused,
 * hostile input included (long lines, NUL bytes, endless files, bad
 * base64, a key blob of another type than its line says).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "base64.h"
#include "knownhosts.h"
#include "util.h"

/* tests/unit/data/keys/ed25519.pub and ecdsa.pub, type and base64. */
#define ED25519_B64 "AAAAC3NzaC1lZDI1NTE5AAAAIMjt+qbhbNsrxH/iyxHtr1kUTQekuwV" \
	"ZyWL5cvgbR1px"
#define ED25519 "ssh-ed25519 " ED25519_B64
#define ECDSA_B64 "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBC9V" \
	"JPsM5rr6A4HJ9l6082CbODVovCie22oRPIrrbjsulQliC69XHVjJ5jKDyktZz2eFo1nPr" \
	"M3uxVOmS/d9gNk="
#define ECDSA "ecdsa-sha2-nistp256 " ECDSA_B64

/* ssh-keygen -H of "[127.0.0.1]:2222 ..." and "server.example ...". */
#define HASHED_PORT "|1|u7CSES1GUvv8SBgPspNZ1PIfGBg=|aIDbMN6HtPCdr56WTPyA0o" \
	"7V0xg="
#define HASHED_NAME "|1|HRNGmHq8GosNZmewnnh8Br+LiRQ=|/NgeGuRX1i6fhcK8VYX9VC" \
	"lTSC0="

/* Parse text as file "kh" for name; the return code of knownhosts_read. */
static int
kh_parse(const char *text, const char *name, struct knownhosts *kh,
    char **cause)
{
	FILE	*fp;
	int	 rc;

	*cause = NULL;
	/* fmemopen of an empty buffer is an error: use a 1-byte "\n". */
	fp = fmemopen((void *)(*text != '\0' ? text : "\n"),
	    *text != '\0' ? strlen(text) : 1, "r");
	assert_non_null(fp);
	rc = knownhosts_read(fp, "kh", name, kh, cause);
	fclose(fp);
	return rc;
}

/* A random-looking SSH blob: string type, then string payload. */
static char *
kh_blob_b64(const char *type, const char *payload)
{
	struct buf	 b;
	uint32_t	 n;
	unsigned char	 len[4];
	char		*s;

	buf_init(&b);
	n = (uint32_t)strlen(type);
	len[0] = n >> 24; len[1] = n >> 16; len[2] = n >> 8; len[3] = n;
	buf_append(&b, len, 4);
	buf_append(&b, type, n);
	n = (uint32_t)strlen(payload);
	len[0] = n >> 24; len[1] = n >> 16; len[2] = n >> 8; len[3] = n;
	buf_append(&b, len, 4);
	buf_append(&b, payload, n);
	s = base64_encode(buf_data(&b), b.len, 1);
	buf_clear(&b);
	return s;
}

/* The name ssh(1) looks up: bare on port 22, bracketed otherwise. */
static void
test_knownhosts_name(void **state)
{
	static const struct {
		const char	*host;
		int		 port;
		const char	*want;
	} cases[] = {
		{ "vps.example", 22, "vps.example" },
		{ "vps.example", 2222, "[vps.example]:2222" },
		{ "VPS.Example", 22, "vps.example" },
		{ "127.0.0.1", 2200, "[127.0.0.1]:2200" },
		{ "::1", 22, "::1" },
		{ "::1", 2222, "[::1]:2222" },
	};
	char	*s;
	size_t	 i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		s = knownhosts_name(cases[i].host, cases[i].port);
		assert_string_equal(s, cases[i].want);
		free(s);
	}
}

/* Pattern lists: wildcards, case, negation, and hostile patterns. */
static void
test_knownhosts_match_list(void **state)
{
	static const struct {
		const char	*name;
		const char	*list;
		int		 want;
	} cases[] = {
		{ "a.example", "a.example", 1 },
		{ "a.example", "b.example", 0 },
		{ "a.example", "b.example,a.example", 1 },
		{ "a.example", "A.EXAMPLE", 1 },
		{ "a.example", "*.example", 1 },
		{ "a.example", "?.example", 1 },
		{ "ab.example", "?.example", 0 },
		{ "a.example", "*", 1 },
		{ "a.example", "a.exampl", 0 },
		{ "a.example", "a.example.org", 0 },
		{ "a.example", "a*e", 1 },
		{ "a.example", "**", 1 },
		{ "a.example", "", 0 },
		{ "a.example", ",", 0 },
		/* A matching negation excludes the line, whatever else. */
		{ "a.example", "*,!a.example", -1 },
		{ "a.example", "!a.example,*", -1 },
		{ "a.example", "!*.example", -1 },
		{ "b.example", "*.example,!a.example", 1 },
		/* Negation alone matches nothing. */
		{ "b.example", "!a.example", 0 },
		{ "[127.0.0.1]:2222", "[127.0.0.*]:2222", 1 },
		{ "[127.0.0.1]:2222", "[127.0.0.1]:*", 1 },
		{ "[127.0.0.1]:2222", "[127.0.0.1]:22", 0 },
		{ "[127.0.0.1]:2222", "127.0.0.1", 0 },
		{ "[127.0.0.1]:2222", "[127.0.0.?]:2222,![127.0.0.1]:2222",
		  -1 },
		/* Backtracking stays linear: this would explode recursively. */
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		  "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", 0 },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
		  "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", 1 },
	};
	size_t	i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		if (knownhosts_match_list(cases[i].name, cases[i].list,
		    strlen(cases[i].list)) != cases[i].want)
			fail_msg("case %zu: \"%s\" against \"%s\" is not %d",
			    i, cases[i].name, cases[i].list, cases[i].want);
	}
	/* Only listlen bytes count: "a.example" of "a.exampleXXX". */
	assert_int_equal(knownhosts_match_list("a.example", "a.exampleXXX",
	    9), 1);
}

/* The type inside a blob, only for the supported ones. */
static void
test_knownhosts_blob_type(void **state)
{
	unsigned char	*blob;
	size_t		 len;
	char		*b64;

	(void)state;
	assert_int_equal(base64_decode(ED25519_B64, &blob, &len), 0);
	assert_string_equal(knownhosts_blob_type(blob, len), "ssh-ed25519");
	/* Truncated: the name's length says more than there is. */
	assert_null(knownhosts_blob_type(blob, 10));
	assert_null(knownhosts_blob_type(blob, 3));
	assert_null(knownhosts_blob_type(blob, 0));
	free(blob);
	b64 = kh_blob_b64("ssh-dss", "x");
	assert_int_equal(base64_decode(b64, &blob, &len), 0);
	assert_null(knownhosts_blob_type(blob, len));
	free(blob);
	free(b64);
	b64 = kh_blob_b64("ssh-rsa", "x");
	assert_int_equal(base64_decode(b64, &blob, &len), 0);
	assert_string_equal(knownhosts_blob_type(blob, len), "ssh-rsa");
	free(blob);
	free(b64);
}

/* Plain lines: comments, blank lines, tabs, CRLF, no final newline. */
static void
test_knownhosts_plain(void **state)
{
	static const char text[] =
	    "# a comment\n"
	    "\n"
	    "   \t\n"
	    "  # indented comment\n"
	    "[127.0.0.1]:2222 " ED25519 " comment words\n"	/* 5 */
	    "other.example " ED25519 "\n"
	    "127.0.0.1 " ECDSA "\n"				/* port 22 */
	    "[127.0.0.1]:2222\t" ECDSA "\r\n"			/* 8 */
	    "x.example,[127.0.0.1]:2222 " ED25519;		/* 9 */
	struct knownhosts	 kh;
	unsigned char		*blob;
	size_t			 len;
	char			*cause;

	(void)state;
	assert_int_equal(kh_parse(text, "[127.0.0.1]:2222", &kh, &cause), 0);
	assert_null(cause);
	assert_int_equal(kh.n, 3);
	assert_int_equal(kh.v[0].line, 5);
	assert_int_equal(kh.v[0].marker, KNOWNHOSTS_PLAIN);
	assert_string_equal(kh.v[0].type, "ssh-ed25519");
	assert_int_equal(base64_decode(ED25519_B64, &blob, &len), 0);
	assert_int_equal(kh.v[0].bloblen, len);
	assert_memory_equal(kh.v[0].blob, blob, len);
	free(blob);
	assert_int_equal(kh.v[1].line, 8);
	assert_string_equal(kh.v[1].type, "ecdsa-sha2-nistp256");
	assert_int_equal(base64_decode(ECDSA_B64, &blob, &len), 0);
	assert_int_equal(kh.v[1].bloblen, len);
	assert_memory_equal(kh.v[1].blob, blob, len);
	free(blob);
	assert_int_equal(kh.v[2].line, 9);
	knownhosts_clear(&kh);
	assert_int_equal(kh.n, 0);

	/* Port 22: the bare name only. */
	assert_int_equal(kh_parse(text, "127.0.0.1", &kh, &cause), 0);
	assert_int_equal(kh.n, 1);
	assert_int_equal(kh.v[0].line, 7);
	knownhosts_clear(&kh);

	/* No entry at all is not an error. */
	assert_int_equal(kh_parse(text, "nowhere.example", &kh, &cause), 0);
	assert_int_equal(kh.n, 0);
	knownhosts_clear(&kh);
	assert_int_equal(kh_parse("", "x", &kh, &cause), 0);
	assert_int_equal(kh.n, 0);
	knownhosts_clear(&kh);
}

/* Markers are kept with their entries; a negation excludes the line. */
static void
test_knownhosts_markers(void **state)
{
	static const char text[] =
	    "@revoked [127.0.0.1]:2222 " ED25519 "\n"
	    "[127.0.0.1]:2222 " ED25519 "\n"
	    "@cert-authority *.example,[127.0.0.*]:* " ECDSA "\n"
	    "@revoked\t*,![127.0.0.1]:2222 " ECDSA "\n"
	    "* " ECDSA "\n"
	    "*,![127.0.0.1]:2222 " ECDSA "\n";
	struct knownhosts	kh;
	char			*cause;

	(void)state;
	assert_int_equal(kh_parse(text, "[127.0.0.1]:2222", &kh, &cause), 0);
	assert_int_equal(kh.n, 4);
	assert_int_equal(kh.v[0].marker, KNOWNHOSTS_REVOKED);
	assert_int_equal(kh.v[0].line, 1);
	assert_int_equal(kh.v[1].marker, KNOWNHOSTS_PLAIN);
	assert_int_equal(kh.v[2].marker, KNOWNHOSTS_CERT_AUTHORITY);
	assert_string_equal(kh.v[2].type, "ecdsa-sha2-nistp256");
	assert_int_equal(kh.v[3].marker, KNOWNHOSTS_PLAIN);
	assert_int_equal(kh.v[3].line, 5);
	knownhosts_clear(&kh);

	/* Another host: the negations do not apply to it. */
	assert_int_equal(kh_parse(text, "[127.0.0.1]:2200", &kh, &cause), 0);
	assert_int_equal(kh.n, 4);
	assert_int_equal(kh.v[0].marker, KNOWNHOSTS_CERT_AUTHORITY);
	assert_int_equal(kh.v[1].marker, KNOWNHOSTS_REVOKED);
	assert_int_equal(kh.v[1].line, 4);
	assert_int_equal(kh.v[2].line, 5);
	assert_int_equal(kh.v[3].line, 6);
	knownhosts_clear(&kh);
}

/* Hashed names match exactly the name they were made from. */
static void
test_knownhosts_hashed(void **state)
{
	static const char text[] =
	    HASHED_PORT " " ED25519 "\n"
	    HASHED_NAME " " ECDSA "\n";
	struct knownhosts	kh;
	char			*cause;

	(void)state;
	assert_int_equal(kh_parse(text, "[127.0.0.1]:2222", &kh, &cause), 0);
	assert_int_equal(kh.n, 1);
	assert_int_equal(kh.v[0].line, 1);
	knownhosts_clear(&kh);
	assert_int_equal(kh_parse(text, "server.example", &kh, &cause), 0);
	assert_int_equal(kh.n, 1);
	assert_int_equal(kh.v[0].line, 2);
	assert_string_equal(kh.v[0].type, "ecdsa-sha2-nistp256");
	knownhosts_clear(&kh);
	/* Not a pattern: neither a prefix nor another port. */
	assert_int_equal(kh_parse(text, "[127.0.0.1]:2223", &kh, &cause), 0);
	assert_int_equal(kh.n, 0);
	assert_int_equal(kh_parse(text, "server", &kh, &cause), 0);
	assert_int_equal(kh.n, 0);
	knownhosts_clear(&kh);
}

/* Types we do not handle are skipped, not errors. */
static void
test_knownhosts_skipped_types(void **state)
{
	static const char text[] =
	    "h ssh-dss AAAAB3NzaC1kc3MAAACBAP\n"
	    "h sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5\n"
	    "h ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQ\n"
	    "h rsa-sha2-512 AAAA\n"
	    "h 2048 35 1234567890123456789\n"		/* SSH1 */
	    "@revoked h ssh-dss AAAA\n"
	    "h " ED25519 "\n";
	struct knownhosts	kh;
	char			*cause;

	(void)state;
	assert_int_equal(kh_parse(text, "h", &kh, &cause), 0);
	assert_int_equal(kh.n, 1);
	assert_int_equal(kh.v[0].line, 7);
	knownhosts_clear(&kh);
}

/* Every malformed line is refused with "FILE:LINE: message". */
static void
test_knownhosts_bad_lines(void **state)
{
	static const struct {
		const char	*text;
		const char	*want;
	} cases[] = {
		{ "@revokd h " ED25519 "\n",
		  "kh:1: unknown marker \"@revokd\" (known: @revoked, "
		  "@cert-authority)" },
		{ "@REVOKED h " ED25519 "\n",
		  "kh:1: unknown marker \"@REVOKED\" (known: @revoked, "
		  "@cert-authority)" },
		/* Control characters and length are tamed in messages. */
		{ "@\x1b[2Jxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx "
		  "h " ED25519 "\n",
		  "kh:1: unknown marker \"@?[2Jxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		  "xxxx...\" (known: @revoked, @cert-authority)" },
		{ "# ok\n@revoked\n", "kh:2: no host names after the marker" },
		{ "@cert-authority   \n",
		  "kh:1: no host names after the marker" },
		{ "h\n", "kh:1: expected \"HOSTS TYPE KEY\", found only the "
		  "host names" },
		{ "h ssh-ed25519\n", "kh:1: no key after \"ssh-ed25519\"" },
		{ "h ssh-rsa   \r\n", "kh:1: no key after \"ssh-rsa\"" },
		{ "h ssh-ed25519 AAAA*AAA\n",
		  "kh:1: the ssh-ed25519 key is not valid base64" },
		{ "h ssh-ed25519 A\n",
		  "kh:1: the ssh-ed25519 key is not valid base64" },
		{ "h ssh-ed25519 AAAA=AAA\n",
		  "kh:1: the ssh-ed25519 key is not valid base64" },
		/* The blob says ssh-ed25519, the line ssh-rsa. */
		{ "h ssh-rsa " ED25519_B64 "\n",
		  "kh:1: the key data is not a ssh-rsa key" },
		{ "h ecdsa-sha2-nistp384 " ECDSA_B64 "\n",
		  "kh:1: the key data is not a ecdsa-sha2-nistp384 key" },
		/* Too short to hold its own type name. */
		{ "h ssh-ed25519 AAAAC3NzaC1l\n",
		  "kh:1: the key data is not a ssh-ed25519 key" },
		{ "h ssh-ed25519 AAAA\n",
		  "kh:1: the key data is not a ssh-ed25519 key" },
		/* Bad lines for other hosts count too: no half files. */
		{ "h " ED25519 "\nother.example ssh-ed25519 AAAA*AAA\n",
		  "kh:2: the ssh-ed25519 key is not valid base64" },
		{ "|2|u7CSES1GUvv8SBgPspNZ1PIfGBg=|aIDbMN6HtPCdr56WTPyA0o7V0xg= "
		  ED25519 "\n",
		  "kh:1: hashed host name of an unknown kind (only \"|1|\" is "
		  "known)" },
		{ "|1|c2hvcnQ=|aIDbMN6HtPCdr56WTPyA0o7V0xg= " ED25519 "\n",
		  "kh:1: malformed hashed host name (expected "
		  "\"|1|SALT|HASH\", both 20 bytes in base64)" },
		{ "|1|u7CSES1GUvv8SBgPspNZ1PIfGBg= " ED25519 "\n",
		  "kh:1: malformed hashed host name (expected "
		  "\"|1|SALT|HASH\", both 20 bytes in base64)" },
		{ "|1|u7CSES1GUvv8SBgPspNZ1PIfGBg=|*** " ED25519 "\n",
		  "kh:1: malformed hashed host name (expected "
		  "\"|1|SALT|HASH\", both 20 bytes in base64)" },
		{ "| " ED25519 "\n",
		  "kh:1: hashed host name of an unknown kind (only \"|1|\" is "
		  "known)" },
	};
	struct knownhosts	kh;
	char			*cause;
	size_t			i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		if (kh_parse(cases[i].text, "h", &kh, &cause) != -1)
			fail_msg("case %zu accepted: %s", i, cases[i].text);
		assert_non_null(cause);
		if (strcmp(cause, cases[i].want) != 0)
			fail_msg("case %zu:\n want %s\n got  %s", i,
			    cases[i].want, cause);
		/* Nothing is handed out from a refused file. */
		assert_int_equal(kh.n, 0);
		assert_null(kh.v);
		free(cause);
	}
}

/* A line over the limit, a NUL byte: refused at their line. */
static void
test_knownhosts_hostile_lines(void **state)
{
	static const char	 head[] = "h " ED25519 "\n#";
	struct knownhosts	 kh;
	char			*text, *cause, *b64, *payload;
	size_t			 n = KNOWNHOSTS_LINE_MAX, hl = strlen(head);

	(void)state;
	/* Exactly the limit is fine (a long comment on line 2)... */
	text = xmalloc(hl + n + 8);
	memcpy(text, head, hl);
	memset(text + hl, 'x', n - 1);
	memcpy(text + hl + n - 1, "\n", 2);
	assert_int_equal(kh_parse(text, "h", &kh, &cause), 0);
	assert_int_equal(kh.n, 1);
	knownhosts_clear(&kh);
	/* ...one byte more is not, whatever the line holds. */
	memcpy(text + hl + n - 1, "x\n", 3);
	assert_int_equal(kh_parse(text, "h", &kh, &cause), -1);
	assert_string_equal(cause, "kh:2: line longer than 16384 bytes");
	assert_int_equal(kh.n, 0);
	free(cause);
	free(text);

	/* A huge key: refused by the line limit before any decoding. */
	payload = xmalloc(KNOWNHOSTS_LINE_MAX + 1);
	memset(payload, 'k', KNOWNHOSTS_LINE_MAX);
	payload[KNOWNHOSTS_LINE_MAX] = '\0';
	b64 = kh_blob_b64("ssh-rsa", payload);
	text = xasprintf("h ssh-rsa %s\n", b64);
	assert_int_equal(kh_parse(text, "h", &kh, &cause), -1);
	assert_string_equal(cause, "kh:1: line longer than 16384 bytes");
	free(cause);
	free(text);
	free(b64);
	free(payload);

	/* An RSA-sized key well within the limit is fine. */
	payload = xmalloc(1025);
	memset(payload, 'k', 1024);
	payload[1024] = '\0';
	b64 = kh_blob_b64("ssh-rsa", payload);
	text = xasprintf("h ssh-rsa %s\n", b64);
	assert_int_equal(kh_parse(text, "h", &kh, &cause), 0);
	assert_int_equal(kh.n, 1);
	assert_string_equal(kh.v[0].type, "ssh-rsa");
	assert_int_equal(kh.v[0].bloblen, 4 + 7 + 4 + 1024);
	knownhosts_clear(&kh);
	free(text);
	free(b64);
	free(payload);

	/* A NUL byte would hide the rest of the line from C strings. */
	{
		static const char nul[] = "h " ED25519 "\n@revoked\0 h x\n";
		FILE	*fp = fmemopen((void *)nul, sizeof nul - 1, "r");

		assert_non_null(fp);
		assert_int_equal(knownhosts_read(fp, "kh", "h", &kh, &cause),
		    -1);
		fclose(fp);
		assert_string_equal(cause, "kh:2: NUL byte in the line");
		free(cause);
	}
}

/* A stream of endless comment lines, for the file size limit. */
static ssize_t
kh_endless_read(void *cookie, char *buf, size_t size)
{
	static const char line[] = "# comment\n";
	size_t	i;

	(void)cookie;
	for (i = 0; i < size; i++)
		buf[i] = line[i % (sizeof line - 1)];
	/* Whole lines per call: size is a multiple of the line or not. */
	return (ssize_t)(size - size % (sizeof line - 1));
}

/* An endless (or huge) file is refused, memory stays bounded. */
static void
test_knownhosts_huge_file(void **state)
{
	cookie_io_functions_t	 io = { kh_endless_read, NULL, NULL, NULL };
	struct knownhosts	 kh;
	FILE			*fp;
	char			*cause, *want;

	(void)state;
	fp = fopencookie(NULL, "r", io);
	assert_non_null(fp);
	assert_int_equal(knownhosts_read(fp, "kh", "h", &kh, &cause), -1);
	fclose(fp);
	/* 10 bytes a line: the byte past the limit is on this line. */
	want = xasprintf("kh:%d: the file is larger than %d bytes",
	    KNOWNHOSTS_FILE_MAX / 10 + 1, KNOWNHOSTS_FILE_MAX);
	assert_string_equal(cause, want);
	free(want);
	free(cause);
}

/* Files: missing, a directory, a FIFO (never waited on), a real one. */
static void
test_knownhosts_load(void **state)
{
	struct knownhosts	 kh;
	char			 dir[] = "/tmp/test_knownhosts.XXXXXX";
	char			*path, *cause, *want;
	FILE			*fp;

	(void)state;
	assert_non_null(mkdtemp(dir));
	path = xasprintf("%s/none", dir);
	assert_int_equal(knownhosts_load(path, "h", &kh, &cause), -1);
	want = xasprintf("cannot read known_hosts \"%s\": No such file or "
	    "directory", path);
	assert_string_equal(cause, want);
	free(want);
	free(cause);
	free(path);

	assert_int_equal(knownhosts_load(dir, "h", &kh, &cause), -1);
	want = xasprintf("known_hosts \"%s\" is not a regular file", dir);
	assert_string_equal(cause, want);
	free(want);
	free(cause);

	path = xasprintf("%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(knownhosts_load(path, "h", &kh, &cause), -1);
	want = xasprintf("known_hosts \"%s\" is not a regular file", path);
	assert_string_equal(cause, want);
	free(want);
	free(cause);
	unlink(path);
	free(path);

	path = xasprintf("%s/known_hosts", dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp, "h %s\nh ssh-ed25519 AAAA*\n", ED25519);
	fclose(fp);
	assert_int_equal(knownhosts_load(path, "h", &kh, &cause), -1);
	want = xasprintf("%s:2: the ssh-ed25519 key is not valid base64",
	    path);
	assert_string_equal(cause, want);
	free(want);
	free(cause);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp, "h %s\n", ED25519);
	fclose(fp);
	assert_int_equal(knownhosts_load(path, "h", &kh, &cause), 0);
	assert_int_equal(kh.n, 1);
	knownhosts_clear(&kh);
	unlink(path);
	free(path);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_knownhosts_name),
		cmocka_unit_test(test_knownhosts_match_list),
		cmocka_unit_test(test_knownhosts_blob_type),
		cmocka_unit_test(test_knownhosts_plain),
		cmocka_unit_test(test_knownhosts_markers),
		cmocka_unit_test(test_knownhosts_hashed),
		cmocka_unit_test(test_knownhosts_skipped_types),
		cmocka_unit_test(test_knownhosts_bad_lines),
		cmocka_unit_test(test_knownhosts_hostile_lines),
		cmocka_unit_test(test_knownhosts_huge_file),
		cmocka_unit_test(test_knownhosts_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
