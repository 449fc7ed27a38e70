/*
 * Server host key verification: against a known_hosts file (read by
 * knownhosts.c: plain, wildcard and hashed entries, "[host]:port",
 * @revoked honoured, @cert-authority skipped with a warning) or a key
 * pinned in the config. An unknown, changed or revoked key is always
 * refused.
 */
#ifndef TUNNELS_HOSTKEY_H
#define TUNNELS_HOSTKEY_H

#include <libssh2.h>

struct config_server;

/*
 * Before the handshake: restrict the HOSTKEY algorithms to the key types
 * known for this server (strongest first; for RSA rsa-sha2-512,
 * rsa-sha2-256, then ssh-rsa), so libssh2 does not negotiate a type we
 * cannot check; all of them when none is known. Returns 0 and the list
 * offered in *offered (malloc'd, for explaining a failed handshake), or
 * -1 with *cause (known_hosts unreadable or malformed ...).
 */
int	 hostkey_prepare(LIBSSH2_SESSION *, const struct config_server *,
	    char **offered, char **cause);

/*
 * After the handshake: 0 if the key is the expected one (logged, with a
 * warning when it was signed with ssh-rsa, SHA-1), else -1 with *cause.
 */
int	 hostkey_verify(LIBSSH2_SESSION *, const struct config_server *,
	    char **cause);

/*
 * "ssh-ed25519 SHA256:..." for the negotiated key, naming the algorithm
 * ("rsa-sha2-512 SHA256:..." for RSA) (malloc'd).
 */
char	*hostkey_describe(LIBSSH2_SESSION *);

#endif
