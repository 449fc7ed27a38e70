/*
 * Base64 (RFC 4648), standard alphabet. Used for host keys ("ssh-ed25519
 * AAAA...") and SHA256 fingerprints, which OpenSSH prints unpadded.
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

/* Decode base64 text into a malloc'd buffer; -1 on invalid input. */
int
base64_decode(const char *s, unsigned char **out, size_t *outlen)
{
	size_t		 n = strlen(s), i, o = 0;
	unsigned char	*buf;
	unsigned	 acc = 0;
	int		 bits = 0, v;

	while (n > 0 && s[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return -1;
	buf = xmalloc(n * 3 / 4 + 1);
	for (i = 0; i < n; i++) {
		if ((v = base64_value(s[i])) == -1) {
			free(buf);
			return -1;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (unsigned char)(acc >> bits);
		}
	}
	*out = buf;
	*outlen = o;
	return 0;
}
