/*
 * TCP connects to a server's resolved addresses, raced as in "Happy
 * Eyeballs" (RFC 8305): families interleaved, a new attempt every 250 ms
 * or as soon as one fails, each with its own deadline, the first to
 * connect wins. Runs on the loop; nothing blocks.
 */
#ifndef TUNNELS_DIAL_H
#define TUNNELS_DIAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* RFC 8305 §5: the recommended "connection attempt delay". */
#define DIAL_ATTEMPT_DELAY_MS	250
/* Attempts in flight at once (the rest wait for one to end). */
#define DIAL_MAX_INFLIGHT	4

struct loop;
struct dial;
struct resolve_result;

struct dial_result {
	int		 fd;		/* the connected socket, -1 if none */
	const char	*address;	/* the winner, "1.2.3.4:22" */
	const char	*error;		/* when all failed: each address, cause */
	int		 cheap;		/* every failure refused/unreachable */
	int		 tried;		/* addresses attempted */
};

/*
 * Called once with the winner (whose fd the callback now owns, still
 * non-blocking) or with the error. The dial is gone when it is called:
 * never dial_cancel() it from there.
 */
typedef void dial_cb(void *arg, const struct dial_result *);

/* Race the addresses of res (copied); timeout_ms bounds each attempt. */
struct dial	*dial_start(struct loop *, const struct resolve_result *res,
		    int64_t timeout_ms, dial_cb *, void *arg);
/* Close every attempt and free; the callback will not run. NULL is ok. */
void		 dial_cancel(struct dial *);
/*
 * One non-blocking connect (also the bridges' local connects): 1 in
 * progress, 0 connected at once, -1 with errno (nothing left open).
 */
int		 dial_socket(const struct sockaddr *, socklen_t, int *fd);

/*
 * Pure helpers, exposed for the unit tests. dial_order writes into
 * order[] the indexes of res in attempt order: families interleaved,
 * starting with the family of the first result, each family keeping its
 * own order (RFC 8305 §4). Returns the count (res->n).
 */
int		 dial_order(const struct resolve_result *res, int *order);
/* "1.2.3.4:22" or "[::1]:22" (numeric), "?" if unprintable. */
void		 dial_format(const struct sockaddr *, socklen_t, char *out,
		    size_t len);
/* 1 if a connect failing with err cost the server nothing. */
int		 dial_cheap(int err);

#endif
