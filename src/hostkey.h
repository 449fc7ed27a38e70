/*
 * Server host key verification: against a known_hosts file (plain and
 * hashed entries, "[host]:port", key-type aware) or a key pinned in the
 * config. An unknown or changed key is always refused.
 */
#ifndef TUNNELS_HOSTKEY_H
#define TUNNELS_HOSTKEY_H

#include <libssh2.h>

struct config_server;

/*
 * Before the handshake: restrict the HOSTKEY algorithms to the key types
 * known for this server, so libssh2 does not negotiate a type we cannot
 * check. Returns 0, or -1 with *cause (known_hosts unreadable ...).
 */
int	 hostkey_prepare(LIBSSH2_SESSION *, const struct config_server *,
	    char **cause);

/* After the handshake: 0 if the key is the expected one, else -1, *cause. */
int	 hostkey_verify(LIBSSH2_SESSION *, const struct config_server *,
	    char **cause);

/* "ssh-ed25519 SHA256:..." for the negotiated key (malloc'd). */
char	*hostkey_describe(LIBSSH2_SESSION *);

#endif
