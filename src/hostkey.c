/*
 * Host key verification. libssh2 1.10's known-hosts check needs the key
 * type bits (without them an entry of another type reads as a mismatch),
 * and by default it negotiates ECDSA first, so a known_hosts file holding
 * only an ed25519 line would report "not found". We therefore learn which
 * types the file has for this host and pin the HOSTKEY preference to them.
 */
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "config.h"
#include "hostkey.h"
#include "util.h"

struct hostkey_type {
	int		 hostkey_type;	/* LIBSSH2_HOSTKEY_TYPE_* */
	int		 known_bit;	/* LIBSSH2_KNOWNHOST_KEY_* */
	const char	*name;		/* SSH algorithm name */
};

/* In order of preference. RSA last: 1.10 can only verify ssh-rsa (SHA-1). */
static const struct hostkey_type hostkey_types[] = {
	{ LIBSSH2_HOSTKEY_TYPE_ED25519, LIBSSH2_KNOWNHOST_KEY_ED25519,
	  "ssh-ed25519" },
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_256, LIBSSH2_KNOWNHOST_KEY_ECDSA_256,
	  "ecdsa-sha2-nistp256" },
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_384, LIBSSH2_KNOWNHOST_KEY_ECDSA_384,
	  "ecdsa-sha2-nistp384" },
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_521, LIBSSH2_KNOWNHOST_KEY_ECDSA_521,
	  "ecdsa-sha2-nistp521" },
	{ LIBSSH2_HOSTKEY_TYPE_RSA, LIBSSH2_KNOWNHOST_KEY_SSHRSA, "ssh-rsa" },
};

/* The table entry for a libssh2 host key type, or NULL. */
static const struct hostkey_type *
hostkey_type_find(int hostkey_type)
{
	size_t	i;

	for (i = 0; i < ARRAY_LEN(hostkey_types); i++)
		if (hostkey_types[i].hostkey_type == hostkey_type)
			return &hostkey_types[i];
	return NULL;
}

/* The table entry for an algorithm name, or NULL. */
static const struct hostkey_type *
hostkey_type_by_name(const char *name, size_t len)
{
	size_t	i;

	for (i = 0; i < ARRAY_LEN(hostkey_types); i++)
		if (strlen(hostkey_types[i].name) == len &&
		    strncmp(hostkey_types[i].name, name, len) == 0)
			return &hostkey_types[i];
	return NULL;
}

/*
 * The name OpenSSH writes in known_hosts: "host" on port 22, else
 * "[host]:port". Passing it with port -1 makes libssh2 match exactly
 * that, as OpenSSH does, instead of also accepting the port-22 entry.
 */
static char *
hostkey_known_name(const struct config_server *srv)
{
	if (srv->port == 22)
		return xstrdup(srv->host);
	return xasprintf("[%s]:%d", srv->host, srv->port);
}

/* Load known_hosts into a fresh collection; NULL with *cause on error. */
static LIBSSH2_KNOWNHOSTS *
hostkey_load(LIBSSH2_SESSION *ss, const struct config_server *srv,
    char **cause)
{
	LIBSSH2_KNOWNHOSTS	*kh = libssh2_knownhost_init(ss);
	int			 rc;

	if (kh == NULL) {
		*cause = xstrdup("out of memory for known_hosts");
		return NULL;
	}
	rc = libssh2_knownhost_readfile(kh, srv->known_hosts,
	    LIBSSH2_KNOWNHOST_FILE_OPENSSH);
	/* A partial load is still an error: never trust half a file. */
	if (rc < 0) {
		*cause = xasprintf("cannot load known_hosts \"%s\" (libssh2 "
		    "error %d: unreadable, or a line it cannot parse)",
		    srv->known_hosts, rc);
		libssh2_knownhost_free(kh);
		return NULL;
	}
	return kh;
}

/* Pin the HOSTKEY method list before the handshake. */
int
hostkey_prepare(LIBSSH2_SESSION *ss, const struct config_server *srv,
    char **cause)
{
	LIBSSH2_KNOWNHOSTS		*kh;
	const struct hostkey_type	*t;
	struct buf			 pref;
	char				*name;
	size_t				 i, len;
	int				 rc, ret = -1;

	buf_init(&pref);
	if (srv->host_key != NULL) {
		len = strcspn(srv->host_key, " ");
		t = hostkey_type_by_name(srv->host_key, len);
		if (t == NULL) {
			*cause = xasprintf("unsupported host_key type \"%.*s\"",
			    (int)len, srv->host_key);
			return -1;
		}
		buf_printf(&pref, "%s", t->name);
	} else {
		if ((kh = hostkey_load(ss, srv, cause)) == NULL)
			return -1;
		name = hostkey_known_name(srv);
		for (i = 0; i < ARRAY_LEN(hostkey_types); i++) {
			t = &hostkey_types[i];
			/*
			 * A dummy key of this type: MISMATCH means the file
			 * holds a key of this type for the host.
			 */
			rc = libssh2_knownhost_checkp(kh, name, -1, "x", 1,
			    LIBSSH2_KNOWNHOST_TYPE_PLAIN |
			    LIBSSH2_KNOWNHOST_KEYENC_RAW | t->known_bit, NULL);
			if (rc == LIBSSH2_KNOWNHOST_CHECK_MISMATCH)
				buf_printf(&pref, "%s%s", pref.len ? "," : "",
				    t->name);
		}
		free(name);
		libssh2_knownhost_free(kh);
	}
	ret = 0;
	/* No entry at all: keep the defaults, verify will say "unknown". */
	if (pref.len > 0 && libssh2_session_method_pref(ss,
	    LIBSSH2_METHOD_HOSTKEY, buf_cstr(&pref)) != 0) {
		*cause = xasprintf("cannot set host key algorithms \"%s\"",
		    buf_cstr(&pref));
		ret = -1;
	}
	buf_clear(&pref);
	return ret;
}

/* "ssh-ed25519 SHA256:..." describing the negotiated host key. */
char *
hostkey_describe(LIBSSH2_SESSION *ss)
{
	const struct hostkey_type	*t;
	const char			*hash;
	char				*b64, *s;
	size_t				 len;
	int				 type;

	if (libssh2_session_hostkey(ss, &len, &type) == NULL)
		return xstrdup("(no host key)");
	t = hostkey_type_find(type);
	hash = libssh2_hostkey_hash(ss, LIBSSH2_HOSTKEY_HASH_SHA256);
	if (hash == NULL)
		return xasprintf("%s (no fingerprint)", t ? t->name : "unknown");
	/* OpenSSH prints SHA256 fingerprints as unpadded base64. */
	b64 = base64_encode(hash, 32, 0);
	s = xasprintf("%s SHA256:%s", t ? t->name : "unknown", b64);
	free(b64);
	return s;
}

/* Compare the negotiated key with the one pinned in the config. */
static int
hostkey_verify_pinned(LIBSSH2_SESSION *ss, const struct config_server *srv,
    const char *key, size_t keylen, const char *desc, char **cause)
{
	char		*b64 = base64_encode(key, keylen, 1);
	const char	*pinned;
	size_t		 tlen = strcspn(srv->host_key, " "), blen = strlen(b64);
	int		 ok = 0;

	(void)ss;
	/* Compare "TYPE BASE64 [comment]": the base64 must match whole. */
	if (srv->host_key[tlen] == ' ') {
		pinned = srv->host_key + tlen + 1;
		ok = strncmp(pinned, b64, blen) == 0 &&
		    (pinned[blen] == '\0' || pinned[blen] == ' ');
	}
	free(b64);
	if (!ok)
		*cause = xasprintf("host key mismatch for %s:%d: the server "
		    "offered %s, which is not the host_key pinned in the "
		    "config; refusing to connect", srv->host, srv->port, desc);
	return ok ? 0 : -1;
}

/* Check the negotiated host key; a failure is permanent for this server. */
int
hostkey_verify(LIBSSH2_SESSION *ss, const struct config_server *srv,
    char **cause)
{
	const struct hostkey_type	*t;
	LIBSSH2_KNOWNHOSTS		*kh = NULL;
	const char			*key;
	char				*desc, *name = NULL;
	size_t				 keylen;
	int				 type, rc, ret = -1;

	key = libssh2_session_hostkey(ss, &keylen, &type);
	desc = hostkey_describe(ss);
	if (key == NULL || (t = hostkey_type_find(type)) == NULL) {
		*cause = xasprintf("unsupported host key type from %s:%d (%s)",
		    srv->host, srv->port, desc);
		goto out;
	}
	if (srv->host_key != NULL) {
		ret = hostkey_verify_pinned(ss, srv, key, keylen, desc, cause);
		goto out;
	}
	if ((kh = hostkey_load(ss, srv, cause)) == NULL)
		goto out;
	name = hostkey_known_name(srv);
	rc = libssh2_knownhost_checkp(kh, name, -1, key, keylen,
	    LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
	    t->known_bit, NULL);
	switch (rc) {
	case LIBSSH2_KNOWNHOST_CHECK_MATCH:
		ret = 0;
		break;
	case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
		*cause = xasprintf("HOST KEY CHANGED for %s: the server offered "
		    "%s but %s holds a different %s key for it; refusing to "
		    "connect (a reinstalled server, or a man-in-the-middle)",
		    name, desc, srv->known_hosts, t->name);
		break;
	case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
		*cause = xasprintf("unknown host key for %s: the server offered "
		    "%s, which is not in %s; after checking that fingerprint "
		    "on the server (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub)"
		    ", add it with: ssh-keyscan -p %d %s >> %s", name, desc,
		    srv->known_hosts, srv->port, srv->host, srv->known_hosts);
		break;
	default:
		*cause = xasprintf("cannot check host key for %s in %s",
		    name, srv->known_hosts);
		break;
	}
out:
	if (kh != NULL)
		libssh2_knownhost_free(kh);
	free(name);
	free(desc);
	return ret;
}
