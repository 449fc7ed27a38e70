/*
 * Base64 (RFC 4648) for host keys and fingerprints. Pure.
 */
#ifndef TUNNELS_BASE64_H
#define TUNNELS_BASE64_H

#include <stddef.h>

/* Encode n bytes; pad selects trailing '='. Returns a malloc'd string. */
char	*base64_encode(const void *, size_t n, int pad);
/* Decode text (whitespace not allowed, padding optional); -1 if invalid. */
int	 base64_decode(const char *, unsigned char **out, size_t *outlen);

#endif
