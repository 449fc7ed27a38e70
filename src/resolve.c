/*
 * Asynchronous name resolution. glibc's getaddrinfo_a runs lookups on its
 * own helper threads and signals completion with a queued real-time
 * signal, which the loop reads from its signalfd; nothing of ours runs off
 * the main thread.
 */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "resolve.h"
#include "util.h"

struct resolve_req {
	struct resolver		*r;
	struct gaicb		 gcb;
	struct addrinfo		 hints;
	char			*host;
	char			 service[8];
	resolve_cb		*cb;
	void			*arg;
	int			 cancelled;	/* free when glibc is done */
	int			 numeric;	/* resolved at once, posted */
	const char		*error;		/* for a posted failure */
	struct resolve_result	 result;
	struct loop_post	 post;
	struct resolve_req	*next;
};

struct resolver {
	struct loop		*loop;
	struct resolve_req	*reqs;		/* lookups in glibc's hands */
	int			 signo;
};

static void	resolver_signal(void *, int);

/* Create a resolver bound to the loop's signalfd. */
struct resolver *
resolver_new(struct loop *l)
{
	struct resolver	*r = xcalloc(1, sizeof *r);

	r->loop = l;
	r->signo = SIGRTMIN;
	if (loop_signal(l, r->signo, resolver_signal, r) == -1) {
		free(r);
		return NULL;
	}
	return r;
}

/* Free a request and its glibc result. */
static void
resolve_req_free(struct resolve_req *q)
{
	if (q->gcb.ar_result != NULL)
		freeaddrinfo(q->gcb.ar_result);
	free(q->host);
	free(q);
}

/* Drop every request; lookups still running are cancelled or abandoned. */
void
resolver_free(struct resolver *r)
{
	struct resolve_req	*q;

	if (r == NULL)
		return;
	while ((q = r->reqs) != NULL) {
		r->reqs = q->next;
		/* A lookup glibc will not cancel is leaked: we are exiting. */
		if (gai_cancel(&q->gcb) != EAI_NOTCANCELED)
			resolve_req_free(q);
	}
	free(r);
}

/* Copy an addrinfo list into a result (at most RESOLVE_MAX_ADDRS). */
static void
resolve_copy(struct resolve_result *res, const struct addrinfo *ai)
{
	res->n = 0;
	for (; ai != NULL && res->n < RESOLVE_MAX_ADDRS; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof res->addrs[0])
			continue;
		memcpy(&res->addrs[res->n], ai->ai_addr, ai->ai_addrlen);
		res->lens[res->n] = ai->ai_addrlen;
		res->n++;
	}
}

/* Deliver a literal address that resolved synchronously. */
static void
resolve_numeric_done(void *arg)
{
	struct resolve_req	*q = arg;

	if (q->error != NULL)
		q->cb(q->arg, NULL, q->error);
	else
		q->cb(q->arg, &q->result, NULL);
	free(q->host);
	free(q);
}

/* Check every pending lookup after a completion signal. */
static void
resolver_signal(void *arg, int signo)
{
	struct resolver		*r = arg;
	struct resolve_req	**qp = &r->reqs, *q;
	int			  err;

	(void)signo;
	while ((q = *qp) != NULL) {
		err = gai_error(&q->gcb);
		if (err == EAI_INPROGRESS) {
			qp = &q->next;
			continue;
		}
		*qp = q->next;
		if (!q->cancelled) {
			if (err == 0) {
				resolve_copy(&q->result, q->gcb.ar_result);
				q->cb(q->arg, &q->result, NULL);
			} else
				q->cb(q->arg, NULL, err == EAI_SYSTEM ?
				    strerror(errno) : gai_strerror(err));
		}
		resolve_req_free(q);
	}
}

/* Start resolving host:port for a TCP connection. */
struct resolve_req *
resolve_start(struct resolver *r, const char *host, int port, resolve_cb *cb,
    void *arg)
{
	struct resolve_req	*q = xcalloc(1, sizeof *q);
	struct gaicb		*list[1];
	struct sigevent		 sev;
	struct addrinfo		*ai = NULL;
	int			 err;

	q->r = r;
	q->host = xstrdup(host);
	q->cb = cb;
	q->arg = arg;
	snprintf(q->service, sizeof q->service, "%d", port);
	q->hints.ai_socktype = SOCK_STREAM;
	q->hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	loop_post_init(&q->post, resolve_numeric_done, q);
	if (getaddrinfo(q->host, q->service, &q->hints, &ai) == 0) {
		resolve_copy(&q->result, ai);
		freeaddrinfo(ai);
		q->numeric = 1;
		loop_post(r->loop, &q->post);
		return q;
	}
	q->hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
	q->gcb.ar_name = q->host;
	q->gcb.ar_service = q->service;
	q->gcb.ar_request = &q->hints;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = r->signo;
	list[0] = &q->gcb;
	err = getaddrinfo_a(GAI_NOWAIT, list, 1, &sev);
	if (err != 0) {
		/* Report the failure asynchronously like any other. */
		q->numeric = 1;
		q->error = gai_strerror(err);
		loop_post(r->loop, &q->post);
		return q;
	}
	q->next = r->reqs;
	r->reqs = q;
	return q;
}

/* Forget a request: its callback will not run. */
void
resolve_cancel(struct resolve_req *q)
{
	struct resolve_req	**qp;

	if (q == NULL)
		return;
	if (q->numeric) {
		loop_post_cancel(q->r->loop, &q->post);
		free(q->host);
		free(q);
		return;
	}
	if (gai_cancel(&q->gcb) == EAI_NOTCANCELED) {
		/* Still running in glibc: free it when the signal comes. */
		q->cancelled = 1;
		return;
	}
	for (qp = &q->r->reqs; *qp != NULL; qp = &(*qp)->next) {
		if (*qp == q) {
			*qp = q->next;
			break;
		}
	}
	resolve_req_free(q);
}
