/*
 * Endpoint addresses as written in the config: a bare port, host:port,
 * [IPv6]:port or unix:/path. Parsing is strict so that a typo is reported
 * by `tunnels check` and never turns into a surprising bind at run time.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "addr.h"
#include "util.h"

#define ADDR_EXPECTED	"expected PORT, HOST:PORT or [IPV6]:PORT"

/* Parse a decimal port; returns 0 or -1 with *cause. */
static int
addr_parse_port(const char *text, const char *port, int flags, int *out,
    char **cause)
{
	const char	*p;
	long		 v = 0;
	int		 min = (flags & ADDR_ALLOW_PORT_ZERO) ? 0 : 1;

	if (*port == '\0') {
		*cause = xasprintf("invalid address \"%s\": missing port",
		    text);
		return -1;
	}
	for (p = port; *p != '\0'; p++) {
		if (*p < '0' || *p > '9') {
			*cause = xasprintf("invalid port \"%s\" in \"%s\": "
			    "expected a number from %d to 65535", port, text,
			    min);
			return -1;
		}
		/* Saturate instead of overflowing on absurdly long input. */
		if (v <= 65535)
			v = v * 10 + (*p - '0');
	}
	if (v < min || v > 65535) {
		*cause = xasprintf("port %s out of range (%d-65535)", port,
		    min);
		return -1;
	}
	*out = (int)v;
	return 0;
}

/* Check a host name or IPv4 literal; returns 0 or -1 with *cause. */
static int
addr_check_host(const char *text, const char *host, char **cause)
{
	const char	*p;

	if (*host == '\0') {
		*cause = xasprintf("invalid address \"%s\": empty host", text);
		return -1;
	}
	if (strlen(host) >= ADDR_HOST_MAX) {
		*cause = xasprintf("invalid address \"%s\": host is too long",
		    text);
		return -1;
	}
	for (p = host; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		    *p == '_')
			continue;
		*cause = xasprintf("invalid host \"%s\" in \"%s\": only "
		    "letters, digits, \"-\", \".\" and \"_\" are allowed",
		    host, text);
		return -1;
	}
	return 0;
}

/* Check an IPv6 literal (optionally with a %zone); 0 or -1 with *cause. */
static int
addr_check_ipv6(const char *text, const char *host, char **cause)
{
	struct in6_addr	 a;
	char		 bare[ADDR_HOST_MAX];
	const char	*zone;
	size_t		 n;

	if (*host == '\0') {
		*cause = xasprintf("invalid address \"%s\": empty host", text);
		return -1;
	}
	zone = strchr(host, '%');
	n = zone != NULL ? (size_t)(zone - host) : strlen(host);
	if (n >= sizeof bare || (zone != NULL && zone[1] == '\0'))
		goto bad;
	memcpy(bare, host, n);
	bare[n] = '\0';
	if (inet_pton(AF_INET6, bare, &a) != 1)
		goto bad;
	return 0;
bad:
	*cause = xasprintf("invalid IPv6 address \"%s\" in \"%s\"", host,
	    text);
	return -1;
}

/*
 * Explain an unbracketed IPv6 address. Without brackets "::1:80" could be
 * the address ::1:80 or ::1 port 80, so we refuse and show the fix.
 */
static void
addr_hint_brackets(const char *text, const char *colon, char **cause)
{
	struct in6_addr	 a;
	char		 before[ADDR_HOST_MAX];
	size_t		 n = (size_t)(colon - text);
	const char	*p;
	int		 digits = colon[1] != '\0';

	for (p = colon + 1; *p != '\0'; p++)
		if (*p < '0' || *p > '9')
			digits = 0;
	if (n < sizeof before) {
		memcpy(before, text, n);
		before[n] = '\0';
		if (digits && inet_pton(AF_INET6, before, &a) == 1) {
			*cause = xasprintf("invalid address \"%s\": put an "
			    "IPv6 address in brackets, e.g. \"[%s]:%s\"",
			    text, before, colon + 1);
			return;
		}
	}
	if (inet_pton(AF_INET6, text, &a) == 1) {
		*cause = xasprintf("invalid address \"%s\": put an IPv6 "
		    "address in brackets and add a port, e.g. \"[%s]:PORT\"",
		    text, text);
		return;
	}
	*cause = xasprintf("invalid address \"%s\": " ADDR_EXPECTED
	    " (IPv6 addresses go in brackets)", text);
}

/* Parse "unix:/abs/path" into *out; 0 or -1 with *cause. */
static int
addr_parse_unix(const char *text, int flags, struct addr *out, char **cause)
{
	const char		*path = text + 5;
	struct sockaddr_un	 sun;
	size_t			 len = strlen(path);

	if (!(flags & ADDR_ALLOW_UNIX)) {
		*cause = xstrdup("\"unix:\" targets are not allowed here");
		return -1;
	}
	if (*path != '/') {
		*cause = xasprintf("unix socket path \"%s\" must be absolute",
		    path);
		return -1;
	}
	/* The path must fit sockaddr_un with its NUL, or connect() fails. */
	if (len >= sizeof sun.sun_path || len >= ADDR_HOST_MAX) {
		*cause = xasprintf("unix socket path \"%s\" is too long "
		    "(%zu bytes, at most %zu)", path, len,
		    sizeof sun.sun_path - 1);
		return -1;
	}
	out->kind = ADDR_UNIX;
	memcpy(out->host, path, len + 1);
	out->port = 0;
	return 0;
}

/* Parse text into *out (see addr.h); 0 or -1 with *cause. */
int
addr_parse(const char *text, const char *default_host, int flags,
    struct addr *out, char **cause)
{
	struct addr	 a;
	const char	*colon, *close, *p;
	char		*host = NULL;
	int		 rv = -1, all_digits = 1;

	memset(&a, 0, sizeof a);
	*cause = NULL;
	if (*text == '\0') {
		*cause = xstrdup("empty address: " ADDR_EXPECTED);
		goto out;
	}
	if (strncmp(text, "unix:", 5) == 0) {
		if (addr_parse_unix(text, flags, &a, cause) == -1)
			goto out;
		rv = 0;
		goto out;
	}
	a.kind = ADDR_INET;
	for (p = text; *p != '\0'; p++)
		if (*p < '0' || *p > '9')
			all_digits = 0;
	if (all_digits) {
		if (addr_parse_port(text, text, flags, &a.port, cause) == -1)
			goto out;
		if (strlen(default_host) >= sizeof a.host) {
			*cause = xstrdup("default host is too long");
			goto out;
		}
		memcpy(a.host, default_host, strlen(default_host) + 1);
		rv = 0;
		goto out;
	}
	if (*text == '[') {
		close = strchr(text, ']');
		if (close == NULL || close[1] != ':') {
			*cause = xasprintf("invalid address \"%s\": "
			    ADDR_EXPECTED, text);
			goto out;
		}
		host = xstrndup(text + 1, (size_t)(close - text - 1));
		if (addr_check_ipv6(text, host, cause) == -1)
			goto out;
		if (addr_parse_port(text, close + 2, flags, &a.port,
		    cause) == -1)
			goto out;
	} else {
		colon = strrchr(text, ':');
		if (colon == NULL) {
			*cause = xasprintf("invalid address \"%s\": "
			    ADDR_EXPECTED, text);
			goto out;
		}
		if (memchr(text, ':', (size_t)(colon - text)) != NULL) {
			addr_hint_brackets(text, colon, cause);
			goto out;
		}
		host = xstrndup(text, (size_t)(colon - text));
		if (addr_check_host(text, host, cause) == -1)
			goto out;
		if (addr_parse_port(text, colon + 1, flags, &a.port,
		    cause) == -1)
			goto out;
	}
	/* Both checks above bound the length below ADDR_HOST_MAX. */
	memcpy(a.host, host, strlen(host) + 1);
	rv = 0;
out:
	free(host);
	if (rv == 0)
		*out = a;
	return rv;
}

/* Format an address as "host:port", "[v6]:port" or "unix:/path". */
void
addr_format(const struct addr *a, char *buf, size_t len)
{
	if (a->kind == ADDR_UNIX)
		snprintf(buf, len, "unix:%s", a->host);
	else if (addr_is_ipv6(a))
		snprintf(buf, len, "[%s]:%d", a->host, a->port);
	else
		snprintf(buf, len, "%s:%d", a->host, a->port);
}

/* 1 if the host is an IPv6 literal. */
int
addr_is_ipv6(const struct addr *a)
{
	return a->kind == ADDR_INET && strchr(a->host, ':') != NULL;
}

/* 1 if both addresses are spelled the same. */
int
addr_equal(const struct addr *a, const struct addr *b)
{
	return a->kind == b->kind && a->port == b->port &&
	    strcmp(a->host, b->host) == 0;
}
