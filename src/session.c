/*
 * One libssh2 session per server.
 *
 * States: connecting -> handshake -> hostkey -> auth -> up, and on any
 * failure backoff -> connecting again; failed for permanent errors (host
 * key, auth) which retry only at the backoff cap.
 *
 * All libssh2 calls happen in session_service(), which is never called
 * directly: fd events, timers and the bridges only post it. libssh2 has
 * one outbound packet slot per session, and a call whose packet it could
 * not send would have to be repeated, with the same arguments from the
 * same stack depth, before any other (docs/libssh2.md rules 1 and 2). The
 * link (link.c) takes every packet, so that never happens: every step
 * below may return EAGAIN and simply be tried again on a later round, in
 * any order. session_check_slot() verifies it after every round.
 *
 * Below the session: link.c (the socket as libssh2 sees it), probe.c
 * (the liveness probe), reclaim.c (stale server sessions), forward.c (one
 * tunnel each) and, below the forwards, bridge.c (one connection each).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libssh2.h>

#include "addr.h"
#include "algos.h"
#include "backoff.h"
#include "config.h"
#include "dial.h"
#include "forward.h"
#include "hostkey.h"
#include "json.h"
#include "kexinit.h"
#include "keyfile.h"
#include "link.h"
#include "log.h"
#include "loop.h"
#include "msmath.h"
#include "probe.h"
#include "reclaim.h"
#include "resolve.h"
#include "runtime.h"
#include "session.h"
#include "sshmem.h"
#include "ssherr.h"
#include "sweep.h"

/* Upper bound on the libssh2_session_free() retries after shutdown(). */
#define SESSION_FREE_TRIES	64
/*
 * Past this fraction of max_session_memory, connections whose local side
 * stopped reading are closed: at one byte per packet, the 2 MiB window of
 * a single such connection is some 400 MB of libssh2 packets, which the
 * cap would otherwise answer by dropping the whole session.
 */
#define SESSION_SHED_DIV	2
/* What one service round reads off the socket at most (session_run). */
#define SESSION_RX_ROUND	(1024 * 1024)
/* After ending a stale session, re-requests are retried quickly this long. */
#define SESSION_QUICK_RETRY_MS	3000

/* How expensive a failure was for the server: decides the retry delay. */
enum session_fail {
	SESSION_FAIL_CHEAP = 0,	/* refused/unreachable: retry soon */
	SESSION_FAIL_COSTLY,	/* handshake, auth work, timeouts */
	SESSION_FAIL_LOST,	/* an established session went away */
	SESSION_FAIL_PERMANENT	/* host key, auth refused: at the cap */
};

struct session {
	struct runtime			*rt;
	const struct config_server	*cfg;
	char				*name;

	enum session_state		 state;
	int64_t				 since_ms;
	char				*last_error;
	unsigned			 connects;
	int				 settled;	/* an attempt failed */
	struct backoff			 bo;
	struct log_limit		 loglim;
	struct log_limit		 shedlim;	/* session_shed */

	struct loop_timer		 timer;	/* deadline or retry */
	struct loop_timer		 alive;	/* liveness checks */
	struct loop_post		 post;	/* session_service */
	struct loop_io			 io;
	uint32_t			 revents;

	struct resolve_req		*rq;
	struct dial			*dial;	/* TCP connects in flight */
	char				 address[ADDR_TEXT_MAX];

	struct link			 link;	/* the socket, fd -1 when none */
	LIBSSH2_SESSION			*ss;
	struct sshmem			 mem;	/* everything libssh2 holds */
	struct kexinit			 kex;	/* the server's cleartext hello */
	char				*hostkey_offer;	/* algorithms asked for */
	int				 peer_closed;	/* recv saw EOF */
	int				 goodbye;	/* DISCONNECT sent */
	char				*passphrase;
	char				*disconnect_msg;	/* the server's */
	char				*deadline_msg;	/* connect_timeout passed */
	int64_t				 up_at_ms;
	uint64_t			 auth_gen;	/* rt->config_gen at login */
	int				 refresh;	/* log in again (policy) */
	int				 alive_expired;
	int				 pumped;	/* a listener reads */

	struct forward			**fw;
	size_t				  nfw, capfw;
	struct forward_limits		  conns;	/* max_connections */
	int64_t				  rtt_ms;	/* least seen; 0: none */
	char				 *rx_spare;	/* sweep.spare */
	size_t				  mem_peak;	/* of connections gone */

	/*
	 * Requests in flight and since when (the request deadline): the
	 * two one-at-a-time slots, and the replies the probe and the reclaim
	 * job wait for.
	 */
	struct ssh_slot			  listen;	/* forward_listen_ex */
	struct ssh_slot			  open;		/* channel open */
	struct ssh_slot			  wait_probe, wait_reclaim;

	struct probe			  probe;
	struct reclaim			 *reclaim;
};

static void	session_service(void *);
static void	session_connect(struct session *);

static const char *const session_state_names[] = {
	"stopped", "connecting", "handshake", "hostkey", "auth", "up",
	"backoff", "failed"
};

/*
 * The one setter of the state: logs every transition with its cause.
 * Failures that repeat (same cause) are folded by the rate limiter, and
 * the retries themselves are logged at debug level: a server down for an
 * hour must not write a line per second.
 */
static void
session_set_state(struct session *s, enum session_state st, const char *cause,
    const char *detail)
{
	int	pri = LOG_PRI_INFO;

	if (st == SESSION_FAILED)
		pri = LOG_PRI_ERR;
	else if (st == SESSION_BACKOFF)
		pri = LOG_PRI_WARNING;
	else if (st == SESSION_CONNECTING && (s->state == SESSION_BACKOFF ||
	    s->state == SESSION_FAILED))
		pri = LOG_PRI_DEBUG;
	if (cause != NULL && (st == SESSION_BACKOFF || st == SESSION_FAILED)) {
		free(s->last_error);
		s->last_error = xstrdup(cause);
	}
	if (st == SESSION_UP) {
		free(s->last_error);
		s->last_error = NULL;
	}
	if (s->state == st)
		return;
	if (st == SESSION_BACKOFF || st == SESSION_FAILED)
		log_limited(&s->loglim, loop_now(s->rt->loop), cause ? cause :
		    "", pri, s->name, NULL, "%s -> %s: %s%s",
		    session_state_names[s->state], session_state_names[st],
		    cause ? cause : "?", detail ? detail : "");
	else
		log_msg(pri, s->name, NULL, "%s -> %s%s%s",
		    session_state_names[s->state], session_state_names[st],
		    cause ? ": " : "", cause ? cause : "");
	s->state = st;
	s->since_ms = loop_now(s->rt->loop);
	runtime_changed(s->rt);
}

/* fd event: remember it and run the service after this round. */
static void
session_on_io(void *arg, uint32_t events)
{
	struct session	*s = arg;

	s->revents |= events;
	/* The kernel has something for us again (or an error to report). */
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		link_readable(&s->link);
	loop_post(s->rt->loop, &s->post);
}

/* Deadline or retry timer. */
static void
session_on_timer(void *arg)
{
	struct session	*s = arg;
	char		*msg;

	switch (s->state) {
	case SESSION_BACKOFF:
	case SESSION_FAILED:
		session_connect(s);
		return;
	case SESSION_CONNECTING:
		/*
		 * Only name resolution runs under this deadline: each TCP
		 * connect has its own (dial.c), and the handshake gets a
		 * fresh one once connected.
		 */
		msg = xasprintf("timed out after %llds",
		    (long long)s->cfg->connect_timeout_ms / 1000);
		break;
	case SESSION_HANDSHAKE:
	case SESSION_HOSTKEY:
	case SESSION_AUTH:
		msg = xasprintf("timed out after %llds during %s",
		    (long long)s->cfg->connect_timeout_ms / 1000,
		    session_state_names[s->state]);
		break;
	default:
		return;
	}
	/* The service fails the attempt (it may free libssh2 objects). */
	free(s->deadline_msg);
	s->deadline_msg = msg;
	loop_post(s->rt->loop, &s->post);
}

/*
 * How long the server may take to answer one request of ours: as long as
 * a connection may take to set up, or as long as silence may last before
 * the link counts as dead, whichever is longer.
 */
static int64_t
session_request_deadline_ms(const struct session *s)
{
	int64_t	ka = s->cfg->keepalive_ms, dead;

	dead = ka > INT64_MAX / s->cfg->keepalive_count ? INT64_MAX :
	    ka * s->cfg->keepalive_count;
	return MAX(s->cfg->connect_timeout_ms, dead);
}

/* Note what one kind of reply is awaited now (NULL: nothing). */
static void
session_wait_note(struct session *s, struct ssh_slot *w, const void *what)
{
	if (w->owner == what)
		return;
	w->owner = what;
	w->since_ms = loop_now(s->rt->loop);
}

/*
 * libssh2 holds more than half of max_session_memory: close the
 * connections whose local app stopped reading, since what the server
 * sends them is kept in libssh2 until it is read. Once their CLOSE is
 * answered, libssh2 frees what it kept; the session and every other
 * connection stay. (A server that keeps sending regardless meets the cap.)
 */
static void
session_shed(struct session *s)
{
	size_t	i, n = 0;

	if (s->mem.cap == 0 || s->mem.cost <= s->mem.cap / SESSION_SHED_DIV)
		return;
	for (i = 0; i < s->nfw; i++)
		n += forward_shed_stalled(s->fw[i]);
	if (n == 0)
		return;
	log_limited(&s->shedlim, loop_now(s->rt->loop), "shed",
	    LOG_PRI_WARNING, s->name, NULL, "closing %zu connection(s) whose "
	    "local side stopped reading: libssh2 holds %zu MiB for this "
	    "server, more than half of max_session_memory", n,
	    s->mem.cost >> 20);
	runtime_changed(s->rt);
}

/* Record the replies awaited after a round of the service. */
static void
session_wait_update(struct session *s)
{
	session_wait_note(s, &s->wait_probe, s->probe.ch);
	session_wait_note(s, &s->wait_reclaim, reclaim_awaiting(s->reclaim));
}

/* 1 if the request w stands for is in flight past the deadline. */
static int
session_wait_overdue(const struct session *s, const struct ssh_slot *w)
{
	return w->owner != NULL && loop_now(s->rt->loop) - w->since_ms >
	    session_request_deadline_ms(s);
}

/*
 * A request the server has not answered in time: why the session is
 * dead (malloc'd), or NULL. Packets of other kinds may still flow, so
 * the link's silence alone would never tell; and while one tcpip-forward
 * or channel open is in flight no other can be sent (docs/libssh2.md
 * rule 4), so waiting longer would stall every tunnel of the server.
 */
static char *
session_overdue(const struct session *s)
{
	char		 remote[ADDR_TEXT_MAX];
	long long	 secs = (long long)session_request_deadline_ms(s) / 1000;

	if (session_wait_overdue(s, &s->listen)) {
		forward_remote_text(s->listen.owner, remote, sizeof remote);
		return xasprintf("the server did not answer our tcpip-forward "
		    "for %s within %llds", remote, secs);
	}
	if (session_wait_overdue(s, &s->open))
		return xasprintf("the server did not answer our %s within "
		    "%llds", s->open.owner == &s->probe ? "liveness probe "
		    "(a channel open)" : "channel open for a command "
		    "(stale-session reclaim)", secs);
	if (session_wait_overdue(s, &s->wait_probe))
		return xasprintf("the server did not close the channel of our "
		    "liveness probe within %llds", secs);
	if (session_wait_overdue(s, &s->wait_reclaim))
		return xasprintf("the server did not %s within %llds",
		    strcmp(s->wait_reclaim.owner, "exec") == 0 ? "answer our "
		    "exec request (stale-session reclaim)" : "close the channel "
		    "of our command (stale-session reclaim)", secs);
	return NULL;
}

/* Liveness timer: probe after keepalive of silence, dead after count. */
static void
session_on_alive(void *arg)
{
	struct session	*s = arg;
	int64_t		 now = loop_now(s->rt->loop);
	int64_t		 silence = now - s->link.last_rx_ms;
	int64_t		 ka = s->cfg->keepalive_ms;
	int64_t		 dead = ms_mul(ka, s->cfg->keepalive_count);

	if (s->state != SESSION_UP)
		return;
	if (silence >= dead) {
		/* Torn down in the service, where it is safe; no re-arm. */
		s->alive_expired = 1;
		loop_post(s->rt->loop, &s->post);
		return;
	}
	if (silence >= ka)
		s->probe.wanted = 1;
	/* Also lets time-outs inside the service (a hung exec) be noticed. */
	loop_post(s->rt->loop, &s->post);
	/* Wake at the next probe time or at the death deadline. */
	loop_timer_at(s->rt->loop, &s->alive, silence >= ka ?
	    MIN(ms_add(now, ka), ms_add(s->link.last_rx_ms, dead)) :
	    ms_add(s->link.last_rx_ms, ka));
}

/*
 * libssh2 recv hook (see link.c). Until the key exchange, the bytes are
 * cleartext: keep the server's banner and KEXINIT to explain a failure.
 */
static ssize_t
session_recv(libssh2_socket_t fd, void *buf, size_t len, int flags,
    void **abstract)
{
	struct session	*s = *abstract;
	ssize_t		 n;

	n = link_recv(&s->link, loop_now(s->rt->loop), fd, buf, len, flags);
	if (fd != s->link.fd)
		return n;
	if (n > 0 && s->state == SESSION_HANDSHAKE)
		(void)kexinit_feed(&s->kex, buf, (size_t)n);
	else if (n == 0)
		s->peer_closed = 1;
	return n;
}

/* libssh2 send hook (see link.c). */
static ssize_t
session_send(libssh2_socket_t fd, const void *buf, size_t len, int flags,
    void **abstract)
{
	struct session	*s = *abstract;

	return link_send(&s->link, fd, buf, len, flags);
}

/* libssh2 allocation hooks: the session's own pool (see sshmem.c). */
static void *
session_mem_alloc(size_t n, void **abstract)
{
	struct session	*s = *abstract;

	return sshmem_alloc(&s->mem, n);
}

/* libssh2 realloc hook. */
static void *
session_mem_realloc(void *p, size_t n, void **abstract)
{
	struct session	*s = *abstract;

	return sshmem_realloc(&s->mem, p, n);
}

/* libssh2 free hook; abstract may live in the block being freed. */
static void
session_mem_free(void *p, void **abstract)
{
	struct session	*s = *abstract;

	sshmem_free(&s->mem, p);
}

/* libssh2 disconnect hook: keep the server's reason for the log. */
static void
session_on_disconnect(LIBSSH2_SESSION *ss, int reason, const char *msg,
    int msglen, const char *lang, int langlen, void **abstract)
{
	struct session	*s = *abstract;
	char		*text;

	(void)ss;
	(void)lang;
	(void)langlen;
	/* The server's words: printable and short before they reach a log. */
	text = str_sanitize(msg ? msg : "", msg && msglen > 0 ?
	    (size_t)msglen : 0, 200);
	free(s->disconnect_msg);
	s->disconnect_msg = xasprintf("the server disconnected (reason %d): "
	    "%s", reason, text);
	free(text);
}

/*
 * Apply the server's limits: connections, and how far receive windows
 * grow. Grown windows may hold a quarter of max_session_memory, so that
 * they never reach the shed mark (half of it) by themselves.
 */
static void
session_set_limits(struct session *s, const struct config_server *cfg)
{
	s->conns.max = cfg->max_connections;
	s->conns.win.session.limit = cfg->max_session_memory / 4;
	s->conns.win.ceiling = (uint32_t)MIN(cfg->max_receive_window,
	    UINT32_MAX);
}

/* Create the session of one server (not started). */
struct session *
session_new(struct runtime *rt, const struct config_server *cfg)
{
	struct session	*s = xcalloc(1, sizeof *s);

	s->rt = rt;
	s->cfg = cfg;
	s->name = xstrdup(cfg->name);
	link_init(&s->link);
	sshmem_init(&s->mem);
	kexinit_init(&s->kex);
	s->since_ms = loop_now(rt->loop);
	backoff_init(&s->bo, rt->backoff_initial_ms, rt->backoff_max_ms,
	    (uint64_t)loop_now(rt->loop) ^ (uintptr_t)s);
	loop_timer_init(&s->timer, session_on_timer, s);
	loop_timer_init(&s->alive, session_on_alive, s);
	loop_post_init(&s->post, session_service, s);
	loop_io_init(&s->io, session_on_io, s);
	s->reclaim = reclaim_new(cfg, rt->state_dir, rt->state_name);
	s->conns.win.daemon = &rt->window_budget;
	session_set_limits(s, cfg);
	return s;
}

/* Wipe and free the passphrase copy. */
static void
session_forget_passphrase(struct session *s)
{
	if (s->passphrase == NULL)
		return;
	explicit_bzero(s->passphrase, strlen(s->passphrase));
	free(s->passphrase);
	s->passphrase = NULL;
}

/*
 * Drop the connection now. shutdown() first: on a stalled link a
 * non-blocking libssh2_session_free() would otherwise wait for channel
 * closes that never come. Every libssh2 object of the session dies here.
 */
static void
session_teardown(struct session *s)
{
	size_t	leaked;
	int	i;

	resolve_cancel(s->rq);
	s->rq = NULL;
	dial_cancel(s->dial);
	s->dial = NULL;
	loop_timer_stop(s->rt->loop, &s->alive);
	probe_reset(&s->probe);
	s->alive_expired = 0;
	s->revents = 0;
	link_reset(&s->link);
	kexinit_clear(&s->kex);
	free(s->hostkey_offer);
	s->hostkey_offer = NULL;
	s->peer_closed = 0;
	session_forget_passphrase(s);
	if (s->link.fd != -1) {
		loop_io_del(s->rt->loop, &s->io);
		shutdown(s->link.fd, SHUT_RDWR);
	}
	memset(&s->listen, 0, sizeof s->listen);
	memset(&s->open, 0, sizeof s->open);
	memset(&s->wait_probe, 0, sizeof s->wait_probe);
	memset(&s->wait_reclaim, 0, sizeof s->wait_reclaim);
	free(s->rx_spare);
	s->rx_spare = NULL;
	if (s->ss != NULL) {
		/* Freeing must not fail for the cap it is freeing. */
		sshmem_set_cap(&s->mem, 0);
		for (i = 0; i < SESSION_FREE_TRIES; i++)
			if (libssh2_session_free(s->ss) != LIBSSH2_ERROR_EAGAIN)
				break;
		s->ss = NULL;
		/* Whatever libssh2 did not free itself goes now. */
		s->mem_peak = MAX(s->mem_peak, s->mem.cost_peak);
		leaked = s->mem.blocks;
		(void)sshmem_release(&s->mem);
		if (leaked > 0)
			log_debug(s->name, NULL, "freed %zu block(s) libssh2 "
			    "left behind", leaked);
	}
	if (s->link.fd != -1) {
		close(s->link.fd);
		s->link.fd = -1;
	}
}

/* Remove forward i from the session and free it. */
static void
session_forget_forward(struct session *s, size_t i)
{
	forward_free(s->fw[i]);
	memmove(&s->fw[i], &s->fw[i + 1], (s->nfw - i - 1) * sizeof *s->fw);
	s->nfw--;
}

/* Tear down and tell every forward (no libssh2 calls remain valid). */
static void
session_drop(struct session *s, const char *cause, int failed)
{
	size_t	i;

	session_teardown(s);
	/* The server said goodbye: its process is ending, not stale. */
	if (s->disconnect_msg != NULL)
		reclaim_session_ended(s->reclaim);
	else
		reclaim_session_down(s->reclaim);
	for (i = 0; i < s->nfw; i++)
		forward_session_down(s->fw[i], cause, failed);
	/* Tunnels being removed have nothing left to close: free them. */
	for (i = 0; i < s->nfw;) {
		if (forward_is_stopping(s->fw[i]))
			session_forget_forward(s, i);
		else
			i++;
	}
}

/*
 * libssh2 wanted more memory than max_session_memory: the reason, with
 * what the session held (before the teardown frees it).
 */
static char *
session_memory_cause(const struct session *s)
{
	char	cap[32];

	config_format_size(s->mem.cap, cap, sizeof cap);
	return xasprintf("the server made libssh2 hold more than %s "
	    "(max_session_memory; %zu bytes in %zu blocks when %zu more were "
	    "asked for: a flood of packets it keeps, such as unknown message "
	    "types, or of data for connections whose local side is not "
	    "reading): dropped", cap, s->mem.cost, s->mem.blocks,
	    s->mem.refused);
}

/* A connection attempt or the session failed: schedule the retry. */
static void
session_fail(struct session *s, enum session_fail kind, const char *cause)
{
	int64_t	 delay;
	char	*msg, *memcause = NULL;

	/*
	 * Whatever libssh2 made of a refused allocation (a lost connection,
	 * "channel not found"), the cause is the memory: say so, and back
	 * off as after any costly failure (no quick retry, and no reset for
	 * a session that stayed up: the server will do it again).
	 */
	if (s->mem.over) {
		cause = memcause = session_memory_cause(s);
		kind = SESSION_FAIL_COSTLY;
	} else if (s->state == SESSION_UP &&
	    loop_now(s->rt->loop) - s->up_at_ms >= BACKOFF_STABLE_MS)
		backoff_reset(&s->bo);
	switch (kind) {
	case SESSION_FAIL_CHEAP:
		delay = backoff_next_cheap(&s->bo);
		break;
	case SESSION_FAIL_LOST:
		/* The server was fine a moment ago: come back quickly. */
		delay = backoff_next_cheap(&s->bo);
		break;
	case SESSION_FAIL_PERMANENT:
		delay = backoff_at_cap(&s->bo);
		break;
	default:
		delay = backoff_next(&s->bo);
		break;
	}
	s->settled = 1;
	session_drop(s, cause, kind == SESSION_FAIL_PERMANENT);
	msg = xasprintf("; retry in %.1fs", (double)delay / 1000);
	session_set_state(s, kind == SESSION_FAIL_PERMANENT ? SESSION_FAILED :
	    SESSION_BACKOFF, cause, msg);
	free(msg);
	free(memcause);
	loop_timer_in(s->rt->loop, &s->timer, delay);
}

/* Start (or restart) connecting. */
void
session_start(struct session *s)
{
	session_connect(s);
}

/*
 * The race of TCP connects ended (dial.c): hand the winner to the service,
 * which starts SSH on it under a fresh connect_timeout, or fail with every
 * address's own cause.
 */
static void
session_dialed(void *arg, const struct dial_result *r)
{
	struct session	*s = arg;
	char		*msg;

	s->dial = NULL;
	if (r->fd == -1) {
		/* One address names itself; several need the host too. */
		if (r->tried > 1)
			msg = xasprintf("connect to %s: %s", s->cfg->host,
			    r->error);
		else
			msg = xasprintf("connect to %s", r->error);
		session_fail(s, r->cheap ? SESSION_FAIL_CHEAP :
		    SESSION_FAIL_COSTLY, msg);
		free(msg);
		return;
	}
	snprintf(s->address, sizeof s->address, "%s", r->address);
	if (loop_io_add(s->rt->loop, &s->io, r->fd, EPOLLOUT) == -1) {
		msg = xasprintf("connect to %s: epoll: %s", s->address,
		    strerror(errno));
		close(r->fd);
		session_fail(s, SESSION_FAIL_COSTLY, msg);
		free(msg);
		return;
	}
	s->link.fd = r->fd;
	/* Handshake and authentication: connect_timeout from now. */
	loop_timer_in(s->rt->loop, &s->timer, s->cfg->connect_timeout_ms);
	loop_post(s->rt->loop, &s->post);
}

/* Name lookup finished: race the TCP connects to its addresses. */
static void
session_resolved(void *arg, const struct resolve_result *res,
    const char *error)
{
	struct session	*s = arg;
	char		*msg;

	s->rq = NULL;
	if (res == NULL || res->n == 0) {
		msg = xasprintf("cannot resolve %s: %s", s->cfg->host,
		    error ? error : "no address");
		session_fail(s, SESSION_FAIL_COSTLY, msg);
		free(msg);
		return;
	}
	/* The connects have their own deadlines from here (dial.c). */
	loop_timer_stop(s->rt->loop, &s->timer);
	s->dial = dial_start(s->rt->loop, res, s->cfg->connect_timeout_ms,
	    session_dialed, s);
}

/* Begin a connection attempt: resolve, then connect. */
static void
session_connect(struct session *s)
{
	loop_timer_stop(s->rt->loop, &s->timer);
	session_teardown(s);
	free(s->disconnect_msg);
	s->disconnect_msg = NULL;
	free(s->deadline_msg);
	s->deadline_msg = NULL;
	session_set_state(s, SESSION_CONNECTING, NULL, NULL);
	/* This deadline covers the name lookup (see session_on_timer). */
	loop_timer_in(s->rt->loop, &s->timer, s->cfg->connect_timeout_ms);
	s->rq = resolve_start(s->rt->resolver, s->cfg->host, s->cfg->port,
	    session_resolved, s);
}

/*
 * A local file (known_hosts, identity, passphrase) could not be read: a
 * permanent error, unless the process or the system was out of file
 * descriptors (err), which is no fault of the configuration and passes.
 */
static enum session_fail
session_file_fail(int err)
{
	return err == EMFILE || err == ENFILE ? SESSION_FAIL_COSTLY :
	    SESSION_FAIL_PERMANENT;
}

/* TCP is connected: create the libssh2 session and start the handshake. */
static void
session_begin_ssh(struct session *s)
{
	char	*cause = NULL;

	link_sockopts(&s->link, s->cfg->keepalive_ms, s->cfg->keepalive_count);
	sshmem_set_cap(&s->mem, (size_t)s->cfg->max_session_memory);
	/* A new connection may take another path: learn its round trip. */
	s->rtt_ms = 0;
	s->ss = libssh2_session_init_ex(session_mem_alloc, session_mem_free,
	    session_mem_realloc, s);
	if (s->ss == NULL) {
		session_fail(s, SESSION_FAIL_COSTLY, "libssh2_session_init "
		    "failed");
		return;
	}
	libssh2_session_set_blocking(s->ss, 0);
	/*
	 * libssh2's own limit on a reply (tcpip-forward, channel open, exec;
	 * docs/libssh2.md rule 5) only backs up the session's request
	 * deadline, which says which request was not answered.
	 */
	libssh2_session_set_read_timeout(s->ss,
	    (long)MIN(session_request_deadline_ms(s) / 1000 + 5, 86400 * 7));
	libssh2_session_callback_set2(s->ss, LIBSSH2_CALLBACK_RECV,
	    (libssh2_cb_generic *)session_recv);
	libssh2_session_callback_set2(s->ss, LIBSSH2_CALLBACK_SEND,
	    (libssh2_cb_generic *)session_send);
	libssh2_session_callback_set2(s->ss, LIBSSH2_CALLBACK_DISCONNECT,
	    (libssh2_cb_generic *)session_on_disconnect);
	libssh2_session_banner_set(s->ss, "SSH-2.0-tunnels");
	if (algos_apply(s->ss, &cause) == -1) {
		session_fail(s, SESSION_FAIL_PERMANENT, cause);
		free(cause);
		return;
	}
	errno = 0;
	if (hostkey_prepare(s->ss, s->cfg, &s->hostkey_offer,
	    &cause) == -1) {
		session_fail(s, session_file_fail(errno), cause);
		free(cause);
		return;
	}
	s->link.last_rx_ms = loop_now(s->rt->loop);
	session_set_state(s, SESSION_HANDSHAKE, s->address, NULL);
}

/* The cause of a libssh2 failure, preferring the server's own reason. */
static char *
session_ssh_cause(struct session *s, const char *what, int rc)
{
	char	*why, *cause;

	if (s->disconnect_msg != NULL)
		return xasprintf("%s: %s", what, s->disconnect_msg);
	why = ssherr_describe(s->ss, rc);
	cause = xasprintf("%s: %s", what, why);
	free(why);
	return cause;
}

/* The session is authenticated: bring the tunnels up. */
static void
session_up(struct session *s)
{
	size_t	i;
	int64_t	now = loop_now(s->rt->loop);

	loop_timer_stop(s->rt->loop, &s->timer);
	session_forget_passphrase(s);
	s->connects++;
	s->up_at_ms = now;
	s->auth_gen = s->rt->config_gen;
	s->link.last_rx_ms = now;
	if (s->loglim.suppressed > 0)
		log_info(s->name, NULL, "the previous failure repeated %u more "
		    "times before this connection", s->loglim.suppressed);
	log_limit_reset(&s->loglim);
	log_info(s->name, NULL, "connected to %s as %s (%s, %s)", s->address,
	    s->cfg->user,
	    libssh2_session_methods(s->ss, LIBSSH2_METHOD_KEX),
	    libssh2_session_methods(s->ss, LIBSSH2_METHOD_CRYPT_CS));
	session_set_state(s, SESSION_UP, NULL, NULL);
	reclaim_session_up(s->reclaim);
	loop_timer_at(s->rt->loop, &s->alive, ms_add(now, s->cfg->keepalive_ms));
	for (i = 0; i < s->nfw; i++)
		forward_session_up(s->fw[i]);
}

/* Authenticate with the identity file. */
static void
session_auth(struct session *s)
{
	char	*cause = NULL;
	int	 rc, err;

	errno = 0;
	if (s->cfg->passphrase_file != NULL && s->passphrase == NULL &&
	    (s->passphrase = keyfile_read_passphrase(s->cfg->passphrase_file,
	    &cause)) == NULL) {
		session_fail(s, session_file_fail(errno), cause);
		free(cause);
		return;
	}
	errno = 0;
	rc = libssh2_userauth_publickey_fromfile_ex(s->ss, s->cfg->user,
	    (unsigned)strlen(s->cfg->user), NULL, s->cfg->identity,
	    s->passphrase);
	err = errno;
	if (rc == LIBSSH2_ERROR_EAGAIN)
		return;
	if (rc == 0) {
		session_up(s);
		return;
	}
	/*
	 * A connection that ends during authentication is not a refusal,
	 * whatever code libssh2 gives (-19 when sshd's LoginGraceTime ends a
	 * slow AuthorizedKeysCommand): it is worth another try soon.
	 */
	if (s->peer_closed || s->disconnect_msg != NULL) {
		cause = xasprintf("the server closed the connection during "
		    "authentication, before accepting or refusing the key "
		    "(sshd's LoginGraceTime passed: a slow "
		    "AuthorizedKeysCommand or an overloaded server?)%s%s",
		    s->disconnect_msg ? ": " : "",
		    s->disconnect_msg ? s->disconnect_msg : "");
		session_fail(s, SESSION_FAIL_COSTLY, cause);
		free(cause);
		return;
	}
	switch (rc) {
	case LIBSSH2_ERROR_AUTHENTICATION_FAILED:
	case LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
		cause = xasprintf("authentication refused: the server does not "
		    "accept the key %s for user \"%s\" (is its public key in "
		    "that user's authorized_keys?) (libssh2: %s, error %d)",
		    s->cfg->identity, s->cfg->user, ssherr_text(s->ss), rc);
		session_fail(s, SESSION_FAIL_PERMANENT, cause);
		break;
	case LIBSSH2_ERROR_FILE:
		/* Its fopen() failed for lack of fds: not the key's fault. */
		if (session_file_fail(err) != SESSION_FAIL_PERMANENT) {
			cause = xasprintf("cannot read identity %s: %s",
			    s->cfg->identity, strerror(err));
			session_fail(s, session_file_fail(err), cause);
			break;
		}
		/* libssh2 reports a wrong passphrase as a file error. */
		cause = xasprintf("cannot use identity %s: %s (wrong "
		    "passphrase, or an unsupported key format)",
		    s->cfg->identity, ssherr_text(s->ss));
		session_fail(s, SESSION_FAIL_PERMANENT, cause);
		break;
	default:
		cause = session_ssh_cause(s, "authentication", rc);
		session_fail(s, SESSION_FAIL_COSTLY, cause);
		break;
	}
	free(cause);
}

/*
 * The handshake failed: say why in words, from what the server sent in
 * clear. No algorithm in common is permanent (only a configuration change
 * on one side helps); a server that refuses before its banner (sshd's
 * MaxStartups) is worth another try.
 */
static void
session_handshake_failed(struct session *s, int rc)
{
	enum session_fail	 kind = SESSION_FAIL_COSTLY;
	const char		*pre = s->kex.pre_banner;
	char			*why, *cause;

	if ((why = algos_mismatch(&s->kex, s->hostkey_offer)) != NULL)
		kind = SESSION_FAIL_PERMANENT;
	else if (s->kex.banner == NULL && pre != NULL)
		why = xasprintf("the server answered \"%s\" instead of an SSH "
		    "banner%s", pre, strstr(pre, "MaxStartups") != NULL ?
		    " (it refuses new connections for now: too many "
		    "unauthenticated ones, sshd's MaxStartups)" :
		    " (is this port an SSH server?)");
	else if (s->kex.banner == NULL && s->disconnect_msg == NULL &&
	    (s->peer_closed || rc == LIBSSH2_ERROR_SOCKET_DISCONNECT ||
	    rc == LIBSSH2_ERROR_SOCKET_RECV))
		why = xstrdup("the server closed the connection before "
		    "sending its SSH banner (too many unauthenticated "
		    "connections: sshd's MaxStartups, or a TCP wrapper or "
		    "firewall refusing us)");
	if (why == NULL)
		cause = session_ssh_cause(s, "SSH handshake", rc);
	else
		cause = xasprintf("SSH handshake with %s: %s", s->address, why);
	session_fail(s, kind, cause);
	free(cause);
	free(why);
}

/*
 * Warn when the server left us only last-resort algorithms (a SHA-1 host
 * key signature is hostkey_verify's to explain).
 */
static void
session_check_weak(struct session *s)
{
	static const int	 methods[] = {
		LIBSSH2_METHOD_KEX,
		LIBSSH2_METHOD_CRYPT_CS, LIBSSH2_METHOD_CRYPT_SC,
		LIBSSH2_METHOD_MAC_CS, LIBSSH2_METHOD_MAC_SC
	};
	const char		*name;
	size_t			 i;

	for (i = 0; i < ARRAY_LEN(methods); i++) {
		name = libssh2_session_methods(s->ss, methods[i]);
		if (name != NULL && algos_weak(name))
			log_warn(s->name, NULL, "the server offers nothing "
			    "stronger than %s (SHA-1 or CBC): using it; update "
			    "the server's SSH configuration", name);
	}
}

/* Run the handshake, then verify the host key. */
static void
session_handshake(struct session *s)
{
	char	*cause = NULL;
	int	 rc;

	rc = libssh2_session_handshake(s->ss, s->link.fd);
	if (rc == LIBSSH2_ERROR_EAGAIN)
		return;
	if (rc != 0) {
		session_handshake_failed(s, rc);
		return;
	}
	kexinit_clear(&s->kex);
	session_check_weak(s);
	session_set_state(s, SESSION_HOSTKEY, NULL, NULL);
	if (hostkey_verify(s->ss, s->cfg, &cause) == -1) {
		session_fail(s, SESSION_FAIL_PERMANENT, cause);
		free(cause);
		return;
	}
	/* session_service() runs the auth phase next. */
	session_set_state(s, SESSION_AUTH, NULL, NULL);
}

/*
 * The refused-listener policy, all of it: a forward only reports that
 * the server refused its tcpip-forward (forward_take_refused); these two
 * functions decide what it waits for (forward_wait, whose delays and
 * messages are the forward's), end a stale session of ours through the
 * reclaim job, and re-request at once what waited for that.
 */

/* A forward was refused: decide why, and what to do about it. */
static void
session_on_refused(struct session *s, struct forward *f)
{
	struct reclaim	*r = s->reclaim;
	char		 why[256];
	int64_t		 ago;
	int		 stale;

	if (reclaim_killing(r) || reclaim_start_kill(r)) {
		forward_wait(f, FORWARD_WAIT_RECLAIM);
		return;
	}
	ago = reclaim_killed_ago(r, loop_now(s->rt->loop));
	if (ago >= 0 && ago < SESSION_QUICK_RETRY_MS) {
		/* The old process is exiting: its ports go in a moment. */
		forward_wait(f, FORWARD_WAIT_QUICK);
		return;
	}
	/* Granted before in this run, or a previous session existed. */
	stale = forward_ever_up(f) || reclaim_had_previous(r);
	if (!stale && s->auth_gen != s->rt->config_gen) {
		/*
		 * sshd applies a key's options (permitlisten) and Match
		 * blocks at login only: a tunnel added by a reload, refused
		 * on a session that logged in before it, may be allowed by
		 * the server's current policy. Log in again (once per
		 * reload) before calling it a policy refusal.
		 */
		s->refresh = 1;
		return;
	}
	if (!stale)
		forward_wait(f, FORWARD_WAIT_POLICY);
	else if (!s->cfg->reclaim_stale_port)
		forward_wait(f, FORWARD_WAIT_STALE_OFF);
	else if (reclaim_exec_state(r) == RECLAIM_EXEC_DENIED)
		forward_wait(f, FORWARD_WAIT_STALE_NOEXEC);
	else if (reclaim_blocked(r, why, sizeof why))
		/* Ours, but not to end (not permitted, shared, unknown). */
		forward_wait_detail(f, FORWARD_WAIT_STALE_KEEPALIVE, why);
	else
		forward_wait(f, FORWARD_WAIT_STALE);
}

/* The reclaim job ended its last kill: re-request what waited for it. */
static void
session_on_kill_done(struct session *s, struct sweep *sw)
{
	size_t	i;

	for (i = 0; i < s->nfw; i++)
		if (forward_is_waiting(s->fw[i], FORWARD_WAIT_RECLAIM))
			forward_retry_now(s->fw[i]);
	sw->progress = 1;
}

/* Run the reclaim job (learn our server-side session, or end one). */
static enum ssh_step
session_reclaim_step(struct session *s, struct sweep *sw)
{
	long	pid = reclaim_server_pid(s->reclaim);
	enum reclaim_exec exec = reclaim_exec_state(s->reclaim);

	if (reclaim_step(s->reclaim, sw) == SSH_DEAD)
		return SSH_DEAD;
	if (reclaim_take_result(s->reclaim) != RECLAIM_RESULT_NONE &&
	    !reclaim_killing(s->reclaim))
		session_on_kill_done(s, sw);
	/* Status shows the server-side pid and whether exec works. */
	if (pid != reclaim_server_pid(s->reclaim) ||
	    exec != reclaim_exec_state(s->reclaim))
		runtime_changed(s->rt);
	return SSH_OK;
}

/* 1 if some call on the session reads the transport when it is readable. */
static int
session_has_reader(const struct session *s)
{
	return s->pumped || s->listen.owner != NULL || probe_busy(&s->probe) ||
	    reclaim_busy(s->reclaim);
}

/*
 * Why the session must end before this round, or NULL: nothing heard
 * for too long, or a request the server left unanswered.
 */
static char *
session_expired(const struct session *s)
{
	if (!s->alive_expired)
		return session_overdue(s);
	return xasprintf("nothing received from the server for %llds "
	    "(keepalive %llds x %d): the link is dead",
	    (long long)(loop_now(s->rt->loop) - s->link.last_rx_ms) / 1000,
	    (long long)s->cfg->keepalive_ms / 1000, s->cfg->keepalive_count);
}

/* Every forward, in config order; a refused one goes to the policy. */
static enum ssh_step
session_run_forwards(struct session *s, struct sweep *sw)
{
	size_t	i;
	int	pumped = 0;

	for (i = 0; i < s->nfw;) {
		switch (forward_step(s->fw[i], sw)) {
		case SSH_DEAD:
			return SSH_DEAD;
		case SSH_DONE:
			session_forget_forward(s, i);
			continue;
		case SSH_OK:
			break;
		}
		if (forward_take_refused(s->fw[i]))
			session_on_refused(s, s->fw[i]);
		if (forward_has_listener(s->fw[i]))
			pumped = 1;
		i++;
	}
	s->pumped = pumped;
	return SSH_OK;
}

/* The session is up: the forwards, then the reclaim job and the probe. */
static void
session_run_round(struct session *s, uint32_t events)
{
	struct sweep	 sw;
	char		*cause;

	if ((cause = session_expired(s)) != NULL) {
		session_fail(s, s->alive_expired ? SESSION_FAIL_LOST :
		    SESSION_FAIL_COSTLY, cause);
		free(cause);
		return;
	}
	memset(&sw, 0, sizeof sw);
	sw.ss = s->ss;
	sw.link = &s->link;
	sw.now = loop_now(s->rt->loop);
	sw.rx_gen = &s->link.rx_gen;
	sw.listen = &s->listen;
	sw.open = &s->open;
	sw.rtt_ms = &s->rtt_ms;
	sw.spare = &s->rx_spare;
	if (session_run_forwards(s, &sw) == SSH_DEAD)
		goto dead;
	if (s->refresh) {
		s->refresh = 0;
		session_fail(s, SESSION_FAIL_LOST, "a tunnel added or changed "
		    "by the reload was refused on a session that logged in "
		    "before it: logging in again, so that the server applies "
		    "its current policy (sshd reads a key's permitlisten at "
		    "login)");
		return;
	}
	/*
	 * epoll reports a hang-up even when we do not watch for input: with
	 * no reader, let a probe read and find out what happened.
	 */
	if ((events & (EPOLLERR | EPOLLHUP)) && !session_has_reader(s))
		s->probe.wanted = 1;
	/* Learn our server-side session, or end a stale one; then probe. */
	if (session_reclaim_step(s, &sw) == SSH_DEAD ||
	    probe_step(&s->probe, &sw, s->name) == SSH_DEAD)
		goto dead;
	/* Calls that read one packet may leave others buffered: go again. */
	if (sw.progress)
		loop_post(s->rt->loop, &s->post);
	return;
dead:
	session_fail(s, SESSION_FAIL_LOST, s->disconnect_msg ?
	    s->disconnect_msg : "connection lost");
}

/*
 * One service round of an up session, reading at most SESSION_RX_ROUND
 * bytes off the socket: libssh2 decrypts all it can read before it hands
 * a channel anything, so an unbounded read of a large window's worth
 * would hold every connection up for its whole length.
 */
static void
session_run(struct session *s, uint32_t events)
{
	link_rx_cap(&s->link, SESSION_RX_ROUND);
	session_run_round(s, events);
	link_rx_uncap(&s->link);
}

/*
 * libssh2 holds a half-sent packet: the link refused one, which it never
 * does (link.c). Every call but the repeat of the one that made it would
 * then get EAGAIN for ever (docs/libssh2.md rule 1), and nothing here
 * knows which call that was. The debug (sanitizer) build stops on the
 * spot, so that a test shows the change; a release build reconnects.
 * Returns 1 when the session was failed.
 */
static int
session_check_slot(struct session *s)
{
	if (s->ss == NULL || !ssherr_slot_busy(s->ss))
		return 0;
#if defined(__SANITIZE_ADDRESS__)
	log_err(s->name, NULL, "libssh2 holds a half-sent packet: the link "
	    "refused one (docs/libssh2.md rule 1); aborting (debug build)");
	abort();
#endif
	session_fail(s, s->state == SESSION_UP ? SESSION_FAIL_LOST :
	    SESSION_FAIL_COSTLY, "libssh2 holds a half-sent packet, which "
	    "the engine never leaves it (an internal error): reconnecting");
	return 1;
}

/* Watch the socket for what libssh2 waits on. */
static void
session_update_interest(struct session *s)
{
	uint32_t	ev = 0;
	int		dirs;

	if (s->link.fd == -1)
		return;
	if (s->state == SESSION_CONNECTING)
		ev = EPOLLOUT;
	else if (s->state == SESSION_UP) {
		/*
		 * Input only while something will read it. With every tunnel
		 * refused, nothing does until the next probe (at most
		 * keepalive away, which also answers the server's
		 * ClientAlive); a readable socket nobody reads would make
		 * level-triggered epoll spin. Output: see below (libssh2
		 * itself never waits to send, session_check_slot).
		 */
		if (session_has_reader(s))
			ev = EPOLLIN;
	} else if (s->ss != NULL) {
		dirs = libssh2_session_block_directions(s->ss);
		if (dirs & LIBSSH2_SESSION_BLOCK_INBOUND)
			ev |= EPOLLIN;
		if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND)
			ev |= EPOLLOUT;
		if (ev == 0)
			ev = EPOLLIN;
	}
	/* Packets we queued wait for room in the socket. */
	if (s->ss != NULL && s->link.out.len > 0)
		ev |= EPOLLOUT;
	/* Input was not watched: data may have come meanwhile, so look. */
	if ((ev & EPOLLIN) && !(s->io.events & EPOLLIN))
		link_readable(&s->link);
	loop_io_set(s->rt->loop, &s->io, ev);
}

/* One step towards SESSION_UP: start SSH, handshake, or authenticate. */
static void
session_advance(struct session *s)
{
	char	*cause;

	if (s->state == SESSION_CONNECTING && s->link.fd != -1) {
		/* Connected (session_dialed): start SSH. */
		session_begin_ssh(s);
		return;
	}
	if (s->deadline_msg != NULL) {
		/* connect_timeout passed, while resolving or during SSH. */
		if (s->state == SESSION_CONNECTING)
			cause = xasprintf("resolving %s %s", s->cfg->host,
			    s->deadline_msg);
		else
			cause = xstrdup(s->deadline_msg);
		session_fail(s, SESSION_FAIL_COSTLY, cause);
		free(cause);
		return;
	}
	if (s->state == SESSION_HANDSHAKE)
		session_handshake(s);
	else if (s->state == SESSION_AUTH)
		session_auth(s);
}

/*
 * All libssh2 work of the session. Only ever run as a posted callback, so
 * that no libssh2 object is freed under a caller that still uses it.
 */
static void
session_service(void *arg)
{
	struct session		*s = arg;
	uint32_t		 ev = s->revents;
	enum session_state	 before;
	char			*cause;

	s->revents = 0;
	/* Room in the socket: make room in the queue before writers look. */
	if ((ev & EPOLLOUT) && s->link.fd != -1 && s->link.out.len > 0)
		(void)link_flush(&s->link);
	do {
		before = s->state;
		switch (s->state) {
		case SESSION_CONNECTING:
		case SESSION_HANDSHAKE:
		case SESSION_AUTH:
			session_advance(s);
			break;
		case SESSION_UP:
			session_run(s, ev);
			break;
		default:
			break;
		}
		/* A phase that completed may let the next one start now. */
		ev = 0;
	} while (s->state != before && s->state != SESSION_UP &&
	    s->state != SESSION_BACKOFF && s->state != SESSION_FAILED);
	/*
	 * libssh2 was refused memory (max_session_memory). It may have
	 * reported that as something else, or not at all (a channel read
	 * that failed closes only its connection): the session goes now.
	 */
	if (s->ss != NULL && s->mem.over)
		session_fail(s, s->state == SESSION_UP ? SESSION_FAIL_LOST :
		    SESSION_FAIL_COSTLY, "out of memory");
	else
		(void)session_check_slot(s);
	if (s->state == SESSION_UP) {
		session_shed(s);
		session_wait_update(s);
	}
	/* One write for everything libssh2 produced this round. */
	if (s->link.fd != -1 && s->link.out.len > 0 &&
	    link_flush(&s->link) == -1) {
		cause = xasprintf("send to %s: %s", s->address,
		    strerror(s->link.out_errno));
		session_fail(s, s->state == SESSION_UP ? SESSION_FAIL_LOST :
		    SESSION_FAIL_COSTLY, cause);
		free(cause);
	}
	/* Bridges that stopped for a congested queue may go on. */
	if (s->state == SESSION_UP && link_writable(&s->link))
		loop_post(s->rt->loop, &s->post);
	session_update_interest(s);
}

/*
 * Say goodbye: one non-blocking DISCONNECT, only with the send slot free
 * (a half-sent packet must not be followed by another), then our half of
 * the TCP close. 1 when the server's answer is worth waiting for.
 */
static int
session_goodbye(struct session *s)
{
	if (s->goodbye || s->state != SESSION_UP || s->ss == NULL ||
	    ssherr_slot_busy(s->ss))
		return 0;
	s->goodbye = 1;
	(void)libssh2_session_disconnect_ex(s->ss,
	    SSH_DISCONNECT_BY_APPLICATION, "tunnels: stopping", "");
	/* Still queued (a full socket): the server will not hear it. */
	if (link_flush(&s->link) == -1 || s->link.out.len > 0 ||
	    s->link.fd == -1 || shutdown(s->link.fd, SHUT_WR) == -1)
		return 0;
	return 1;
}

/*
 * Discard what the server still sends; 1 once it closed its side. At most
 * 64 KiB per call (else errno EAGAIN): a server that keeps sending cannot
 * hold the caller past its deadline.
 */
static int
session_goodbye_eof(struct session *s)
{
	char	buf[4096];
	ssize_t	n = -1;
	int	i;

	for (i = 0; i < 16; i++)
		if ((n = read(s->link.fd, buf, sizeof buf)) <= 0)
			return n == 0;
	errno = EAGAIN;
	return 0;
}

/*
 * Stopping: say goodbye to every session at once and wait up to wait_ms
 * for each server to close its side. sshd closes the connection as its
 * session process exits, so a session whose server did is not remembered
 * as stale (else each clean restart adds a record that a later refusal
 * would try to end). A server that does not answer in time (a black
 * hole) keeps its record.
 */
void
session_goodbye_all(struct session **v, size_t n, int64_t wait_ms)
{
	struct pollfd	*pfd = xcalloc(n > 0 ? n : 1, sizeof *pfd);
	size_t		 i, left = 0;
	int64_t		 end = time_now_ms() + wait_ms, now;

	for (i = 0; i < n; i++) {
		pfd[i].fd = -1;
		if (v[i] != NULL && session_goodbye(v[i])) {
			pfd[i].fd = v[i]->link.fd;
			pfd[i].events = POLLIN;
			left++;
		}
	}
	while (left > 0 && (now = time_now_ms()) < end) {
		if (poll(pfd, n, (int)MIN(end - now, 1000)) == -1 &&
		    errno != EINTR)
			break;
		for (i = 0; i < n; i++) {
			if (pfd[i].fd == -1 || pfd[i].revents == 0)
				continue;
			if (session_goodbye_eof(v[i]))
				reclaim_session_ended(v[i]->reclaim);
			else if (errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			pfd[i].fd = -1;
			left--;
		}
	}
	free(pfd);
}

/* Free the session and its forwards, saying goodbye when we can. */
void
session_free(struct session *s)
{
	size_t	i;

	if (s == NULL)
		return;
	/* The server frees our ports on the close that follows either way. */
	(void)session_goodbye(s);
	session_teardown(s);
	for (i = 0; i < s->nfw; i++)
		forward_free(s->fw[i]);
	free(s->fw);
	loop_timer_stop(s->rt->loop, &s->timer);
	loop_post_cancel(s->rt->loop, &s->post);
	reclaim_free(s->reclaim);
	link_clear(&s->link);
	log_limit_reset(&s->loglim);
	log_limit_reset(&s->shedlim);
	free(s->disconnect_msg);
	free(s->deadline_msg);
	free(s->last_error);
	free(s->name);
	free(s);
}

/* Re-point at an equal server spec of a newly loaded config. */
void
session_set_config(struct session *s, const struct config_server *cfg)
{
	s->cfg = cfg;
	reclaim_set_config(s->reclaim, cfg);
	/*
	 * Limits are not part of the server's identity: a reload applies
	 * them to the running session (a lower memory cap than what libssh2
	 * holds now drops it at its next allocation).
	 */
	session_set_limits(s, cfg);
	if (s->ss != NULL)
		sshmem_set_cap(&s->mem, (size_t)cfg->max_session_memory);
}

/*
 * The runtime's backoff bounds or state directory changed (a reload).
 * The next delay uses the new bounds, and a wait for a retry that is
 * already longer than the new cap is cut to the cap; the state file
 * moves to the new directory. The same for every forward.
 */
void
session_set_runtime(struct session *s)
{
	int64_t	cap = s->rt->backoff_max_ms;
	size_t	i;

	backoff_set_bounds(&s->bo, s->rt->backoff_initial_ms, cap);
	if ((s->state == SESSION_BACKOFF || s->state == SESSION_FAILED) &&
	    loop_timer_armed(&s->timer) &&
	    s->timer.at_ms > loop_now(s->rt->loop) + cap)
		loop_timer_in(s->rt->loop, &s->timer, cap);
	reclaim_set_state_dir(s->reclaim, s->rt->state_dir,
	    s->rt->state_name);
	for (i = 0; i < s->nfw; i++)
		forward_set_runtime(s->fw[i]);
}

/* Add a tunnel; it comes up with the session (now, if already up). */
struct forward *
session_add_tunnel(struct session *s, const struct config_tunnel *t)
{
	struct forward	*f;

	f = forward_new(s->rt, t, s->name, &s->post, &s->conns);
	if (s->nfw == s->capfw) {
		s->capfw = s->capfw ? s->capfw * 2 : 4;
		s->fw = xreallocarray(s->fw, s->capfw, sizeof *s->fw);
	}
	s->fw[s->nfw++] = f;
	if (s->state == SESSION_UP)
		forward_session_up(f);
	else if (s->state == SESSION_FAILED)
		forward_session_down(f, s->last_error, 1);
	return f;
}

/* Remove a tunnel: closed on the server first when the session is up. */
void
session_remove_tunnel(struct session *s, struct forward *f)
{
	size_t	i;

	for (i = 0; i < s->nfw && s->fw[i] != f; i++)
		;
	if (i == s->nfw)
		return;
	if (s->state != SESSION_UP) {
		session_forget_forward(s, i);
		return;
	}
	forward_stop(f);
}

/* Retry now: reconnect if not up, re-request refused forwards if up. */
void
session_retry_now(struct session *s)
{
	size_t	i;

	backoff_reset(&s->bo);
	if (s->state == SESSION_BACKOFF || s->state == SESSION_FAILED) {
		session_connect(s);
		return;
	}
	for (i = 0; i < s->nfw; i++)
		forward_retry_now(s->fw[i]);
}

/*
 * The network changed. A backed-off server may be reachable again: try
 * now. A live session may have lost its path (new address, NAT state
 * gone): probe it now rather than after keepalive of silence. A
 * permanently failed server (host key, auth) is not retried for this.
 */
void
session_network_changed(struct session *s)
{
	if (s->state == SESSION_BACKOFF) {
		backoff_reset(&s->bo);
		session_connect(s);
	} else if (s->state == SESSION_UP) {
		s->probe.wanted = 1;
		loop_post(s->rt->loop, &s->post);
	}
}

/* Current state. */
enum session_state
session_state(const struct session *s)
{
	return s->state;
}

/* 1 once the first attempt came up or failed (for READY=1). */
int
session_settled(const struct session *s)
{
	return s->settled;
}

/* Short text for STATUS= when the server is not up. */
char *
session_summary(const struct session *s, int64_t now)
{
	int64_t	left;

	if ((s->state == SESSION_BACKOFF || s->state == SESSION_FAILED) &&
	    loop_timer_armed(&s->timer)) {
		left = ms_ceil_s(s->timer.at_ms - now);
		return xasprintf("%s: %s (%s), retry in %llds", s->name,
		    session_state_names[s->state],
		    s->last_error ? s->last_error : "?",
		    (long long)(left > 0 ? left : 0));
	}
	return xasprintf("%s: %s", s->name, session_state_names[s->state]);
}

/* Append the status object of this server. */
void
session_status_json(const struct session *s, struct buf *b, int64_t now)
{
	buf_printf(b, "{\"name\":");
	json_str(b, s->name);
	buf_printf(b, ",\"state\":\"%s\",\"address\":",
	    session_state_names[s->state]);
	json_str(b, s->address[0] ? s->address : NULL);
	buf_printf(b, ",\"since_s\":%lld,\"connects\":%u",
	    (long long)(now - s->since_ms) / 1000, s->connects);
	/* Bytes written by libssh2 that the network has not taken yet. */
	buf_printf(b, ",\"send_queue_bytes\":%zu", s->link.out.len);
	/* What libssh2 holds on the heap for this server, and its limit. */
	buf_printf(b, ",\"memory_bytes\":%zu,\"memory_peak_bytes\":%zu,"
	    "\"max_session_memory\":%llu", s->mem.cost,
	    MAX(s->mem_peak, s->mem.cost_peak),
	    (unsigned long long)s->cfg->max_session_memory);
	buf_printf(b, ",\"active_connections\":%llu,\"max_connections\":%d",
	    (unsigned long long)s->conns.active, s->conns.max);
	/* The round trip receive windows grow by, and what they hold. */
	if (s->rtt_ms > 0)
		buf_printf(b, ",\"rtt_ms\":%lld", (long long)s->rtt_ms);
	else
		buf_printf(b, ",\"rtt_ms\":null");
	buf_printf(b, ",\"receive_window_used\":%llu",
	    (unsigned long long)s->conns.win.session.used);
	if (reclaim_server_pid(s->reclaim) != 0)
		buf_printf(b, ",\"server_pid\":%ld",
		    reclaim_server_pid(s->reclaim));
	else
		buf_printf(b, ",\"server_pid\":null");
	buf_printf(b, ",\"exec\":\"%s\"",
	    reclaim_exec_state(s->reclaim) == RECLAIM_EXEC_OK ? "ok" :
	    reclaim_exec_state(s->reclaim) == RECLAIM_EXEC_DENIED ? "denied" :
	    "unknown");
	if ((s->state == SESSION_BACKOFF || s->state == SESSION_FAILED) &&
	    loop_timer_armed(&s->timer))
		buf_printf(b, ",\"retry_in_s\":%lld",
		    (long long)ms_ceil_s(s->timer.at_ms - now));
	buf_printf(b, ",\"last_error\":");
	json_str(b, s->last_error);
	buf_printf(b, "}");
}
