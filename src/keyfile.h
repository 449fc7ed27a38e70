/*
 * Inspection of SSH private key files without decrypting them: the key
 * type (to refuse DSA up front) and the public half (for authorized_keys
 * lines). The OpenSSH format keeps the public key in clear text.
 */
#ifndef TUNNELS_KEYFILE_H
#define TUNNELS_KEYFILE_H

enum keyfile_type {
	KEYFILE_UNKNOWN = 0,
	KEYFILE_ED25519,
	KEYFILE_ECDSA,
	KEYFILE_RSA,
	KEYFILE_DSA
};

struct keyfile_info {
	enum keyfile_type	 type;
	int			 encrypted;	/* needs a passphrase */
	char			*public_line;	/* "ssh-ed25519 AAAA..." or NULL */
};

/*
 * Read and inspect a private key file (OpenSSH or PEM format). Returns 0,
 * or -1 with *cause set (unreadable, not a private key ...).
 */
int	 keyfile_inspect(const char *path, struct keyfile_info *, char **cause);
void	 keyfile_info_clear(struct keyfile_info *);
/* "ed25519", "RSA" ... for messages. Exported for the unit tests. */
const char *keyfile_type_name(enum keyfile_type);

/*
 * Check a public key written as "TYPE BASE64" (a pinned host key; a
 * trailing " comment" is allowed, as in .pub files): TYPE is ssh-ed25519,
 * ecdsa-sha2-nistp256/384/521 or ssh-rsa, BASE64 decodes to a blob of
 * that type. Returns 0 (and *type if not NULL), or -1 with *cause set.
 */
int	 keyfile_check_public(const char *line, enum keyfile_type *type,
	    char **cause);

/*
 * The passphrase in a passphrase_file (its first line, without the line
 * end), malloc'd: wipe it with explicit_bzero before freeing. NULL with
 * *cause when the file cannot be read.
 */
char	*keyfile_read_passphrase(const char *path, char **cause);

#endif
