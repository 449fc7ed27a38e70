/*
 * Base64 (RFC 4648) for host keys, fingerprints and key files. Pure.
 */
#ifndef TUNNELS_BASE64_H
#define TUNNELS_BASE64_H

#include <stddef.h>

/* Encode n bytes; pad selects trailing '='. Returns a malloc'd string. */
char	*base64_encode(const void *, size_t n, int pad);
/*
 * Decode text into a malloc'd *out of *outlen bytes; -1 if invalid.
 * Padding is optional but may only complete the last group of four.
 * base64_decode allows no white space (host keys); base64_decode_ws skips
 * ASCII white space (the wrapped lines of PEM bodies).
 */
int	 base64_decode(const char *, unsigned char **out, size_t *outlen);
int	 base64_decode_ws(const char *, unsigned char **out, size_t *outlen);

#endif
