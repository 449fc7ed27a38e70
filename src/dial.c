/*
 * Happy Eyeballs for the SSH connection (RFC 8305 §4-5). A name that
 * resolves to an IPv6 and an IPv4 address must not hang on the first one
 * when its path black-holes SYNs: attempts start one after the other,
 * DIAL_ATTEMPT_DELAY_MS apart (at once when the previous one fails), run
 * side by side, and the first socket to connect wins; the others are
 * closed. Each attempt has its own deadline, so every address is blamed
 * for its own failure.
 *
 * Everything runs from loop callbacks: dial_start() only posts the first
 * step, so the caller always hears back asynchronously, and the dial is
 * freed through the loop's deferred frees, because events for its other
 * sockets may still be queued in the same epoll batch.
 */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "dial.h"
#include "loop.h"
#include "resolve.h"
#include "util.h"

/* err value of an attempt that hit its deadline. */
#define DIAL_ERR_DEADLINE	(-1)

struct dial_attempt {
	struct dial		*d;
	int			 idx;		/* into d->res */
	int			 fd;		/* -1 when not running */
	int			 err;		/* 0, an errno, DIAL_ERR_DEADLINE */
	struct loop_io		 io;
	struct loop_timer	 deadline;
};

struct dial {
	struct loop		*loop;
	struct resolve_result	 res;
	int			 n;
	int			 next;		/* the next attempt to start */
	int			 inflight;
	int64_t			 timeout_ms;
	struct dial_attempt	 att[RESOLVE_MAX_ADDRS];	/* by position */
	struct loop_timer	 delay;		/* starts the next attempt */
	struct loop_post	 kick;		/* the first step */
	dial_cb			*cb;
	void			*arg;
	int			 done;		/* reported, or cancelled */
};

static void	dial_step(struct dial *);

/* Interleave the families of res, first family first (RFC 8305 §4). */
int
dial_order(const struct resolve_result *res, int *order)
{
	int	same[RESOLVE_MAX_ADDRS], other[RESOLVE_MAX_ADDRS];
	int	nsame = 0, nother = 0, i, j, n = 0, max;

	max = MIN(res->n, RESOLVE_MAX_ADDRS);
	for (i = 0; i < max; i++) {
		if (res->addrs[i].ss_family == res->addrs[0].ss_family)
			same[nsame++] = i;
		else
			other[nother++] = i;
	}
	for (i = j = 0; i < nsame || j < nother;) {
		if (i < nsame)
			order[n++] = same[i++];
		if (j < nother)
			order[n++] = other[j++];
	}
	return n;
}

/* Format a socket address as "1.2.3.4:22" or "[::1]:22". */
void
dial_format(const struct sockaddr *sa, socklen_t len, char *out, size_t outlen)
{
	char	host[NI_MAXHOST], port[NI_MAXSERV];

	if (getnameinfo(sa, len, host, sizeof host, port, sizeof port,
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(out, outlen, "?");
		return;
	}
	snprintf(out, outlen, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
	    host, port);
}

/*
 * 1 if a connect failing with err cost the server nothing: nothing
 * listened, there was no path, or nothing answered in time. Local trouble
 * (no fds, a policy refusing the socket) is not cheap: retrying it fast
 * only spins.
 */
int
dial_cheap(int err)
{
	switch (err) {
	case DIAL_ERR_DEADLINE:
	case ECONNREFUSED:
	case ENETUNREACH:
	case EHOSTUNREACH:
	case ENETDOWN:
	case EHOSTDOWN:
	case ETIMEDOUT:
	case EADDRNOTAVAIL:
	case EAFNOSUPPORT:
		return 1;
	default:
		return 0;
	}
}

/*
 * A non-blocking stream socket connecting to sa: 1 while the connect is
 * in progress, 0 if it connected at once, -1 (errno set, nothing left
 * open) if it failed.
 */
int
dial_socket(const struct sockaddr *sa, socklen_t len, int *fdp)
{
	int	fd, err;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		return -1;
	if (connect(fd, sa, len) == 0) {
		*fdp = fd;
		return 0;
	}
	if (errno != EINPROGRESS) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	*fdp = fd;
	return 1;
}

/* Stop watching and close one attempt's socket (keeps its err). */
static void
dial_attempt_close(struct dial *d, struct dial_attempt *a)
{
	loop_timer_stop(d->loop, &a->deadline);
	if (a->fd == -1)
		return;
	loop_io_del(d->loop, &a->io);
	close(a->fd);
	a->fd = -1;
	d->inflight--;
}

/* Close everything and stop every timer and post. */
static void
dial_close_all(struct dial *d)
{
	int	i;

	for (i = 0; i < d->n; i++)
		dial_attempt_close(d, &d->att[i]);
	loop_timer_stop(d->loop, &d->delay);
	loop_post_cancel(d->loop, &d->kick);
}

/* Append "ADDR: cause" of one failed attempt to the error text. */
static void
dial_describe(const struct dial *d, const struct dial_attempt *a,
    struct buf *b)
{
	const struct sockaddr	*sa;
	char			 text[ADDR_TEXT_MAX], *cause;

	sa = (const struct sockaddr *)&d->res.addrs[a->idx];
	dial_format(sa, d->res.lens[a->idx], text, sizeof text);
	if (b->len > 0)
		buf_printf(b, "; ");
	if (a->err == DIAL_ERR_DEADLINE) {
		if (d->timeout_ms % 1000 == 0)
			buf_printf(b, "%s: timed out after %llds", text,
			    (long long)d->timeout_ms / 1000);
		else
			buf_printf(b, "%s: timed out after %lldms", text,
			    (long long)d->timeout_ms);
		return;
	}
	/* "Connection refused" reads as "connection refused" mid-line. */
	cause = xstrdup(strerror(a->err));
	cause[0] = (char)tolower((unsigned char)cause[0]);
	buf_printf(b, "%s: %s", text, cause);
	free(cause);
}

/* Report and free: the winner's fd (handed over) or the failures. */
static void
dial_finish(struct dial *d, struct dial_attempt *win)
{
	struct dial_result	 r;
	struct buf		 err;
	char			 text[ADDR_TEXT_MAX];
	int			 i;

	memset(&r, 0, sizeof r);
	r.fd = -1;
	buf_init(&err);
	if (win != NULL) {
		/* Hand the socket over before closing the losers. */
		loop_io_del(d->loop, &win->io);
		loop_timer_stop(d->loop, &win->deadline);
		r.fd = win->fd;
		win->fd = -1;
		d->inflight--;
		dial_format((const struct sockaddr *)&d->res.addrs[win->idx],
		    d->res.lens[win->idx], text, sizeof text);
		r.address = text;
		r.tried = d->next;
	} else {
		r.cheap = 1;
		r.tried = d->next;
		for (i = 0; i < d->next; i++) {
			dial_describe(d, &d->att[i], &err);
			if (!dial_cheap(d->att[i].err))
				r.cheap = 0;
		}
		if (err.len == 0)
			buf_printf(&err, "no address to connect to");
		r.error = buf_cstr(&err);
	}
	dial_close_all(d);
	d->done = 1;
	d->cb(d->arg, &r);
	buf_clear(&err);
	loop_defer_free(d->loop, free, d);
}

/* One attempt failed (err): forget it and start the next at once. */
static void
dial_attempt_failed(struct dial *d, struct dial_attempt *a, int err)
{
	a->err = err;
	dial_attempt_close(d, a);
	loop_timer_stop(d->loop, &d->delay);
	dial_step(d);
}

/* A socket became writable or failed: the connect finished. */
static void
dial_on_io(void *arg, uint32_t events)
{
	struct dial_attempt	*a = arg;
	struct dial		*d = a->d;
	socklen_t		 len = sizeof(int);
	int			 err = 0;

	if (d->done || a->fd == -1)
		return;
	if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		dial_attempt_failed(d, a, err);
		return;
	}
	if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
		dial_finish(d, a);
}

/* An attempt's own deadline passed. */
static void
dial_on_deadline(void *arg)
{
	struct dial_attempt	*a = arg;

	if (a->d->done || a->fd == -1)
		return;
	dial_attempt_failed(a->d, a, DIAL_ERR_DEADLINE);
}

/* The attempt delay passed: start the next address. */
static void
dial_on_delay(void *arg)
{
	struct dial	*d = arg;

	if (!d->done)
		dial_step(d);
}

/* The first step, posted by dial_start(). */
static void
dial_on_kick(void *arg)
{
	struct dial	*d = arg;

	if (!d->done)
		dial_step(d);
}

/*
 * Start the socket of attempt a. Returns 1 when it is in flight, 0 when it
 * failed at once (a->err set), -1 when it connected at once.
 */
static int
dial_attempt_start(struct dial *d, struct dial_attempt *a)
{
	const struct sockaddr	*sa;
	socklen_t		 len;
	int			 fd;

	sa = (const struct sockaddr *)&d->res.addrs[a->idx];
	len = d->res.lens[a->idx];
	switch (dial_socket(sa, len, &fd)) {
	case -1:
		a->err = errno;
		return 0;
	case 0:
		/* Possible in principle: report it like a finished connect. */
		a->fd = fd;
		d->inflight++;
		return -1;
	}
	if (loop_io_add(d->loop, &a->io, fd, EPOLLOUT) == -1) {
		a->err = errno;
		close(fd);
		return 0;
	}
	a->fd = fd;
	d->inflight++;
	loop_timer_in(d->loop, &a->deadline, d->timeout_ms);
	return 1;
}

/*
 * Start the next address unless too many are in flight: one per step
 * (then the attempt delay runs), or several in a row while they fail at
 * once. With nothing left to try and nothing in flight, report failure.
 */
static void
dial_step(struct dial *d)
{
	struct dial_attempt	*a;

	while (d->next < d->n && d->inflight < DIAL_MAX_INFLIGHT) {
		a = &d->att[d->next++];
		switch (dial_attempt_start(d, a)) {
		case 1:
			if (d->next < d->n)
				loop_timer_in(d->loop, &d->delay,
				    DIAL_ATTEMPT_DELAY_MS);
			return;
		case -1:
			dial_finish(d, a);
			return;
		default:
			break;
		}
	}
	if (d->inflight == 0)
		dial_finish(d, NULL);
}

/* Begin racing the addresses of res; the first step runs from the loop. */
struct dial *
dial_start(struct loop *l, const struct resolve_result *res,
    int64_t timeout_ms, dial_cb *cb, void *arg)
{
	struct dial	*d = xcalloc(1, sizeof *d);
	int		 i, order[RESOLVE_MAX_ADDRS];

	d->loop = l;
	d->res = *res;
	if (d->res.n > RESOLVE_MAX_ADDRS)
		d->res.n = RESOLVE_MAX_ADDRS;
	d->n = dial_order(&d->res, order);
	d->timeout_ms = timeout_ms;
	d->cb = cb;
	d->arg = arg;
	for (i = 0; i < d->n; i++) {
		d->att[i].d = d;
		d->att[i].idx = order[i];
		d->att[i].fd = -1;
		loop_io_init(&d->att[i].io, dial_on_io, &d->att[i]);
		loop_timer_init(&d->att[i].deadline, dial_on_deadline,
		    &d->att[i]);
	}
	loop_timer_init(&d->delay, dial_on_delay, d);
	loop_post_init(&d->kick, dial_on_kick, d);
	loop_post(l, &d->kick);
	return d;
}

/* Abandon the race: close every socket; the callback never runs. */
void
dial_cancel(struct dial *d)
{
	if (d == NULL || d->done)
		return;
	dial_close_all(d);
	d->done = 1;
	loop_defer_free(d->loop, free, d);
}
