/*
 * The algorithms tunnels offers a server, strongest first, and the
 * sentence that explains a key exchange with nothing in common.
 */
#ifndef TUNNELS_ALGOS_H
#define TUNNELS_ALGOS_H

#include <libssh2.h>

struct kexinit;

enum algos_kind {
	ALGOS_KEX = 0,
	ALGOS_HOSTKEY,
	ALGOS_CIPHER,
	ALGOS_MAC,
	ALGOS_NKINDS
};

/* The comma-separated list offered for a kind (host keys: all types). */
const char	*algos_offer(enum algos_kind);
/*
 * Before the handshake: offer our key exchange, cipher and MAC lists (the
 * host key list is hostkey.c's). 0, or -1 with *cause.
 */
int		 algos_apply(LIBSSH2_SESSION *, char **cause);
/* 1 if an algorithm is one offered only as a last resort (SHA-1, CBC). */
int		 algos_weak(const char *name);
/*
 * When the server's KEXINIT shows a kind with no algorithm in common
 * (checked in the order the key exchange agrees on them): a sentence
 * naming the kind and both sides' lists; else NULL. hostkeys is the host
 * key list actually offered (restricted to what known_hosts holds).
 */
char		*algos_mismatch(const struct kexinit *, const char *hostkeys);

#endif
