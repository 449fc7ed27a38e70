/*
 * Base64 (RFC 4648), standard alphabet. Used for host keys ("ssh-ed25519
 * AAAA..."), SHA256 fingerprints, which OpenSSH prints unpadded, and the
 * wrapped base64 bodies of private key files.
 */
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "util.h"

static const char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Encode n bytes of p as base64, with or without '=' padding. */
char *
base64_encode(const void *p, size_t n, int pad)
{
	const unsigned char	*s = p;
	char			*out = xmalloc((n + 2) / 3 * 4 + 1), *o = out;
	size_t			 i;
	unsigned		 v;

	for (i = 0; i + 2 < n; i += 3) {
		v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
		*o++ = base64_alphabet[v >> 18 & 63];
		*o++ = base64_alphabet[v >> 12 & 63];
		*o++ = base64_alphabet[v >> 6 & 63];
		*o++ = base64_alphabet[v & 63];
	}
	if (i < n) {
		v = (unsigned)s[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)s[i + 1] << 8;
		*o++ = base64_alphabet[v >> 18 & 63];
		*o++ = base64_alphabet[v >> 12 & 63];
		if (i + 1 < n)
			*o++ = base64_alphabet[v >> 6 & 63];
		else if (pad)
			*o++ = '=';
		if (pad)
			*o++ = '=';
	}
	*o = '\0';
	return out;
}

/* Value of one base64 digit, or -1. */
static int
base64_value(char c)
{
	const char	*p;

	if (c == '\0')
		return -1;
	p = strchr(base64_alphabet, c);
	return p == NULL ? -1 : (int)(p - base64_alphabet);
}

/* 1 for the ASCII white space a wrapped (PEM) body may contain. */
static int
base64_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' ||
	    c == '\f' || c == '\r';
}

/*
 * Decode s into a malloc'd buffer, skipping white space if ws. Padding
 * is optional, but may only complete the last quad ("Zg==", "Zm8="):
 * "Zm9v=" or "Zg===" would let two texts stand for one key, and a
 * pinned host key is compared as text. -1 on invalid input.
 */
static int
base64_decode_text(const char *s, int ws, unsigned char **out,
    size_t *outlen)
{
	size_t		 len = strlen(s), i, o = 0, digits = 0, pad = 0;
	unsigned char	*buf;
	unsigned	 acc = 0;
	int		 v;

	buf = xmalloc(len / 4 * 3 + 3);
	for (i = 0; i < len; i++) {
		if (ws && base64_is_space(s[i]))
			continue;
		if (s[i] == '=') {
			pad++;
			continue;
		}
		/* Only padding (and white space) may follow padding. */
		if (pad > 0 || (v = base64_value(s[i])) == -1)
			goto bad;
		acc = acc << 6 | (unsigned)v;
		if (++digits % 4 == 0) {
			buf[o++] = (unsigned char)(acc >> 16);
			buf[o++] = (unsigned char)(acc >> 8);
			buf[o++] = (unsigned char)acc;
			acc = 0;
		}
	}
	/* A partial quad of 2 or 3 digits holds 1 or 2 more bytes. */
	switch (digits % 4) {
	case 0:
		if (pad != 0)
			goto bad;
		break;
	case 2:
		if (pad > 2)
			goto bad;
		buf[o++] = (unsigned char)(acc >> 4);
		break;
	case 3:
		if (pad > 1)
			goto bad;
		buf[o++] = (unsigned char)(acc >> 10);
		buf[o++] = (unsigned char)(acc >> 2);
		break;
	default:
		goto bad;
	}
	*out = buf;
	*outlen = o;
	return 0;
bad:
	free(buf);
	return -1;
}

/* Decode base64 text (no white space) into a malloc'd buffer. */
int
base64_decode(const char *s, unsigned char **out, size_t *outlen)
{
	return base64_decode_text(s, 0, out, outlen);
}

/* Decode base64 text, skipping white space, into a malloc'd buffer. */
int
base64_decode_ws(const char *s, unsigned char **out, size_t *outlen)
{
	return base64_decode_text(s, 1, out, outlen);
}
