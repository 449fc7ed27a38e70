/*
 * Unit tests for keyfile.c against keys made by ssh-keygen (fixtures in
 * tests/unit/data/keys) and hand-made broken files in a temp dir.
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

#include "keyfile.h"
#include "util.h"

/* Per-test state: a private temp dir for hand-made files. */
struct keyfile_test {
	char	dir[64];
};

/* Path of a fixture key: $TESTS_SRCDIR/unit/data/keys/name. */
static char *
keyfile_test_fixture(const char *name)
{
	const char	*src = getenv("TESTS_SRCDIR");

	return xasprintf("%s/unit/data/keys/%s", src != NULL ? src : "tests",
	    name);
}

/* The "TYPE BASE64" part of a fixture's .pub file (comment dropped). */
static char *
keyfile_test_pub(const char *name)
{
	char	*path, line[16384], *sp;
	FILE	*fp;

	path = keyfile_test_fixture(name);
	fp = fopen(path, "r");
	assert_non_null(fp);
	assert_non_null(fgets(line, sizeof line, fp));
	fclose(fp);
	free(path);
	sp = strchr(line, ' ');
	assert_non_null(sp);
	sp = strchr(sp + 1, ' ');
	assert_non_null(sp);
	*sp = '\0';
	return xstrdup(line);
}

/* Write a file with the given contents into the test's temp dir. */
static char *
keyfile_test_write(struct keyfile_test *t, const char *name,
    const char *data, size_t len)
{
	char	*path = xasprintf("%s/%s", t->dir, name);
	FILE	*fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	return path;
}

/* Create the temp dir. */
static int
keyfile_test_setup(void **state)
{
	struct keyfile_test	*t = xcalloc(1, sizeof *t);

	snprintf(t->dir, sizeof t->dir, "/tmp/test_keyfile.XXXXXX");
	if (mkdtemp(t->dir) == NULL) {
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

/* Remove the temp dir and what the test wrote into it. */
static int
keyfile_test_teardown(void **state)
{
	struct keyfile_test	*t = *state;
	const char		*names[] = { "garbage", "big", "damaged",
				    "short", "putty", "nokeys", "id.pub",
				    NULL };
	char			*path;
	size_t			 i;

	for (i = 0; names[i] != NULL; i++) {
		path = xasprintf("%s/%s", t->dir, names[i]);
		unlink(path);
		free(path);
	}
	rmdir(t->dir);
	free(t);
	return 0;
}

/* Inspect a fixture and check type, encryption and public line. */
static void
keyfile_test_expect(const char *name, enum keyfile_type type, int encrypted,
    const char *pubname)
{
	struct keyfile_info	 ki;
	char			*path, *cause = NULL, *pub;

	path = keyfile_test_fixture(name);
	if (keyfile_inspect(path, &ki, &cause) != 0)
		fail_msg("%s: %s", name, cause);
	assert_null(cause);
	assert_int_equal(ki.type, type);
	assert_int_equal(ki.encrypted, encrypted);
	if (pubname == NULL)
		assert_null(ki.public_line);
	else {
		pub = keyfile_test_pub(pubname);
		assert_non_null(ki.public_line);
		assert_string_equal(ki.public_line, pub);
		free(pub);
	}
	keyfile_info_clear(&ki);
	assert_null(ki.public_line);
	free(path);
}

/* OpenSSH-format keys: type, encryption and the .pub line. */
static void
test_keyfile_openssh(void **state)
{
	(void)state;
	keyfile_test_expect("ed25519", KEYFILE_ED25519, 0, "ed25519.pub");
	keyfile_test_expect("ed25519_enc", KEYFILE_ED25519, 1,
	    "ed25519_enc.pub");
	keyfile_test_expect("ecdsa", KEYFILE_ECDSA, 0, "ecdsa.pub");
	keyfile_test_expect("rsa", KEYFILE_RSA, 0, "rsa.pub");
	keyfile_test_expect("dsa", KEYFILE_DSA, 0, "dsa.pub");
}

/* PEM keys: type from the BEGIN line, encryption from Proc-Type. */
static void
test_keyfile_pem(void **state)
{
	(void)state;
	keyfile_test_expect("rsa_pem", KEYFILE_RSA, 0, NULL);
	keyfile_test_expect("rsa_pem_enc", KEYFILE_RSA, 1, NULL);
	keyfile_test_expect("ecdsa_pem", KEYFILE_ECDSA, 0, NULL);
	keyfile_test_expect("pkcs8", KEYFILE_UNKNOWN, 0, NULL);
}

/* Inspect a hand-made file and expect exactly this error. */
static void
keyfile_test_error(struct keyfile_test *t, const char *name,
    const char *data, size_t len, const char *fmt)
{
	struct keyfile_info	 ki;
	char			*path, *want, *cause = NULL;

	path = keyfile_test_write(t, name, data, len);
	want = xasprintf(fmt, path);
	assert_int_equal(keyfile_inspect(path, &ki, &cause), -1);
	assert_non_null(cause);
	assert_string_equal(cause, want);
	assert_null(ki.public_line);
	free(cause);
	free(want);
	free(path);
}

/* Files that are not usable private keys, each with its message. */
static void
test_keyfile_errors(void **state)
{
	struct keyfile_test	*t = *state;
	struct keyfile_info	 ki;
	char			*big, *path, *want, *cause = NULL;
	static const char	 garbage[] = "hello\x01\x02 world\n";
	static const char	 damaged[] =
	    "-----BEGIN OPENSSH PRIVATE KEY-----\n!!!!\n"
	    "-----END OPENSSH PRIVATE KEY-----\n";
	/* "openssh-key-v1\0" and nothing after it. */
	static const char	 shortkey[] =
	    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n"
	    "-----END OPENSSH PRIVATE KEY-----\n";
	/* Header with cipher/kdf "none", empty kdfoptions and nkeys 0. */
	static const char	 nokeys[] =
	    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
	    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAA\n"
	    "-----END OPENSSH PRIVATE KEY-----\n";

	keyfile_test_error(t, "garbage", garbage, sizeof garbage - 1,
	    "\"%s\" is not an SSH private key");
	keyfile_test_error(t, "garbage", "", 0,
	    "\"%s\" is not an SSH private key");
	keyfile_test_error(t, "garbage", "-----BEGIN CERTIFICATE-----\n", 28,
	    "\"%s\" is not an SSH private key");
	keyfile_test_error(t, "damaged", damaged, sizeof damaged - 1,
	    "\"%s\" is a damaged OpenSSH private key (invalid base64)");
	keyfile_test_error(t, "damaged", damaged, 40,
	    "\"%s\" is a damaged OpenSSH private key (no END line)");
	keyfile_test_error(t, "short", shortkey, sizeof shortkey - 1,
	    "\"%s\" is a damaged OpenSSH private key (truncated header)");
	keyfile_test_error(t, "nokeys", nokeys, sizeof nokeys - 1,
	    "\"%s\" is a damaged OpenSSH private key (no keys)");
	keyfile_test_error(t, "id.pub", "ssh-ed25519 AAAAC3Nz test\n", 25,
	    "\"%s\" is a public key; give the private key file (without "
	    ".pub)");
	keyfile_test_error(t, "putty", "PuTTY-User-Key-File-3: ssh-ed25519\n",
	    35, "\"%s\" is a PuTTY key; convert it with puttygen -O "
	    "private-openssh");

	big = xmalloc(64 * 1024 + 1);
	memset(big, 'A', 64 * 1024 + 1);
	keyfile_test_error(t, "big", big, 64 * 1024 + 1,
	    "\"%s\" is too large to be an SSH private key");
	free(big);

	path = xasprintf("%s/missing", t->dir);
	want = xasprintf("cannot read \"%s\": No such file or directory", path);
	assert_int_equal(keyfile_inspect(path, &ki, &cause), -1);
	assert_string_equal(cause, want);
	free(cause);
	free(want);
	free(path);

	want = xasprintf("\"%s\" is not a regular file", t->dir);
	assert_int_equal(keyfile_inspect(t->dir, &ki, &cause), -1);
	assert_string_equal(cause, want);
	free(cause);
	free(want);
}

/* Pinned host keys: accepted types, shape and blob/type agreement. */
static void
test_keyfile_check_public(void **state)
{
	static const struct {
		const char	*line;
		const char	*err;	/* NULL: must be accepted */
	} cases[] = {
		{ "ssh-foo AAAA", "key type \"ssh-foo\" is not supported (use "
		    "ssh-ed25519, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, "
		    "ecdsa-sha2-nistp521 or ssh-rsa)" },
		{ "ssh-dss AAAA", "key type \"ssh-dss\" is not supported (use "
		    "ssh-ed25519, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, "
		    "ecdsa-sha2-nistp521 or ssh-rsa)" },
		{ "ssh-ed25519", "expected \"TYPE BASE64\", e.g. \"ssh-ed25519 "
		    "AAAAC3NzaC1lZDI1NTE5AAAA...\"" },
		{ "ssh-ed25519 ", "expected \"TYPE BASE64\", e.g. "
		    "\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA...\"" },
		{ "", "expected \"TYPE BASE64\", e.g. \"ssh-ed25519 "
		    "AAAAC3NzaC1lZDI1NTE5AAAA...\"" },
		{ "proxy.example.com ssh-ed25519 AAAA", "expected \"TYPE "
		    "BASE64\": remove the host name \"proxy.example.com\" in "
		    "front" },
		/* Base64 without its type: the shape is what is wrong. */
		{ "AAAAC3NzaC1lZDI1NTE5", "expected \"TYPE BASE64\", e.g. "
		    "\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA...\"" },
		{ "ssh-ed25519 AAA", "the key is not valid base64" },
		{ "ssh-ed25519 AA!A", "the key is not valid base64" },
		{ "ssh-ed25519 A===", "the key is not valid base64" },
		/* "ssh-rsa" inside, "ssh-ed25519" outside. */
		{ "ssh-ed25519 AAAAB3NzaC1yc2E=", "the base64 data is not a "
		    "key of type ssh-ed25519" },
		{ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\tx", "the key is not valid "
		    "base64" },
		{ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", NULL },
		{ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 root@example", NULL },
		{ "ssh-ed25519  AAAAC3NzaC1lZDI1NTE5", NULL },
	};
	enum keyfile_type	 type;
	char			*cause, *pub;
	size_t			 i;
	const char		*pubs[] = { "ed25519.pub", "ecdsa.pub",
				    "rsa.pub" };
	enum keyfile_type	 types[] = { KEYFILE_ED25519, KEYFILE_ECDSA,
				    KEYFILE_RSA };

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cause = NULL;
		if (cases[i].err == NULL) {
			assert_int_equal(keyfile_check_public(cases[i].line,
			    NULL, &cause), 0);
			continue;
		}
		assert_int_equal(keyfile_check_public(cases[i].line, &type,
		    &cause), -1);
		assert_string_equal(cause, cases[i].err);
		free(cause);
	}
	for (i = 0; i < 3; i++) {
		pub = keyfile_test_pub(pubs[i]);
		assert_int_equal(keyfile_check_public(pub, &type, &cause), 0);
		assert_int_equal(type, types[i]);
		free(pub);
	}
}

/* Names used in messages. */
static void
test_keyfile_type_name(void **state)
{
	(void)state;
	assert_string_equal(keyfile_type_name(KEYFILE_ED25519), "ed25519");
	assert_string_equal(keyfile_type_name(KEYFILE_ECDSA), "ECDSA");
	assert_string_equal(keyfile_type_name(KEYFILE_RSA), "RSA");
	assert_string_equal(keyfile_type_name(KEYFILE_DSA), "DSA");
	assert_string_equal(keyfile_type_name(KEYFILE_UNKNOWN), "unknown");
}

/* Run the tests. */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keyfile_openssh),
		cmocka_unit_test(test_keyfile_pem),
		cmocka_unit_test_setup_teardown(test_keyfile_errors,
		    keyfile_test_setup, keyfile_test_teardown),
		cmocka_unit_test(test_keyfile_check_public),
		cmocka_unit_test(test_keyfile_type_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
