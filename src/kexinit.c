/*
 * Parser of the server's version exchange and first KEXINIT (RFC 4253
 * §4.2, §6, §7.1). Fed with whatever the socket delivered, in order; it
 * keeps at most KEXINIT_MAX_BYTES and never trusts a length it reads.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kexinit.h"

/* More than any real banner plus KEXINIT; past it, stop reading. */
#define KEXINIT_MAX_BYTES	(64 * 1024)
/* RFC 4253 §6.1: a packet is at most 35000 bytes. */
#define KEXINIT_MAX_PACKET	35000
/* RFC 4253 §4.2: lines are at most 255 bytes (we allow some slack). */
#define KEXINIT_MAX_LINE	1024
#define KEXINIT_SHOW_MAX	160
#define SSH_MSG_KEXINIT		20

/* Start empty. */
void
kexinit_init(struct kexinit *k)
{
	memset(k, 0, sizeof *k);
	buf_init(&k->in);
}

/* Free everything parsed. */
void
kexinit_clear(struct kexinit *k)
{
	int	i;

	buf_clear(&k->in);
	free(k->banner);
	free(k->pre_banner);
	for (i = 0; i < KEXINIT_NLISTS; i++)
		free(k->lists[i]);
	kexinit_init(k);
}

/* Big-endian uint32 at p. */
static uint32_t
kexinit_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* Consume complete lines until the version line; 1 when it was seen. */
static int
kexinit_lines(struct kexinit *k)
{
	char	*data, *nl;
	size_t	 len;

	while (k->in.len > 0) {
		data = buf_data(&k->in);
		nl = memchr(data, '\n', k->in.len);
		if (nl == NULL) {
			if (k->in.len > KEXINIT_MAX_LINE)
				k->state = KEXINIT_INVALID;
			return 0;
		}
		len = (size_t)(nl - data);
		/* Too long whether or not its end came in the same read. */
		if (len > KEXINIT_MAX_LINE) {
			k->state = KEXINIT_INVALID;
			return 0;
		}
		if (len > 0 && data[len - 1] == '\r')
			len--;
		if (len >= 4 && memcmp(data, "SSH-", 4) == 0) {
			k->banner = str_sanitize(data, len, KEXINIT_SHOW_MAX);
			buf_consume(&k->in, (size_t)(nl - data) + 1);
			return 1;
		}
		/* Text before the version (RFC 4253 §4.2): keep the first. */
		if (k->pre_banner == NULL && len > 0)
			k->pre_banner = str_sanitize(data, len,
			    KEXINIT_SHOW_MAX);
		buf_consume(&k->in, (size_t)(nl - data) + 1);
	}
	return 0;
}

/* Parse a complete KEXINIT payload; 0, or -1 if malformed. */
static int
kexinit_payload(struct kexinit *k, const unsigned char *p, size_t len)
{
	uint32_t	n;
	int		i;

	/* Message number and 16 bytes of cookie. */
	if (len < 17 || p[0] != SSH_MSG_KEXINIT)
		return -1;
	p += 17;
	len -= 17;
	for (i = 0; i < KEXINIT_NLISTS; i++) {
		if (len < 4)
			return -1;
		n = kexinit_u32(p);
		if (n > len - 4)
			return -1;
		k->lists[i] = str_sanitize(p + 4, n, n);
		p += 4 + n;
		len -= 4 + n;
	}
	return 0;
}

/* Parse the first binary packet once it is complete. */
static void
kexinit_packet(struct kexinit *k)
{
	const unsigned char	*p = (const unsigned char *)buf_data(&k->in);
	uint32_t		 plen;
	unsigned		 pad;

	if (k->in.len < 5)
		return;
	plen = kexinit_u32(p);
	if (plen < 2 || plen > KEXINIT_MAX_PACKET) {
		k->state = KEXINIT_INVALID;
		return;
	}
	if (k->in.len < 4 + (size_t)plen)
		return;
	pad = p[4];
	if (pad + 1 >= plen || kexinit_payload(k, p + 5, plen - pad - 1) == -1) {
		k->state = KEXINIT_INVALID;
		return;
	}
	k->state = KEXINIT_DONE;
	buf_clear(&k->in);
}

/*
 * Take more bytes from the server (see kexinit.h). Only the first
 * KEXINIT_MAX_BYTES are parsed, however the reads split them: a KEXINIT
 * complete within them counts even when more came in the same read.
 */
enum kexinit_state
kexinit_feed(struct kexinit *k, const void *data, size_t len)
{
	size_t	take;

	if (k->state == KEXINIT_DONE || k->state == KEXINIT_INVALID)
		return k->state;
	take = MIN(len, KEXINIT_MAX_BYTES - k->total);
	k->total += take;
	buf_append(&k->in, data, take);
	if (k->state == KEXINIT_BANNER && kexinit_lines(k))
		k->state = KEXINIT_PACKET;
	if (k->state == KEXINIT_PACKET)
		kexinit_packet(k);
	/* Past the limit without a KEXINIT: stop reading. */
	if (take < len && k->state != KEXINIT_DONE)
		k->state = KEXINIT_INVALID;
	if (k->state == KEXINIT_INVALID)
		buf_clear(&k->in);
	return k->state;
}
