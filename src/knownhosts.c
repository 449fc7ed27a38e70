/*
 * known_hosts reading, following OpenSSH's hostfile.c and match.c: a line
 * is "[@marker] HOSTS TYPE BASE64 [comment]"; HOSTS is either one hashed
 * name "|1|salt|hmac" (HMAC-SHA1 of the name keyed with the salt) or a
 * comma-separated list of patterns. Where OpenSSH silently skips a line it
 * cannot parse we refuse the file instead, naming the line: a typo in an
 * "@revoked" line must not quietly un-revoke a key. Lines of key types we
 * do not handle (ssh-dss, sk-*, certificates, SSH1) are skipped, as ssh(1)
 * skips types it does not want.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base64.h"
#include "knownhosts.h"
#include "util.h"

#define KNOWNHOSTS_HASH_MAGIC	"|1|"
#define KNOWNHOSTS_SHA1_LEN	20
#define KNOWNHOSTS_QUOTE_MAX	40

/* The key types we keep, as known_hosts and key blobs spell them. */
static const char *const knownhosts_types[] = {
	"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
	"ecdsa-sha2-nistp521", "ssh-rsa"
};

/* One line being parsed: where it is, and the error if it is bad. */
struct knownhosts_line {
	const char	*label;
	int		 lineno;
	char		*cause;
};

/* Record "FILE:LINE: message" as the line's error; returns -1. */
static int __attribute__((format(printf, 2, 3)))
knownhosts_bad(struct knownhosts_line *l, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	l->cause = xasprintf("%s:%d: %s", l->label, l->lineno, msg);
	free(msg);
	return -1;
}

/* Text from the file fit for a message: short, printable (malloc'd). */
static char *
knownhosts_quote(const char *s, size_t len)
{
	size_t	 n = MIN(len, KNOWNHOSTS_QUOTE_MAX), i;
	char	*out = xmalloc(n + 4);

	for (i = 0; i < n; i++)
		out[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
	memcpy(out + n, len > n ? "..." : "", len > n ? 4 : 1);
	return out;
}

/* The static name of a supported key type of length len, or NULL. */
static const char *
knownhosts_type(const char *name, size_t len)
{
	size_t	i;

	for (i = 0; i < ARRAY_LEN(knownhosts_types); i++)
		if (strlen(knownhosts_types[i]) == len &&
		    memcmp(knownhosts_types[i], name, len) == 0)
			return knownhosts_types[i];
	return NULL;
}

/* The key type inside a blob (its first SSH string), if supported. */
const char *
knownhosts_blob_type(const unsigned char *blob, size_t len)
{
	uint32_t	n;

	if (len < 4)
		return NULL;
	n = (uint32_t)blob[0] << 24 | (uint32_t)blob[1] << 16 |
	    (uint32_t)blob[2] << 8 | blob[3];
	if (n > len - 4)
		return NULL;
	return knownhosts_type((const char *)blob + 4, n);
}

/* "host" on port 22, else "[host]:port", lower case. */
char *
knownhosts_name(const char *host, int port)
{
	char	*s, *p;

	if (port == 22)
		s = xstrdup(host);
	else
		s = xasprintf("[%s]:%d", host, port);
	for (p = s; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return s;
}

/*
 * Glob match of name against pat[0..patlen), "*" and "?", ignoring ASCII
 * case. Iterative with one backtrack point: linear in practice, never
 * the exponential recursion a hostile "*a*a*a*..." line could cause.
 */
static int
knownhosts_glob(const char *name, const char *pat, size_t patlen)
{
	const char	*n = name, *star_n = NULL;
	size_t		 p = 0, star_p = 0;
	int		 star = 0;

	while (*n != '\0') {
		if (p < patlen && pat[p] == '*') {
			star = 1;
			star_p = ++p;
			star_n = n;
		} else if (p < patlen && (pat[p] == '?' ||
		    tolower((unsigned char)pat[p]) ==
		    tolower((unsigned char)*n))) {
			p++;
			n++;
		} else if (star) {
			p = star_p;
			n = ++star_n;
		} else
			return 0;
	}
	while (p < patlen && pat[p] == '*')
		p++;
	return p == patlen;
}

/* Match a comma-separated pattern list (see knownhosts.h). */
int
knownhosts_match_list(const char *name, const char *list, size_t listlen)
{
	size_t	i = 0, start;
	int	negated, positive = 0;

	while (i < listlen) {
		negated = list[i] == '!';
		if (negated)
			i++;
		start = i;
		while (i < listlen && list[i] != ',')
			i++;
		if (knownhosts_glob(name, list + start, i - start)) {
			if (negated)
				return -1;
			positive = 1;
		}
		if (i < listlen)
			i++;	/* the comma */
	}
	return positive;
}

/* Decode one base64 part of a hashed name; it must be a SHA-1's size. */
static int
knownhosts_hash_part(const char *s, size_t len, unsigned char *out)
{
	unsigned char	*raw = NULL;
	char		*text = xstrndup(s, len);
	size_t		 rawlen;
	int		 rv = -1;

	if (base64_decode(text, &raw, &rawlen) == 0 &&
	    rawlen == KNOWNHOSTS_SHA1_LEN) {
		memcpy(out, raw, rawlen);
		rv = 0;
	}
	free(raw);
	free(text);
	return rv;
}

/*
 * Match name against a hashed host field "|1|salt|hmac": 1 or 0, -1 with
 * the line's error when the field is malformed.
 */
static int
knownhosts_match_hashed(struct knownhosts_line *l, const char *name,
    const char *field, size_t len)
{
	unsigned char	 salt[KNOWNHOSTS_SHA1_LEN], want[KNOWNHOSTS_SHA1_LEN];
	unsigned char	 got[EVP_MAX_MD_SIZE];
	unsigned int	 gotlen = 0;
	const char	*s, *bar;
	size_t		 mlen = strlen(KNOWNHOSTS_HASH_MAGIC);

	if (len < mlen || memcmp(field, KNOWNHOSTS_HASH_MAGIC, mlen) != 0)
		return knownhosts_bad(l, "hashed host name of an unknown kind "
		    "(only \"|1|\" is known)");
	s = field + mlen;
	if ((bar = memchr(s, '|', len - mlen)) == NULL ||
	    knownhosts_hash_part(s, (size_t)(bar - s), salt) == -1 ||
	    knownhosts_hash_part(bar + 1, len - mlen - (size_t)(bar - s) - 1,
	    want) == -1)
		return knownhosts_bad(l, "malformed hashed host name (expected "
		    "\"|1|SALT|HASH\", both 20 bytes in base64)");
	if (HMAC(EVP_sha1(), salt, sizeof salt, (const unsigned char *)name,
	    strlen(name), got, &gotlen) == NULL ||
	    gotlen != KNOWNHOSTS_SHA1_LEN)
		return knownhosts_bad(l, "cannot compute HMAC-SHA1 for a "
		    "hashed host name");
	return memcmp(got, want, sizeof want) == 0;
}

/* Next white-space-separated token of the line; NULL at the end. */
static const char *
knownhosts_token(char **p, size_t *len)
{
	char	*s = *p + strspn(*p, " \t"), *e;

	if (*s == '\0')
		return NULL;
	e = s + strcspn(s, " \t");
	*len = (size_t)(e - s);
	*p = e;
	return s;
}

/* Add an entry for a line that applies (takes ownership of blob). */
static void
knownhosts_add(struct knownhosts *kh, enum knownhosts_marker marker,
    const char *type, unsigned char *blob, size_t bloblen, int lineno)
{
	struct knownhosts_entry	*e;

	kh->v = xreallocarray(kh->v, kh->n + 1, sizeof *kh->v);
	e = &kh->v[kh->n++];
	e->marker = marker;
	e->type = type;
	e->blob = blob;
	e->bloblen = bloblen;
	e->line = lineno;
}

/* Parse one line (modified in place); 0, or -1 with l->cause. */
static int
knownhosts_parse_line(struct knownhosts_line *l, char *buf, const char *name,
    struct knownhosts *kh)
{
	enum knownhosts_marker	 marker = KNOWNHOSTS_PLAIN;
	const char		*tok, *hosts, *type, *key;
	unsigned char		*blob = NULL;
	char			*p = buf, *q, *text;
	size_t			 len = 0, hostslen, keylen, bloblen;
	int			 match;

	p += strspn(p, " \t");
	if (*p == '\0' || *p == '#')
		return 0;
	if (*p == '@') {
		tok = knownhosts_token(&p, &len);
		if (len == 8 && memcmp(tok, "@revoked", 8) == 0)
			marker = KNOWNHOSTS_REVOKED;
		else if (len == 15 && memcmp(tok, "@cert-authority", 15) == 0)
			marker = KNOWNHOSTS_CERT_AUTHORITY;
		else {
			q = knownhosts_quote(tok, len);
			knownhosts_bad(l, "unknown marker \"%s\" (known: "
			    "@revoked, @cert-authority)", q);
			free(q);
			return -1;
		}
	}
	if ((hosts = knownhosts_token(&p, &hostslen)) == NULL)
		return knownhosts_bad(l, "no host names after the marker");
	if ((tok = knownhosts_token(&p, &len)) == NULL)
		return knownhosts_bad(l, "expected \"HOSTS TYPE KEY\", found "
		    "only the host names");
	/* Other types (ssh-dss, sk-*, certificates, SSH1 bits) are skipped. */
	if ((type = knownhosts_type(tok, len)) == NULL)
		return 0;
	if ((key = knownhosts_token(&p, &keylen)) == NULL)
		return knownhosts_bad(l, "no key after \"%s\"", type);
	if (*hosts == '|')
		match = knownhosts_match_hashed(l, name, hosts, hostslen);
	else
		match = knownhosts_match_list(name, hosts, hostslen) == 1;
	if (match == -1)
		return -1;
	text = xstrndup(key, keylen);
	if (base64_decode(text, &blob, &bloblen) == -1) {
		free(text);
		return knownhosts_bad(l, "the %s key is not valid base64",
		    type);
	}
	free(text);
	if (knownhosts_blob_type(blob, bloblen) != type) {
		free(blob);
		return knownhosts_bad(l, "the key data is not a %s key", type);
	}
	if (match)
		knownhosts_add(kh, marker, type, blob, bloblen, l->lineno);
	else
		free(blob);
	return 0;
}

/*
 * Read one line into buf (without the newline, NUL-terminated): 1, 0 at
 * the end of the file, -1 with l->cause (too long, a NUL byte, read
 * error, file too large).
 */
static int
knownhosts_getline(FILE *fp, struct knownhosts_line *l, char *buf,
    size_t *total)
{
	size_t	n = 0;
	int	c;

	while ((c = getc_unlocked(fp)) != EOF) {
		if (++*total > KNOWNHOSTS_FILE_MAX)
			return knownhosts_bad(l, "the file is larger than %d "
			    "bytes", KNOWNHOSTS_FILE_MAX);
		if (c == '\n')
			break;
		if (c == '\0')
			return knownhosts_bad(l, "NUL byte in the line");
		if (n == KNOWNHOSTS_LINE_MAX)
			return knownhosts_bad(l, "line longer than %d bytes",
			    KNOWNHOSTS_LINE_MAX);
		buf[n++] = (char)c;
	}
	if (ferror(fp))
		return knownhosts_bad(l, "read error: %s", strerror(errno));
	if (c == EOF && n == 0)
		return 0;
	/* Files edited on Windows. */
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return 1;
}

/* Read entries for name from a stream (see knownhosts.h). */
int
knownhosts_read(FILE *fp, const char *label, const char *name,
    struct knownhosts *kh, char **cause)
{
	struct knownhosts_line	 l;
	char			*buf = xmalloc(KNOWNHOSTS_LINE_MAX + 1);
	size_t			 total = 0;
	int			 rc, rv = -1;

	memset(kh, 0, sizeof *kh);
	memset(&l, 0, sizeof l);
	l.label = label;
	for (;;) {
		l.lineno++;
		if ((rc = knownhosts_getline(fp, &l, buf, &total)) == 0)
			break;
		if (rc == -1 || knownhosts_parse_line(&l, buf, name, kh) == -1)
			goto out;
	}
	rv = 0;
out:
	free(buf);
	if (rv == -1) {
		*cause = l.cause;
		knownhosts_clear(kh);
	}
	return rv;
}

/* Read entries for name from a file (see knownhosts.h). */
int
knownhosts_load(const char *path, const char *name, struct knownhosts *kh,
    char **cause)
{
	struct stat	 st;
	FILE		*fp;
	int		 fd, rv;

	memset(kh, 0, sizeof *kh);
	/* O_NONBLOCK: a FIFO put in its place must not hang the daemon. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1 ||
	    fstat(fd, &st) == -1) {
		*cause = xasprintf("cannot read known_hosts \"%s\": %s", path,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		*cause = xasprintf("known_hosts \"%s\" is not a regular file",
		    path);
		close(fd);
		return -1;
	}
	if ((fp = fdopen(fd, "r")) == NULL) {
		*cause = xasprintf("cannot read known_hosts \"%s\": %s", path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	rv = knownhosts_read(fp, path, name, kh, cause);
	fclose(fp);
	return rv;
}

/* Free the entries and reset. */
void
knownhosts_clear(struct knownhosts *kh)
{
	size_t	i;

	for (i = 0; i < kh->n; i++)
		free(kh->v[i].blob);
	free(kh->v);
	memset(kh, 0, sizeof *kh);
}
