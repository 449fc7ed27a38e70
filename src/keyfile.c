/*
 * SSH private key inspection without decryption. The OpenSSH format keeps
 * the key type and public blob in clear text before the (possibly
 * encrypted) private part; PEM files name their type in the BEGIN line.
 * This is enough to refuse DSA identities before libssh2 tries them, and
 * to tell whether a passphrase is needed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base64.h"
#include "keyfile.h"
#include "rfile.h"
#include "util.h"

#define KEYFILE_MAX		(64 * 1024)
#define KEYFILE_OPENSSH_MAGIC	"openssh-key-v1"	/* followed by NUL */

/* A read cursor over an SSH wire-format blob. */
struct keyfile_cursor {
	const unsigned char	*p;
	size_t			 left;
};

/* Read a big-endian uint32; 0 or -1 when the blob is too short. */
static int
keyfile_get_u32(struct keyfile_cursor *c, uint32_t *v)
{
	if (c->left < 4)
		return -1;
	*v = (uint32_t)c->p[0] << 24 | (uint32_t)c->p[1] << 16 |
	    (uint32_t)c->p[2] << 8 | c->p[3];
	c->p += 4;
	c->left -= 4;
	return 0;
}

/* Read an SSH "string" (uint32 length + bytes), pointing into the blob. */
static int
keyfile_get_string(struct keyfile_cursor *c, const unsigned char **s,
    size_t *len)
{
	uint32_t	n;

	if (keyfile_get_u32(c, &n) == -1 || n > c->left)
		return -1;
	*s = c->p;
	*len = n;
	c->p += n;
	c->left -= n;
	return 0;
}

/* Map an SSH key type name to our enum. */
static enum keyfile_type
keyfile_type_from_name(const unsigned char *name, size_t len)
{
	static const struct {
		const char		*name;
		enum keyfile_type	 type;
	} map[] = {
		{ "ssh-ed25519",		KEYFILE_ED25519 },
		{ "ecdsa-sha2-nistp256",	KEYFILE_ECDSA },
		{ "ecdsa-sha2-nistp384",	KEYFILE_ECDSA },
		{ "ecdsa-sha2-nistp521",	KEYFILE_ECDSA },
		{ "ssh-rsa",			KEYFILE_RSA },
		{ "ssh-dss",			KEYFILE_DSA },
	};
	size_t	i;

	for (i = 0; i < ARRAY_LEN(map); i++)
		if (strlen(map[i].name) == len &&
		    memcmp(map[i].name, name, len) == 0)
			return map[i].type;
	return KEYFILE_UNKNOWN;
}

/* Read a whole (small) file into a NUL-terminated buffer. */
static int
keyfile_read(const char *path, char **data, size_t *len, char **cause)
{
	struct stat	 st;
	const char	*notreg;
	char		*buf = NULL;
	size_t		 n = 0;
	ssize_t		 r;
	int		 fd, rv = -1;

	/* Never blocks: a FIFO in the key's place is refused. */
	if ((fd = rfile_open(path, &st, &notreg)) == -1) {
		if (notreg != NULL)
			*cause = xasprintf("\"%s\" is not a regular file",
			    path);
		else
			*cause = xasprintf("cannot read \"%s\": %s", path,
			    strerror(errno));
		return -1;
	}
	buf = xmalloc(KEYFILE_MAX + 1);
	/* Read one byte past the limit to tell "too large" from "full". */
	while (n <= KEYFILE_MAX) {
		r = read(fd, buf + n, KEYFILE_MAX + 1 - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			*cause = xasprintf("cannot read \"%s\": %s", path,
			    strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > KEYFILE_MAX) {
		*cause = xasprintf("\"%s\" is too large to be an SSH private "
		    "key", path);
		goto out;
	}
	buf[n] = '\0';
	*data = buf;
	*len = n;
	buf = NULL;
	rv = 0;
out:
	free(buf);
	close(fd);
	return rv;
}

/* Find "-----END label-----" after body; NULL if absent. */
static const char *
keyfile_find_end(const char *body, const char *label)
{
	char		*marker;
	const char	*end;

	marker = xasprintf("-----END %s-----", label);
	end = strstr(body, marker);
	free(marker);
	return end;
}

/* Parse an "openssh-key-v1" body; 0 or -1 with *cause. */
static int
keyfile_parse_openssh(const char *path, const char *body,
    struct keyfile_info *ki, char **cause)
{
	struct keyfile_cursor	 c, pc;
	const unsigned char	*cipher, *kdf, *kdfopt, *pub, *type;
	unsigned char		*raw = NULL;
	char			*text = NULL, *b64 = NULL;
	const char		*end, *why;
	size_t			 rawlen, cipherlen, kdflen, kdfoptlen, publen;
	size_t			 typelen;
	uint32_t		 nkeys;
	int			 rv = -1;

	if ((end = keyfile_find_end(body, "OPENSSH PRIVATE KEY")) == NULL) {
		why = "no END line";
		goto bad;
	}
	text = xstrndup(body, (size_t)(end - body));
	if (base64_decode_ws(text, &raw, &rawlen) == -1) {
		why = "invalid base64";
		goto bad;
	}
	if (rawlen < sizeof KEYFILE_OPENSSH_MAGIC ||
	    memcmp(raw, KEYFILE_OPENSSH_MAGIC, sizeof KEYFILE_OPENSSH_MAGIC)
	    != 0) {
		why = "no openssh-key-v1 header";
		goto bad;
	}
	c.p = raw + sizeof KEYFILE_OPENSSH_MAGIC;
	c.left = rawlen - sizeof KEYFILE_OPENSSH_MAGIC;
	why = "truncated header";
	if (keyfile_get_string(&c, &cipher, &cipherlen) == -1 ||
	    keyfile_get_string(&c, &kdf, &kdflen) == -1 ||
	    keyfile_get_string(&c, &kdfopt, &kdfoptlen) == -1 ||
	    keyfile_get_u32(&c, &nkeys) == -1)
		goto bad;
	if (nkeys < 1) {
		why = "no keys";
		goto bad;
	}
	if (keyfile_get_string(&c, &pub, &publen) == -1)
		goto bad;
	pc.p = pub;
	pc.left = publen;
	if (keyfile_get_string(&pc, &type, &typelen) == -1) {
		why = "truncated public key";
		goto bad;
	}
	ki->type = keyfile_type_from_name(type, typelen);
	ki->encrypted = !(cipherlen == 4 && memcmp(cipher, "none", 4) == 0);
	/* The .pub line is the type followed by the whole blob. */
	b64 = base64_encode(pub, publen, 1);
	ki->public_line = xasprintf("%.*s %s", (int)typelen,
	    (const char *)type, b64);
	rv = 0;
	goto out;
bad:
	*cause = xasprintf("\"%s\" is a damaged OpenSSH private key (%s)",
	    path, why);
out:
	free(b64);
	free(raw);
	free(text);
	return rv;
}

/* Recognise PEM private keys by their BEGIN label; 0, or -1 if none. */
static int
keyfile_parse_pem(const char *label, size_t labellen, const char *body,
    struct keyfile_info *ki)
{
	static const struct {
		const char		*label;
		enum keyfile_type	 type;
		int			 encrypted;
	} map[] = {
		{ "RSA PRIVATE KEY",		KEYFILE_RSA,		0 },
		{ "EC PRIVATE KEY",		KEYFILE_ECDSA,		0 },
		{ "DSA PRIVATE KEY",		KEYFILE_DSA,		0 },
		/* PKCS#8: the algorithm is inside the DER; not parsed. */
		{ "PRIVATE KEY",		KEYFILE_UNKNOWN,	0 },
		{ "ENCRYPTED PRIVATE KEY",	KEYFILE_UNKNOWN,	1 },
	};
	size_t	i;

	for (i = 0; i < ARRAY_LEN(map); i++) {
		if (strlen(map[i].label) != labellen ||
		    memcmp(map[i].label, label, labellen) != 0)
			continue;
		ki->type = map[i].type;
		/* Legacy PEM encryption announces itself in a header. */
		ki->encrypted = map[i].encrypted ||
		    strstr(body, "Proc-Type: 4,ENCRYPTED") != NULL;
		ki->public_line = NULL;
		return 0;
	}
	return -1;
}

/* Explain a file that is a key, but not a private key we can use. */
static char *
keyfile_explain(const char *path, const char *data)
{
	static const char *pubtypes[] = {
		"ssh-ed25519 ", "ecdsa-sha2-", "ssh-rsa ", "ssh-dss ",
		"sk-ssh-ed25519", "sk-ecdsa-", "---- BEGIN SSH2 PUBLIC KEY"
	};
	size_t	i;

	while (*data == ' ' || *data == '\t' || *data == '\r' ||
	    *data == '\n')
		data++;
	for (i = 0; i < ARRAY_LEN(pubtypes); i++)
		if (strncmp(data, pubtypes[i], strlen(pubtypes[i])) == 0)
			return xasprintf("\"%s\" is a public key; give the "
			    "private key file (without .pub)", path);
	if (strncmp(data, "PuTTY-User-Key-File-", 20) == 0)
		return xasprintf("\"%s\" is a PuTTY key; convert it with "
		    "puttygen -O private-openssh", path);
	return xasprintf("\"%s\" is not an SSH private key", path);
}

/* Inspect a private key file (see keyfile.h). */
int
keyfile_inspect(const char *path, struct keyfile_info *ki, char **cause)
{
	char		*data = NULL;
	const char	*begin, *label, *dash;
	size_t		 len;
	int		 rv = -1;

	memset(ki, 0, sizeof *ki);
	*cause = NULL;
	if (keyfile_read(path, &data, &len, cause) == -1)
		goto out;
	/* Take the first BEGIN line that starts a line. */
	for (begin = strstr(data, "-----BEGIN "); begin != NULL;
	    begin = strstr(begin + 1, "-----BEGIN "))
		if (begin == data || begin[-1] == '\n')
			break;
	if (begin == NULL) {
		*cause = keyfile_explain(path, data);
		goto out;
	}
	label = begin + strlen("-----BEGIN ");
	if ((dash = strstr(label, "-----")) == NULL ||
	    memchr(label, '\n', (size_t)(dash - label)) != NULL) {
		*cause = keyfile_explain(path, data);
		goto out;
	}
	if ((size_t)(dash - label) == strlen("OPENSSH PRIVATE KEY") &&
	    memcmp(label, "OPENSSH PRIVATE KEY", (size_t)(dash - label))
	    == 0) {
		rv = keyfile_parse_openssh(path, dash + 5, ki, cause);
		goto out;
	}
	if (keyfile_parse_pem(label, (size_t)(dash - label), dash + 5,
	    ki) == -1) {
		*cause = xasprintf("\"%s\" is not an SSH private key", path);
		goto out;
	}
	rv = 0;
out:
	free(data);
	if (rv == -1)
		keyfile_info_clear(ki);
	return rv;
}

/* Free what keyfile_inspect allocated and reset the struct. */
void
keyfile_info_clear(struct keyfile_info *ki)
{
	free(ki->public_line);
	memset(ki, 0, sizeof *ki);
}

/* Human name of a key type, as used in messages. */
const char *
keyfile_type_name(enum keyfile_type t)
{
	switch (t) {
	case KEYFILE_ED25519:
		return "ed25519";
	case KEYFILE_ECDSA:
		return "ECDSA";
	case KEYFILE_RSA:
		return "RSA";
	case KEYFILE_DSA:
		return "DSA";
	case KEYFILE_UNKNOWN:
		break;
	}
	return "unknown";
}

/* Index of a host key type name of length len in allowed[], or -1. */
static int
keyfile_public_type(const char *name, size_t len)
{
	static const char *allowed[] = {
		"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
		"ecdsa-sha2-nistp521", "ssh-rsa"
	};
	size_t	i;

	for (i = 0; i < ARRAY_LEN(allowed); i++)
		if (strlen(allowed[i]) == len &&
		    memcmp(allowed[i], name, len) == 0)
			return (int)i;
	return -1;
}

/* Check a "TYPE BASE64 [COMMENT]" public key (a pinned host key). */
int
keyfile_check_public(const char *line, enum keyfile_type *type,
    char **cause)
{
	struct keyfile_cursor	 c;
	const unsigned char	*inner;
	unsigned char		*blob = NULL;
	char			*text = NULL;
	const char		*b64, *next;
	size_t			 tlen, blen, nlen, bloblen, innerlen;
	int			 rv = -1;

	*cause = NULL;
	tlen = strcspn(line, " ");
	b64 = line + tlen + strspn(line + tlen, " ");
	blen = strcspn(b64, " ");
	if (tlen == 0 || blen == 0) {
		*cause = xstrdup("expected \"TYPE BASE64\", e.g. "
		    "\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA...\"");
		goto out;
	}
	if (keyfile_public_type(line, tlen) == -1) {
		/* ssh-keyscan and known_hosts lines start with the host. */
		next = b64 + blen + strspn(b64 + blen, " ");
		nlen = strcspn(next, " ");
		if (keyfile_public_type(b64, blen) != -1 && nlen > 0) {
			*cause = xasprintf("expected \"TYPE BASE64\": remove "
			    "the host name \"%.*s\" in front", (int)tlen,
			    line);
			goto out;
		}
		*cause = xasprintf("key type \"%.*s\" is not supported (use "
		    "ssh-ed25519, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, "
		    "ecdsa-sha2-nistp521 or ssh-rsa)", (int)tlen, line);
		goto out;
	}
	/*
	 * Strict shape: whole quads of base64 digits, no white space, as
	 * hostkey.c compares the text with the padded encoding it makes.
	 */
	text = xstrndup(b64, blen);
	if (blen % 4 != 0 || base64_decode(text, &blob, &bloblen) == -1) {
		*cause = xstrdup("the key is not valid base64");
		goto out;
	}
	c.p = blob;
	c.left = bloblen;
	if (keyfile_get_string(&c, &inner, &innerlen) == -1 ||
	    innerlen != tlen || memcmp(inner, line, tlen) != 0) {
		*cause = xasprintf("the base64 data is not a key of type %.*s",
		    (int)tlen, line);
		goto out;
	}
	if (type != NULL)
		*type = keyfile_type_from_name(inner, innerlen);
	rv = 0;
out:
	free(text);
	free(blob);
	return rv;
}

/* Read a passphrase_file (see keyfile.h). */
char *
keyfile_read_passphrase(const char *path, char **cause)
{
	struct stat	 st;
	const char	*notreg;
	char		 buf[1024], *pass;
	size_t		 n = 0;
	ssize_t		 r;
	int		 fd;

	/* The daemon reads it at each connect: a FIFO must not block it. */
	if ((fd = rfile_open(path, &st, &notreg)) == -1) {
		if (notreg != NULL)
			*cause = xasprintf("cannot read passphrase_file \"%s\": "
			    "not a regular file (%s)", path, notreg);
		else
			*cause = xasprintf("cannot read passphrase_file \"%s\": "
			    "%s", path, strerror(errno));
		return NULL;
	}
	while (n < sizeof buf - 1) {
		r = read(fd, buf + n, sizeof buf - 1 - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	pass = xstrdup(buf);
	/* No copy of the secret left on the stack. */
	explicit_bzero(buf, sizeof buf);
	return pass;
}
