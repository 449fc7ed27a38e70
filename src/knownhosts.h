/*
 * OpenSSH known_hosts files, read the way ssh(1) reads them: the entries
 * that apply to one host name, with their markers (@revoked,
 * @cert-authority), host patterns ("*", "?", "!negation", comma lists)
 * and hashed names ("|1|salt|hmac"). Pure: no libssh2.
 */
#ifndef TUNNELS_KNOWNHOSTS_H
#define TUNNELS_KNOWNHOSTS_H

#include <stddef.h>
#include <stdio.h>

/* Longest line accepted (without its newline), and the whole file. */
#define KNOWNHOSTS_LINE_MAX	(16 * 1024)
#define KNOWNHOSTS_FILE_MAX	(64 * 1024 * 1024)

enum knownhosts_marker {
	KNOWNHOSTS_PLAIN = 0,
	KNOWNHOSTS_REVOKED,		/* "@revoked": refuse this key */
	KNOWNHOSTS_CERT_AUTHORITY	/* "@cert-authority": a CA's key */
};

struct knownhosts_entry {
	enum knownhosts_marker	 marker;
	const char		*type;	/* static: "ssh-ed25519" ... "ssh-rsa" */
	unsigned char		*blob;	/* the decoded key, type inside */
	size_t			 bloblen;
	int			 line;	/* 1-based, in the file */
};

struct knownhosts {
	struct knownhosts_entry	*v;	/* in file order */
	size_t			 n;
};

/*
 * The name ssh(1) looks up for a server: "host" on port 22, else
 * "[host]:port"; lower case, as ssh(1) lowers the host name (malloc'd).
 */
char	*knownhosts_name(const char *host, int port);

/*
 * Read a known_hosts file and keep the entries whose host patterns match
 * name (as made by knownhosts_name). Key types other than ssh-ed25519,
 * ecdsa-sha2-nistp256/384/521 and ssh-rsa are skipped. Returns 0, or -1
 * with *cause "FILE:LINE: message" (a malformed line anywhere, a line or
 * file over the limits): half a file is never trusted.
 */
int	 knownhosts_load(const char *path, const char *name,
	    struct knownhosts *, char **cause);
/*
 * The same from an open stream; label names it in messages. Exported for the unit tests.
 */
int	 knownhosts_read(FILE *, const char *label, const char *name,
	    struct knownhosts *, char **cause);
void	 knownhosts_clear(struct knownhosts *);

/*
 * Match name against a comma-separated pattern list as ssh(1) does for
 * known_hosts (case-insensitive, "*" and "?", "!" negates): 1 if a
 * pattern matches and no negated one does, -1 if a negated one matches,
 * else 0. Exported for the unit tests.
 */
int	 knownhosts_match_list(const char *name, const char *list,
	    size_t listlen);

/*
 * The key type named inside an SSH public key blob, if it is one of the
 * supported types (a static string), else NULL.
 */
const char *knownhosts_blob_type(const unsigned char *, size_t);

#endif
