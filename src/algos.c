/*
 * Algorithm preferences. A client's order decides the negotiation (the
 * first of ours the server also has wins), so the strong algorithms come
 * first and the weak ones (SHA-1, CBC) last: they are used only with a
 * server that offers nothing else, and the session then says so in the
 * log. Modern servers (OpenSSH with the ssh-audit hardening, NixOS) offer
 * only EtM MACs, AEAD ciphers and curve25519/ECDH, all of which are here.
 */
#include <stdlib.h>
#include <string.h>

#include "algos.h"
#include "kexinit.h"
#include "util.h"

/* Longest server list quoted in a message (a KEXINIT may hold 35 kB). */
#define ALGOS_SHOW_MAX	400

struct algos_list {
	const char	*what;		/* for messages */
	const char	*offer;
};

static const struct algos_list algos_lists[ALGOS_NKINDS] = {
	[ALGOS_KEX] = { "key exchange",
	    "curve25519-sha256,curve25519-sha256@libssh.org,"
	    "ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,"
	    "diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,"
	    "diffie-hellman-group-exchange-sha256,"
	    "diffie-hellman-group14-sha256,"
	    "diffie-hellman-group14-sha1,diffie-hellman-group-exchange-sha1" },
	[ALGOS_HOSTKEY] = { "host key algorithm",
	    "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,"
	    "ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa" },
	[ALGOS_CIPHER] = { "cipher",
	    "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,"
	    "aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr,"
	    "aes256-cbc,aes192-cbc,aes128-cbc" },
	[ALGOS_MAC] = { "MAC",
	    "hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,"
	    "hmac-sha2-256,hmac-sha2-512,hmac-sha1-etm@openssh.com,hmac-sha1" },
};

/* Offered only when nothing stronger is common (see the file comment). */
static const char *const algos_weak_names[] = {
	"diffie-hellman-group14-sha1", "diffie-hellman-group-exchange-sha1",
	"ssh-rsa", "aes256-cbc", "aes192-cbc", "aes128-cbc",
	"hmac-sha1-etm@openssh.com", "hmac-sha1",
};

/* The list offered for a kind. */
const char *
algos_offer(enum algos_kind kind)
{
	return algos_lists[kind].offer;
}

/* Set the session's KEX, cipher and MAC preferences (see algos.h). */
int
algos_apply(LIBSSH2_SESSION *ss, char **cause)
{
	static const struct {
		int		 method;
		enum algos_kind	 kind;
	} prefs[] = {
		{ LIBSSH2_METHOD_KEX, ALGOS_KEX },
		{ LIBSSH2_METHOD_CRYPT_CS, ALGOS_CIPHER },
		{ LIBSSH2_METHOD_CRYPT_SC, ALGOS_CIPHER },
		{ LIBSSH2_METHOD_MAC_CS, ALGOS_MAC },
		{ LIBSSH2_METHOD_MAC_SC, ALGOS_MAC },
	};
	size_t	i;

	for (i = 0; i < ARRAY_LEN(prefs); i++)
		if (libssh2_session_method_pref(ss, prefs[i].method,
		    algos_offer(prefs[i].kind)) != 0) {
			*cause = xasprintf("this libssh2 supports none of the "
			    "%s algorithms tunnels offers (%s)",
			    algos_lists[prefs[i].kind].what,
			    algos_offer(prefs[i].kind));
			return -1;
		}
	return 0;
}

/* 1 if name is a last-resort algorithm. */
int
algos_weak(const char *name)
{
	size_t	i;

	for (i = 0; i < ARRAY_LEN(algos_weak_names); i++)
		if (strcmp(name, algos_weak_names[i]) == 0)
			return 1;
	return 0;
}

/* 1 if the comma-separated list holds name[0..len). */
static int
algos_in_list(const char *list, const char *name, size_t len)
{
	size_t	n;

	while (*list != '\0') {
		n = strcspn(list, ",");
		if (n == len && strncmp(list, name, len) == 0)
			return 1;
		list += n;
		if (*list == ',')
			list++;
	}
	return 0;
}

/* The first name of ours the server also has, or NULL: what SSH picks. */
static const char *
algos_agree(const char *ours, const char *theirs, size_t *len)
{
	size_t	n;

	while (*ours != '\0') {
		n = strcspn(ours, ",");
		if (n > 0 && algos_in_list(theirs, ours, n)) {
			*len = n;
			return ours;
		}
		ours += n;
		if (*ours == ',')
			ours++;
	}
	return NULL;
}

/* 1 if a cipher carries its own integrity (no MAC is negotiated for it). */
static int
algos_cipher_is_aead(const char *name, size_t len)
{
	/*
	 * libssh2 1.11 skips the MAC only for AES-GCM; for chacha20-poly1305
	 * it still wants a MAC in common, so that one counts as needing it.
	 */
	return name != NULL && len == 22 &&
	    (strncmp(name, "aes256-gcm@openssh.com", len) == 0 ||
	    strncmp(name, "aes128-gcm@openssh.com", len) == 0);
}

/* The server's list without the markers that are not algorithms. */
static char *
algos_real_names(const char *list)
{
	struct buf	b;
	size_t		n;
	char		*s;

	buf_init(&b);
	while (*list != '\0') {
		n = strcspn(list, ",");
		/* ext-info-s, kex-strict-s-v00@openssh.com: extension flags. */
		if (n > 0 && strncmp(list, "ext-info-", 9) != 0 &&
		    strncmp(list, "kex-strict-", 11) != 0)
			buf_printf(&b, "%s%.*s", b.len ? "," : "", (int)n, list);
		list += n;
		if (*list == ',')
			list++;
	}
	s = b.len ? str_sanitize(buf_data(&b), b.len, ALGOS_SHOW_MAX) :
	    xstrdup("nothing");
	buf_clear(&b);
	return s;
}

/*
 * NULL if ours and the server's list (theirs) share an algorithm, else
 * "no common cipher (server to client): the server offers ...; tunnels
 * has ...".
 */
static char *
algos_check(enum algos_kind kind, const char *dir, const char *theirs,
    const char *ours)
{
	char	*real, *why;
	size_t	 len;

	if (ours == NULL)
		ours = algos_offer(kind);
	if (algos_agree(ours, theirs, &len) != NULL)
		return NULL;
	real = algos_real_names(theirs);
	why = xasprintf("no common %s%s: the server offers %s; tunnels has %s%s",
	    algos_lists[kind].what, dir, real, ours, kind == ALGOS_HOSTKEY &&
	    strcmp(ours, algos_offer(kind)) != 0 ? " (the key types "
	    "known_hosts or host_key holds for this server)" : "");
	free(real);
	return why;
}

/* See algos.h; the order is the one libssh2 agrees in. */
char *
algos_mismatch(const struct kexinit *k, const char *hostkeys)
{
	static const char *const dirs[2] = {
		" (client to server)", " (server to client)"
	};
	const char	*cipher;
	char		*why;
	size_t		 len = 0;
	int		 d;

	if (k->state != KEXINIT_DONE)
		return NULL;
	why = algos_check(ALGOS_KEX, "", k->lists[KEXINIT_KEX], NULL);
	if (why == NULL)
		why = algos_check(ALGOS_HOSTKEY, "", k->lists[KEXINIT_HOSTKEY],
		    hostkeys);
	for (d = 0; why == NULL && d < 2; d++)
		why = algos_check(ALGOS_CIPHER, dirs[d],
		    k->lists[KEXINIT_CIPHER_CS + d], NULL);
	for (d = 0; why == NULL && d < 2; d++) {
		cipher = algos_agree(algos_offer(ALGOS_CIPHER),
		    k->lists[KEXINIT_CIPHER_CS + d], &len);
		/* An AEAD cipher needs no MAC in that direction. */
		if (!algos_cipher_is_aead(cipher, len))
			why = algos_check(ALGOS_MAC, dirs[d],
			    k->lists[KEXINIT_MAC_CS + d], NULL);
	}
	return why;
}
