/*
 * Unit tests for kexinit.c and algos.c: the server's cleartext hello is
 * parsed whatever way it is split, hostile lengths and endless text stop
 * the parser without unbounded memory, and a KEXINIT with nothing in
 * common is explained by kind with both sides' lists.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "algos.h"
#include "kexinit.h"
#include "util.h"

/* Append a big-endian uint32. */
static void
put_u32(struct buf *b, uint32_t v)
{
	unsigned char	p[4] = { v >> 24, v >> 16, v >> 8, v };

	buf_append(b, p, 4);
}

/* A server hello: optional text lines, banner, KEXINIT with the lists. */
static void
hello(struct buf *b, const char *pre, const char *const lists[10])
{
	struct buf	payload;
	unsigned char	cookie[16] = { 0 };
	size_t		padlen = 4, i;
	uint8_t		msg = 20;

	buf_init(b);
	if (pre != NULL)
		buf_printf(b, "%s\r\n", pre);
	buf_printf(b, "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n");
	buf_init(&payload);
	buf_append(&payload, &msg, 1);
	buf_append(&payload, cookie, 16);
	for (i = 0; i < 10; i++) {
		put_u32(&payload, (uint32_t)strlen(lists[i]));
		buf_append(&payload, lists[i], strlen(lists[i]));
	}
	buf_append(&payload, "\0\0\0\0\0", 5);	/* follows + reserved */
	put_u32(b, (uint32_t)(1 + payload.len + padlen));
	buf_append(b, (uint8_t[]){ (uint8_t)padlen }, 1);
	buf_append(b, buf_data(&payload), payload.len);
	buf_append(b, "\0\0\0\0", padlen);
	buf_clear(&payload);
}

static const char *const hardened[10] = {
	"sntrup761x25519-sha512@openssh.com", "ssh-ed25519",
	"chacha20-poly1305@openssh.com", "chacha20-poly1305@openssh.com",
	"hmac-sha2-512-etm@openssh.com", "hmac-sha2-512-etm@openssh.com",
	"none", "none", "", ""
};

/* Parsed in one piece and byte by byte alike. */
static void
test_kexinit_split(void **state)
{
	struct kexinit	k;
	struct buf	b;
	size_t		i;
	const char	*data;

	(void)state;
	hello(&b, "Welcome", hardened);
	data = buf_data(&b);
	kexinit_init(&k);
	assert_int_equal(kexinit_feed(&k, data, b.len), KEXINIT_DONE);
	assert_string_equal(k.banner, "SSH-2.0-OpenSSH_9.2p1 Debian-2");
	assert_string_equal(k.pre_banner, "Welcome");
	assert_string_equal(k.lists[KEXINIT_KEX],
	    "sntrup761x25519-sha512@openssh.com");
	assert_string_equal(k.lists[KEXINIT_MAC_SC],
	    "hmac-sha2-512-etm@openssh.com");
	assert_string_equal(k.lists[KEXINIT_LANG_SC], "");
	kexinit_clear(&k);
	for (i = 0; i < b.len; i++)
		(void)kexinit_feed(&k, data + i, 1);
	assert_int_equal(k.state, KEXINIT_DONE);
	assert_string_equal(k.lists[KEXINIT_HOSTKEY], "ssh-ed25519");
	assert_string_equal(k.pre_banner, "Welcome");
	/* Later bytes (encrypted) are ignored. */
	assert_int_equal(kexinit_feed(&k, "junk", 4), KEXINIT_DONE);
	kexinit_clear(&k);
	buf_clear(&b);
}

/* Hostile input: endless text, huge or inconsistent lengths, escapes. */
static void
test_kexinit_hostile(void **state)
{
	struct kexinit	k;
	struct buf	b;
	char		line[2048];
	int		i;

	(void)state;
	/* A line without end. */
	kexinit_init(&k);
	memset(line, 'a', sizeof line);
	assert_int_equal(kexinit_feed(&k, line, sizeof line), KEXINIT_INVALID);
	assert_int_equal(k.in.len, 0);
	kexinit_clear(&k);
	/*
	 * The same line with its end in the same read (a fuzzer finding:
	 * the verdict depended on how the reads split the bytes).
	 */
	kexinit_init(&k);
	line[sizeof line - 1] = '\n';
	assert_int_equal(kexinit_feed(&k, line, sizeof line), KEXINIT_INVALID);
	kexinit_clear(&k);
	/* A complete hello followed by more than the cap in one read. */
	hello(&b, NULL, hardened);
	for (i = 0; i < 70; i++)
		buf_append(&b, line, 1024);
	kexinit_init(&k);
	assert_int_equal(kexinit_feed(&k, buf_data(&b), b.len), KEXINIT_DONE);
	assert_string_equal(k.lists[KEXINIT_KEX], hardened[0]);
	kexinit_clear(&k);
	buf_clear(&b);
	/* Endless short lines: stops at the byte cap. */
	kexinit_init(&k);
	for (i = 0; i < 20000 && k.state == KEXINIT_BANNER; i++)
		(void)kexinit_feed(&k, "spam\r\n", 6);
	assert_int_equal(k.state, KEXINIT_INVALID);
	assert_string_equal(k.pre_banner, "spam");
	kexinit_clear(&k);
	/* Terminal escapes in the text are made harmless. */
	kexinit_init(&k);
	(void)kexinit_feed(&k, "\x1b[31mred\x07\r\nSSH-2.0-x\r\n",
	    strlen("\x1b[31mred\x07\r\nSSH-2.0-x\r\n"));
	assert_string_equal(k.pre_banner, "?[31mred?");
	assert_int_equal(k.state, KEXINIT_PACKET);
	/* A packet length over the protocol's maximum. */
	assert_int_equal(kexinit_feed(&k, "\xff\xff\xff\xff\x04", 5),
	    KEXINIT_INVALID);
	kexinit_clear(&k);
	/* A name-list longer than the packet. */
	kexinit_init(&k);
	buf_init(&b);
	buf_printf(&b, "SSH-2.0-x\r\n");
	put_u32(&b, 30);
	buf_append(&b, "\x04\x14", 2);
	buf_append(&b, "0123456789abcdef", 16);
	put_u32(&b, 1000);
	buf_append(&b, "abcdefghi", 9);
	assert_int_equal(kexinit_feed(&k, buf_data(&b), b.len),
	    KEXINIT_INVALID);
	kexinit_clear(&k);
	buf_clear(&b);
	/* Not a KEXINIT. */
	kexinit_init(&k);
	buf_init(&b);
	buf_printf(&b, "SSH-2.0-x\r\n");
	put_u32(&b, 8);
	buf_append(&b, "\x04\x15\x00\x00\x00\x00\x00\x00", 8);
	assert_int_equal(kexinit_feed(&k, buf_data(&b), b.len),
	    KEXINIT_INVALID);
	kexinit_clear(&k);
	buf_clear(&b);
}

/* Nothing in common is explained by kind, in the order SSH agrees. */
static void
test_algos_mismatch(void **state)
{
	static const char *const ok[10] = {
		"curve25519-sha256", "ssh-ed25519",
		"aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com",
		"umac-128-etm@openssh.com", "hmac-sha2-512-etm@openssh.com",
		"none", "none", "", ""
	};
	static const char *const nomac[10] = {
		"curve25519-sha256", "ssh-ed25519", "aes256-ctr", "aes256-ctr",
		"umac-128-etm@openssh.com", "umac-128-etm@openssh.com",
		"none", "none", "", ""
	};
	struct kexinit	k;
	struct buf	b;
	char		*why;

	(void)state;
	kexinit_init(&k);
	assert_null(algos_mismatch(&k, NULL));	/* nothing parsed */
	hello(&b, NULL, hardened);
	(void)kexinit_feed(&k, buf_data(&b), b.len);
	why = algos_mismatch(&k, NULL);
	assert_non_null(why);
	assert_non_null(strstr(why, "no common key exchange: the server "
	    "offers sntrup761x25519-sha512@openssh.com; tunnels has "
	    "curve25519-sha256,"));
	free(why);
	kexinit_clear(&k);
	buf_clear(&b);

	/* Host keys: the list actually offered is the one compared. */
	hello(&b, NULL, ok);
	(void)kexinit_feed(&k, buf_data(&b), b.len);
	assert_null(algos_mismatch(&k, NULL));
	why = algos_mismatch(&k, "rsa-sha2-512,rsa-sha2-256");
	assert_non_null(why);
	assert_non_null(strstr(why, "no common host key algorithm"));
	assert_non_null(strstr(why, "tunnels has rsa-sha2-512,rsa-sha2-256"));
	free(why);
	kexinit_clear(&k);
	buf_clear(&b);

	/* A MAC matters only where the cipher is not AEAD. */
	hello(&b, NULL, nomac);
	(void)kexinit_feed(&k, buf_data(&b), b.len);
	why = algos_mismatch(&k, NULL);
	assert_non_null(why);
	assert_non_null(strstr(why, "no common MAC (client to server): the "
	    "server offers umac-128-etm@openssh.com; tunnels has "
	    "hmac-sha2-256-etm@openssh.com,"));
	free(why);
	kexinit_clear(&k);
	buf_clear(&b);
}

/* Offers are strongest first; the weak ones are named as such. */
static void
test_algos_offer(void **state)
{
	(void)state;
	assert_int_equal(strncmp(algos_offer(ALGOS_CIPHER),
	    "chacha20-poly1305@openssh.com,", 30), 0);
	assert_int_equal(strncmp(algos_offer(ALGOS_MAC),
	    "hmac-sha2-256-etm@openssh.com,", 30), 0);
	assert_non_null(strstr(algos_offer(ALGOS_HOSTKEY),
	    "rsa-sha2-512,rsa-sha2-256,ssh-rsa"));
	assert_true(algos_weak("hmac-sha1"));
	assert_true(algos_weak("aes128-cbc"));
	assert_true(algos_weak("diffie-hellman-group14-sha1"));
	assert_false(algos_weak("aes256-gcm@openssh.com"));
	assert_false(algos_weak("curve25519-sha256"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kexinit_split),
		cmocka_unit_test(test_kexinit_hostile),
		cmocka_unit_test(test_algos_mismatch),
		cmocka_unit_test(test_algos_offer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
