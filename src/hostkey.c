/*
 * Host key verification. known_hosts is read by knownhosts.c the way
 * ssh(1) reads it (markers, patterns, hashed names); libssh2's own parser
 * knows no markers and would misread an "@revoked" line. Before the
 * handshake we pin the HOSTKEY preference to the types the file holds for
 * this host, so the server is asked for a key we can check: libssh2 would
 * otherwise negotiate ECDSA first and a file holding only an ed25519 line
 * would read as "unknown".
 */
#include <stdlib.h>
#include <string.h>

#include "algos.h"
#include "base64.h"
#include "config.h"
#include "hostkey.h"
#include "knownhosts.h"
#include "log.h"
#include "util.h"

struct hostkey_type {
	const char	*type;	/* in known_hosts and inside key blobs */
	const char	*algs;	/* HOSTKEY algorithms for it, best first */
};

/* In order of preference. */
static const struct hostkey_type hostkey_types[] = {
	{ "ssh-ed25519",	 "ssh-ed25519" },
	{ "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256" },
	{ "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384" },
	{ "ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521" },
	/*
	 * One RSA key, three signature algorithms: SHA-2 first; ssh-rsa
	 * (SHA-1, refused by OpenSSH >= 8.8 by default) only when the
	 * server offers nothing else, and then hostkey_verify warns.
	 */
	{ "ssh-rsa",		 "rsa-sha2-512,rsa-sha2-256,ssh-rsa" },
};

/* The table entry for a key type name of length len, or NULL. */
static const struct hostkey_type *
hostkey_type_by_name(const char *name, size_t len)
{
	size_t	i;

	for (i = 0; i < ARRAY_LEN(hostkey_types); i++)
		if (strlen(hostkey_types[i].type) == len &&
		    strncmp(hostkey_types[i].type, name, len) == 0)
			return &hostkey_types[i];
	return NULL;
}

/*
 * Load the known_hosts entries for this server ("host" on port 22, else
 * "[host]:port", as OpenSSH writes them). @cert-authority lines cannot
 * be used (no certificate support): say so once per server and run.
 * Returns 0, or -1 with *cause.
 */
static int
hostkey_load(const struct config_server *srv, struct knownhosts *kh,
    char **name, char **cause)
{
	char	*key;
	size_t	 i;

	*name = knownhosts_name(srv->host, srv->port);
	if (knownhosts_load(srv->known_hosts, *name, kh, cause) == -1) {
		free(*name);
		*name = NULL;
		return -1;
	}
	for (i = 0; i < kh->n; i++) {
		if (kh->v[i].marker != KNOWNHOSTS_CERT_AUTHORITY)
			continue;
		key = xasprintf("hostkey-cert-authority %s", srv->name);
		if (log_first(key))
			log_warn(srv->name, NULL, "%s:%d: @cert-authority line "
			    "for %s ignored: host certificates are not "
			    "supported; list the server's own host key",
			    srv->known_hosts, kh->v[i].line, *name);
		free(key);
		break;
	}
	return 0;
}

/* Pin the HOSTKEY method list before the handshake. */
int
hostkey_prepare(LIBSSH2_SESSION *ss, const struct config_server *srv,
    char **offered, char **cause)
{
	const struct hostkey_type	*t;
	struct knownhosts		 kh;
	struct buf			 pref;
	char				*name;
	size_t				 i, j, len;
	int				 ret = -1;

	buf_init(&pref);
	if (srv->host_key != NULL) {
		len = strcspn(srv->host_key, " ");
		if ((t = hostkey_type_by_name(srv->host_key, len)) == NULL) {
			*cause = xasprintf("unsupported host_key type \"%.*s\"",
			    (int)len, srv->host_key);
			goto out;
		}
		buf_printf(&pref, "%s", t->algs);
	} else {
		if (hostkey_load(srv, &kh, &name, cause) == -1)
			goto out;
		/* Revoked and CA keys say nothing about what to ask for. */
		for (i = 0; i < ARRAY_LEN(hostkey_types); i++) {
			t = &hostkey_types[i];
			for (j = 0; j < kh.n; j++)
				if (kh.v[j].marker == KNOWNHOSTS_PLAIN &&
				    strcmp(kh.v[j].type, t->type) == 0)
					break;
			if (j < kh.n)
				buf_printf(&pref, "%s%s", pref.len ? "," : "",
				    t->algs);
		}
		knownhosts_clear(&kh);
		free(name);
	}
	/*
	 * No usable entry: offer everything, so that the "unknown host key"
	 * message can show the fingerprint of the server's best key.
	 */
	if (pref.len == 0)
		buf_printf(&pref, "%s", algos_offer(ALGOS_HOSTKEY));
	if (libssh2_session_method_pref(ss, LIBSSH2_METHOD_HOSTKEY,
	    buf_cstr(&pref)) != 0) {
		*cause = xasprintf("cannot set host key algorithms \"%s\"",
		    buf_cstr(&pref));
		goto out;
	}
	*offered = xstrdup(buf_cstr(&pref));
	ret = 0;
out:
	buf_clear(&pref);
	return ret;
}

/* "ssh-ed25519 SHA256:..." describing the negotiated host key. */
char *
hostkey_describe(LIBSSH2_SESSION *ss)
{
	const char	*key, *hash, *alg;
	char		*b64, *s;
	size_t		 len;
	int		 type;

	if ((key = libssh2_session_hostkey(ss, &len, &type)) == NULL)
		return xstrdup("(no host key)");
	/* The algorithm says more than the key type: rsa-sha2-512. */
	if ((alg = libssh2_session_methods(ss, LIBSSH2_METHOD_HOSTKEY)) ==
	    NULL && (alg = knownhosts_blob_type((const unsigned char *)key,
	    len)) == NULL)
		alg = "unknown";
	hash = libssh2_hostkey_hash(ss, LIBSSH2_HOSTKEY_HASH_SHA256);
	if (hash == NULL)
		return xasprintf("%s (no fingerprint)", alg);
	/* OpenSSH prints SHA256 fingerprints as unpadded base64. */
	b64 = base64_encode(hash, 32, 0);
	s = xasprintf("%s SHA256:%s", alg, b64);
	free(b64);
	return s;
}

/* Compare the negotiated key with the one pinned in the config. */
static int
hostkey_verify_pinned(const struct config_server *srv, const char *key,
    size_t keylen, const char *desc, char **cause)
{
	char		*b64 = base64_encode(key, keylen, 1);
	const char	*pinned;
	size_t		 tlen = strcspn(srv->host_key, " "), blen = strlen(b64);
	int		 ok = 0;

	/* Compare "TYPE BASE64 [comment]": the base64 must match whole. */
	if (srv->host_key[tlen] == ' ') {
		pinned = srv->host_key + tlen + 1;
		ok = strncmp(pinned, b64, blen) == 0 &&
		    (pinned[blen] == '\0' || pinned[blen] == ' ');
	}
	free(b64);
	if (!ok) {
		*cause = xasprintf("host key mismatch for %s:%d: the server "
		    "offered %s, which is not the host_key pinned in the "
		    "config; refusing to connect", srv->host, srv->port, desc);
		return -1;
	}
	log_info(srv->name, NULL, "host key %s matches the pinned host_key",
	    desc);
	return 0;
}

/*
 * Compare the negotiated key with the known_hosts entries for the host:
 * a revoked key is refused even if also listed plainly, then match,
 * changed (another key of the same type), or unknown.
 */
static int
hostkey_verify_known(const struct config_server *srv, const char *key,
    size_t keylen, const char *ktype, const char *desc, char **cause)
{
	const struct knownhosts_entry	*e;
	struct knownhosts		 kh;
	char				*name;
	size_t				 i;
	int				 same_type = 0, ret = -1;

	if (hostkey_load(srv, &kh, &name, cause) == -1)
		return -1;
	for (i = 0; i < kh.n; i++) {
		e = &kh.v[i];
		if (e->marker == KNOWNHOSTS_REVOKED && e->bloblen == keylen &&
		    memcmp(e->blob, key, keylen) == 0) {
			*cause = xasprintf("host key REVOKED for %s: the server "
			    "offered %s, which %s:%d marks @revoked; refusing "
			    "to connect (give the server a new host key and "
			    "list that instead)", name, desc,
			    srv->known_hosts, e->line);
			goto out;
		}
	}
	for (i = 0; i < kh.n; i++) {
		e = &kh.v[i];
		if (e->marker != KNOWNHOSTS_PLAIN)
			continue;
		if (e->bloblen == keylen && memcmp(e->blob, key, keylen) == 0) {
			log_info(srv->name, NULL, "host key %s matches %s:%d",
			    desc, srv->known_hosts, e->line);
			ret = 0;
			goto out;
		}
		if (strcmp(e->type, ktype) == 0)
			same_type = 1;
	}
	if (same_type)
		*cause = xasprintf("HOST KEY CHANGED for %s: the server offered "
		    "%s but %s holds a different %s key for it; refusing to "
		    "connect (a reinstalled server, or a man-in-the-middle)",
		    name, desc, srv->known_hosts, ktype);
	else
		*cause = xasprintf("unknown host key for %s: the server offered "
		    "%s, which is not in %s; after checking that fingerprint "
		    "on the server (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub)"
		    ", add it with: ssh-keyscan -p %d %s >> %s", name, desc,
		    srv->known_hosts, srv->port, srv->host, srv->known_hosts);
out:
	knownhosts_clear(&kh);
	free(name);
	return ret;
}

/* Check the negotiated host key; a failure is permanent for this server. */
int
hostkey_verify(LIBSSH2_SESSION *ss, const struct config_server *srv,
    char **cause)
{
	const char	*key, *ktype, *alg;
	char		*desc;
	size_t		 keylen;
	int		 type, ret = -1;

	key = libssh2_session_hostkey(ss, &keylen, &type);
	desc = hostkey_describe(ss);
	if (key == NULL || (ktype = knownhosts_blob_type(
	    (const unsigned char *)key, keylen)) == NULL) {
		*cause = xasprintf("unsupported host key type from %s:%d (%s)",
		    srv->host, srv->port, desc);
		goto out;
	}
	if (srv->host_key != NULL)
		ret = hostkey_verify_pinned(srv, key, keylen, desc, cause);
	else
		ret = hostkey_verify_known(srv, key, keylen, ktype, desc,
		    cause);
	alg = libssh2_session_methods(ss, LIBSSH2_METHOD_HOSTKEY);
	if (ret == 0 && alg != NULL && strcmp(alg, "ssh-rsa") == 0)
		log_warn(srv->name, NULL, "the server signed its host key "
		    "with ssh-rsa (SHA-1): it offers neither rsa-sha2-512 "
		    "nor rsa-sha2-256 nor any other key type listed for it; "
		    "accepted, but upgrade the server's OpenSSH or give it "
		    "an ed25519 host key");
out:
	free(desc);
	return ret;
}
