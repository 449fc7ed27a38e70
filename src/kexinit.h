/*
 * The server's side of the version exchange and its first KEXINIT, read
 * from the bytes the SSH socket delivers before encryption starts. Both
 * are cleartext, so they can explain a failed handshake: the text a
 * server sends instead of a banner ("Exceeded MaxStartups"), and, when no
 * algorithm is in common, what the server offers.
 */
#ifndef TUNNELS_KEXINIT_H
#define TUNNELS_KEXINIT_H

#include <stddef.h>

#include "util.h"

/* The name-lists of a KEXINIT, in wire order (RFC 4253 §7.1). */
enum kexinit_list {
	KEXINIT_KEX = 0,
	KEXINIT_HOSTKEY,
	KEXINIT_CIPHER_CS,
	KEXINIT_CIPHER_SC,
	KEXINIT_MAC_CS,
	KEXINIT_MAC_SC,
	KEXINIT_COMP_CS,
	KEXINIT_COMP_SC,
	KEXINIT_LANG_CS,
	KEXINIT_LANG_SC,
	KEXINIT_NLISTS
};

enum kexinit_state {
	KEXINIT_BANNER = 0,	/* reading lines up to "SSH-..." */
	KEXINIT_PACKET,		/* reading the first binary packet */
	KEXINIT_DONE,		/* lists[] are set */
	KEXINIT_INVALID		/* not SSH, or too big: nothing more is read */
};

struct kexinit {
	enum kexinit_state	 state;
	struct buf		 in;
	size_t			 total;		/* bytes kept (of the first 64 KiB) */
	char			*banner;	/* "SSH-2.0-..." (sanitised) */
	char			*pre_banner;	/* first other line (sanitised) */
	char			*lists[KEXINIT_NLISTS];
};

void	kexinit_init(struct kexinit *);
void	kexinit_clear(struct kexinit *);
/* Feed bytes received from the server, in order; returns the state. */
enum kexinit_state kexinit_feed(struct kexinit *, const void *, size_t);

#endif
