/*
 * Endpoint addresses as written in the config: "4001", "host:4001",
 * "127.0.0.1:4001", "[::1]:4001", "unix:/run/app.sock". Pure: no I/O.
 */
#ifndef TUNNELS_ADDR_H
#define TUNNELS_ADDR_H

#include <stddef.h>

#define ADDR_HOST_MAX	256	/* host name, IP literal or unix path (+NUL) */
#define ADDR_TEXT_MAX	(ADDR_HOST_MAX + 16)

enum addr_kind {
	ADDR_INET = 0,		/* host (name or literal) + port */
	ADDR_UNIX		/* unix stream socket path in host[] */
};

struct addr {
	enum addr_kind	kind;
	char		host[ADDR_HOST_MAX];	/* without brackets */
	int		port;			/* 0..65535; 0 for unix */
};

/* What a caller accepts from addr_parse. */
#define ADDR_ALLOW_UNIX		0x1	/* "unix:/path" */
#define ADDR_ALLOW_PORT_ZERO	0x2	/* port 0: server allocates */

/*
 * Parse text into *out. A bare port gets default_host. Returns 0, or -1
 * with *cause set to a malloc'd message such as
 * "port 70000 out of range (1-65535)".
 */
int	 addr_parse(const char *text, const char *default_host, int flags,
	    struct addr *out, char **cause);

/* Format as "127.0.0.1:4001", "[::1]:4001" or "unix:/path". */
void	 addr_format(const struct addr *, char *buf, size_t len);

/* 1 if host is an IPv6 literal (contains ':'). */
int	 addr_is_ipv6(const struct addr *);

/* 1 if both addresses are the same endpoint (same spelling). */
int	 addr_equal(const struct addr *, const struct addr *);

#endif
