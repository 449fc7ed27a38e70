/*
 * The filesystem checks of `tunnels check` and of loading: the files a
 * server names must exist and be readable, secrets must be private, the
 * identity must be a key type that libssh2 and a modern sshd agree on
 * (see keyfile.c), and known_hosts must parse as the daemon will read it
 * (knownhosts.c). Only run when config_parse is asked to.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "config.h"
#include "config_int.h"
#include "keyfile.h"
#include "knownhosts.h"
#include "rfile.h"
#include "util.h"

/*
 * Check a secret file (identity, passphrase): exists, regular, private
 * mode, readable. Returns 1 if it can be read, 0 otherwise.
 */
static int
config_check_secret(struct config_ctx *ctx, yaml_node_t *node,
    const char *what, const char *path)
{
	struct stat	 st;
	const char	*how, *notreg;
	int		 fd;

	if (stat(path, &st) == -1) {
		if (errno == ENOENT)
			config_error_at(ctx, node, "%s \"%s\" does not exist",
			    what, path);
		else
			config_error_at(ctx, node, "cannot access %s \"%s\": "
			    "%s", what, path, strerror(errno));
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		config_error_at(ctx, node, "%s \"%s\" is not a regular file "
		    "(%s)", what, path, rfile_kind(st.st_mode));
		return 0;
	}
	/* Same rule as OpenSSH: no access at all for group and others. */
	if ((st.st_mode & 077) != 0) {
		if ((st.st_mode & 044) != 0)
			how = "readable";
		else if ((st.st_mode & 022) != 0)
			how = "writable";
		else
			how = "accessible";
		config_error_at(ctx, node, "%s \"%s\" is %s by group or others "
		    "(mode %04o); run chmod 600 \"%s\"", what, path, how,
		    (unsigned)(st.st_mode & 07777), path);
	}
	/* Swapped for a FIFO since the stat: must not block either. */
	if ((fd = rfile_open(path, &st, &notreg)) == -1) {
		if (notreg != NULL)
			config_error_at(ctx, node, "%s \"%s\" is not a regular "
			    "file (%s)", what, path, notreg);
		else
			config_error_at(ctx, node, "cannot read %s \"%s\": %s",
			    what, path, strerror(errno));
		return 0;
	}
	close(fd);
	return 1;
}

/*
 * Check that the identity is a key libssh2 can use with a current sshd:
 * ed25519, ECDSA or RSA (signed with rsa-sha2-256/512), not DSA.
 */
static void
config_check_identity(struct config_ctx *ctx, yaml_node_t *node,
    const struct config_server *srv)
{
	struct keyfile_info	 ki;
	char			*cause;

	if (keyfile_inspect(srv->identity, &ki, &cause) == -1) {
		config_error_at(ctx, node, "%s", cause);
		free(cause);
		return;
	}
	switch (ki.type) {
	case KEYFILE_DSA:
		config_error_at(ctx, node, "identity \"%s\" is a DSA key, "
		    "which OpenSSH 7.0 and later refuse; generate an ed25519 "
		    "key with ssh-keygen -t ed25519", srv->identity);
		break;
	default:
		if (ki.encrypted && srv->passphrase_file == NULL)
			config_error_at(ctx, node, "identity \"%s\" is "
			    "encrypted but server \"%s\" has no "
			    "passphrase_file", srv->identity, srv->name);
		break;
	}
	keyfile_info_clear(&ki);
}

/*
 * Read known_hosts as the daemon will: a malformed line is an error (the
 * daemon would refuse the server), an @cert-authority line for this
 * server only a warning (skipped: certificates are not supported).
 */
static void
config_check_known_hosts(struct config_ctx *ctx, yaml_node_t *node,
    const struct config_server *srv)
{
	struct knownhosts	 kh;
	char			*name, *cause = NULL;
	size_t			 i;

	/* Without a host (an error already) the syntax is still checked. */
	name = srv->host != NULL ? knownhosts_name(srv->host, srv->port) :
	    xstrdup("");
	if (knownhosts_load(srv->known_hosts, name, &kh, &cause) == -1) {
		config_error_at(ctx, node, "%s", cause);
		free(cause);
		free(name);
		return;
	}
	for (i = 0; i < kh.n && srv->host != NULL; i++)
		if (kh.v[i].marker == KNOWNHOSTS_CERT_AUTHORITY)
			config_warning_at(ctx, node, "server \"%s\": %s:%d: "
			    "@cert-authority line for %s ignored: host "
			    "certificates are not supported; list the "
			    "server's own host key", srv->name,
			    srv->known_hosts, kh.v[i].line, name);
	knownhosts_clear(&kh);
	free(name);
}

/*
 * Check the files a server names; each node is the value of its key
 * (where the messages point), NULL when the key is absent.
 */
void
config_check_server_files(struct config_ctx *ctx,
    const struct config_server *srv, yaml_node_t *identity,
    yaml_node_t *passphrase, yaml_node_t *known_hosts)
{
	struct stat	 st;
	const char	*notreg;
	int		 fd;

	if (srv->identity != NULL &&
	    config_check_secret(ctx, identity, "identity file",
	    srv->identity))
		config_check_identity(ctx, identity, srv);
	if (srv->passphrase_file != NULL)
		(void)config_check_secret(ctx, passphrase,
		    "passphrase file", srv->passphrase_file);
	/* known_hosts is public: it may be readable by anyone. */
	if (srv->known_hosts == NULL)
		return;
	if (stat(srv->known_hosts, &st) == -1) {
		if (errno == ENOENT)
			config_error_at(ctx, known_hosts, "known_hosts file "
			    "\"%s\" does not exist: put the server's host keys "
			    "there (`tunnels server-setup --script` prints them "
			    "on the server; or ssh-keyscan, once their "
			    "fingerprints are checked)", srv->known_hosts);
		else
			config_error_at(ctx, known_hosts, "cannot access "
			    "known_hosts file \"%s\": %s", srv->known_hosts,
			    strerror(errno));
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		config_error_at(ctx, known_hosts, "known_hosts file \"%s\" is "
		    "not a regular file (%s)", srv->known_hosts,
		    rfile_kind(st.st_mode));
		return;
	}
	if ((fd = rfile_open(srv->known_hosts, &st, &notreg)) == -1) {
		if (notreg != NULL)
			config_error_at(ctx, known_hosts, "known_hosts file "
			    "\"%s\" is not a regular file (%s)",
			    srv->known_hosts, notreg);
		else
			config_error_at(ctx, known_hosts, "cannot read "
			    "known_hosts file \"%s\": %s", srv->known_hosts,
			    strerror(errno));
		return;
	}
	close(fd);
	config_check_known_hosts(ctx, known_hosts, srv);
}
