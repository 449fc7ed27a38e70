/*
 * Name resolution that never stalls the loop: getaddrinfo_a, completion
 * delivered through signalfd. IP literals resolve at once (still reported
 * asynchronously, so callers have one code path).
 */
#ifndef TUNNELS_RESOLVE_H
#define TUNNELS_RESOLVE_H

#include <sys/socket.h>

#define RESOLVE_MAX_ADDRS	8

struct loop;
struct resolver;
struct resolve_req;

struct resolve_result {
	struct sockaddr_storage	addrs[RESOLVE_MAX_ADDRS];
	socklen_t		lens[RESOLVE_MAX_ADDRS];
	int			n;
};

/* Called once: result on success, or error text (res NULL). */
typedef void resolve_cb(void *arg, const struct resolve_result *res,
    const char *error);

struct resolver		*resolver_new(struct loop *);
void			 resolver_free(struct resolver *);
struct resolve_req	*resolve_start(struct resolver *, const char *host,
			    int port, resolve_cb *, void *arg);
/* The callback will not be called; safe on a request that completed. */
void			 resolve_cancel(struct resolve_req *);

#endif
