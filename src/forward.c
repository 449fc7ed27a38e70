/*
 * One tunnel's remote listener. The request (tcpip-forward) is issued on
 * the live session, one at a time per session: libssh2 keeps the state of
 * forward_listen_ex in the session (docs/libssh2.md rule 4), so a second
 * request in flight would build its listener from the wrong arguments. A
 * refusal leaves the session and the sibling tunnels alone; this forward
 * retries on its own backoff.
 */
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "backoff.h"
#include "bridge.h"
#include "config.h"
#include "forward.h"
#include "json.h"
#include "log.h"
#include "loop.h"
#include "msmath.h"
#include "resolve.h"
#include "runtime.h"
#include "ssherr.h"

/* Incoming connections queued in libssh2 before we accept them. */
#define FORWARD_QUEUE_MAX	1024
/* Retry a failed local name lookup after this long. */
#define FORWARD_RESOLVE_RETRY_MS 5000
/* After ending a stale session the port is free within milliseconds. */
#define FORWARD_QUICK_RETRY_MS	200
/* A stale session is dropped by the server's ClientAlive (typically
 * 15 s x 3): look again at least this often. */
#define FORWARD_STALE_RETRY_MAX_MS 10000
/* Safety net while the session ends a stale session for us. */
#define FORWARD_RECLAIM_WAIT_MS	15000

struct forward {
	struct runtime			*rt;
	struct loop_post		*kick;
	const struct config_tunnel	*cfg;
	char				*name;
	char				*server;

	enum forward_state		 state;
	int64_t				 since_ms;
	char				*last_error;

	LIBSSH2_LISTENER		*listener;
	int				 bound_port;
	int				 want_listen;
	int				 stopping;
	int				 refused;
	int				 ever_up;
	enum forward_wait		 wait;

	struct backoff			 bo;
	struct loop_timer		 retry;

	/* Copies: a stopping forward outlives the config it came from. */
	struct addr			 remote;
	struct addr			 local;

	struct resolve_req		*rq;
	struct resolve_result		 local_res;
	int				 local_ready;

	struct bridge			**v;
	size_t				  n, cap;
	struct bridge_stats		 stats;

	/*
	 * Connections over max_connections (the tunnel's, or its server's
	 * through lim): accepted from libssh2 only to be closed at once.
	 * libssh2_channel_free waits for the server's CLOSE, so they stay
	 * here until it comes.
	 */
	struct forward_limits		*lim;
	int				 max_conns;
	LIBSSH2_CHANNEL			**rej;
	size_t				  nrej, caprej;
	uint64_t			  rej_seen;	/* rx_gen, all waiting */
	uint64_t			  nrefused;
	uint64_t			  nshed;	/* closed for memory */
	struct log_limit		  rejlim;
};

static void	forward_resolve(struct forward *);

static const char *const forward_state_names[] = {
	"stopped", "connecting", "up", "waiting", "failed"
};

/* The one setter of the state: logs every transition with its cause. */
static void
forward_set_state(struct forward *f, enum forward_state s, const char *cause)
{
	int	pri = LOG_PRI_INFO;

	if (s == FORWARD_FAILED || s == FORWARD_WAITING)
		pri = LOG_PRI_WARNING;
	if (s != FORWARD_UP && cause != NULL) {
		free(f->last_error);
		f->last_error = xstrdup(cause);
	}
	if (f->state == s)
		return;
	log_msg(pri, f->server, f->name, "%s -> %s%s%s",
	    forward_state_names[f->state], forward_state_names[s],
	    cause ? ": " : "", cause ? cause : "");
	f->state = s;
	f->since_ms = loop_now(f->rt->loop);
	runtime_changed(f->rt);
}

/* Retry timer fired: request the listener again. */
static void
forward_on_retry(void *arg)
{
	struct forward	*f = arg;

	if (f->local_ready)
		f->want_listen = 1;
	else
		forward_resolve(f);
	loop_post(f->rt->loop, f->kick);
}

/* Local name lookup finished. */
static void
forward_resolved(void *arg, const struct resolve_result *res,
    const char *error)
{
	struct forward	*f = arg;
	char		*msg;

	f->rq = NULL;
	if (res == NULL || res->n == 0) {
		msg = xasprintf("cannot resolve local host \"%s\": %s",
		    f->local.host, error ? error : "no address");
		log_warn(f->server, f->name, "%s; retrying in %ds", msg,
		    FORWARD_RESOLVE_RETRY_MS / 1000);
		free(f->last_error);
		f->last_error = msg;
		loop_timer_in(f->rt->loop, &f->retry,
		    FORWARD_RESOLVE_RETRY_MS);
		return;
	}
	f->local_res = *res;
	f->local_ready = 1;
	loop_post(f->rt->loop, f->kick);
}

/* Start resolving the local target (TCP targets only). */
static void
forward_resolve(struct forward *f)
{
	if (f->local.kind == ADDR_UNIX) {
		f->local_ready = 1;
		return;
	}
	resolve_cancel(f->rq);
	f->rq = resolve_start(f->rt->resolver, f->local.host,
	    f->local.port, forward_resolved, f);
}

/* Create the forward of one tunnel; it waits for its session. */
struct forward *
forward_new(struct runtime *rt, const struct config_tunnel *cfg,
    const char *server, struct loop_post *kick, struct forward_limits *lim)
{
	struct forward	*f = xcalloc(1, sizeof *f);

	f->rt = rt;
	f->lim = lim;
	f->max_conns = cfg->max_connections;
	f->rej_seen = UINT64_MAX;
	f->kick = kick;
	f->cfg = cfg;
	f->remote = cfg->remote;
	f->local = cfg->local;
	f->name = xstrdup(cfg->name);
	f->server = xstrdup(server);
	f->stats.server = f->server;
	f->stats.tunnel = f->name;
	f->since_ms = loop_now(rt->loop);
	backoff_init(&f->bo, rt->backoff_initial_ms, rt->backoff_max_ms,
	    (uint64_t)loop_now(rt->loop) ^ (uintptr_t)f);
	loop_timer_init(&f->retry, forward_on_retry, f);
	forward_set_state(f, FORWARD_CONNECTING, NULL);
	forward_resolve(f);
	return f;
}

/* Free the forward; its session must already have forgotten it. */
void
forward_free(struct forward *f)
{
	size_t	i;

	if (f == NULL)
		return;
	for (i = 0; i < f->n; i++)
		bridge_free(f->v[i]);
	f->lim->active -= f->n;
	free(f->v);
	/* Rejected channels still open die with their session. */
	free(f->rej);
	log_limit_reset(&f->rejlim);
	bridge_stats_clear(&f->stats);
	resolve_cancel(f->rq);
	loop_timer_stop(f->rt->loop, &f->retry);
	free(f->last_error);
	free(f->name);
	free(f->server);
	free(f);
}

/* Re-point at an equal tunnel spec of a newly loaded config. */
void
forward_set_config(struct forward *f, const struct config_tunnel *cfg)
{
	f->cfg = cfg;
	/* A changed limit applies from now on; open connections stay. */
	f->max_conns = cfg->max_connections;
}

/* New backoff bounds: next delay uses them, a longer wait is cut. */
void
forward_set_runtime(struct forward *f)
{
	int64_t	cap = f->rt->backoff_max_ms;

	backoff_set_bounds(&f->bo, f->rt->backoff_initial_ms, cap);
	if (loop_timer_armed(&f->retry) &&
	    f->retry.at_ms > loop_now(f->rt->loop) + cap)
		loop_timer_in(f->rt->loop, &f->retry, cap);
}

/* The session is up: request the listener at the next step. */
void
forward_session_up(struct forward *f)
{
	if (f->stopping)
		return;
	f->want_listen = 1;
	backoff_reset(&f->bo);
	loop_timer_stop(f->rt->loop, &f->retry);
	loop_post(f->rt->loop, f->kick);
}

/* The session is gone; libssh2 objects are invalid already. */
void
forward_session_down(struct forward *f, const char *cause, int failed)
{
	size_t	i;

	for (i = 0; i < f->n; i++)
		bridge_free(f->v[i]);
	f->lim->active -= f->n;
	f->n = 0;
	/* libssh2_session_free() closes what was still being rejected. */
	f->nrej = 0;
	f->rej_seen = UINT64_MAX;
	f->listener = NULL;
	f->bound_port = 0;
	f->want_listen = 0;
	loop_timer_stop(f->rt->loop, &f->retry);
	if (f->stopping)
		return;
	/* The server's log line has the details; status keeps them too. */
	forward_set_state(f, failed ? FORWARD_FAILED : FORWARD_CONNECTING,
	    failed ? "its server failed" : "its server is not connected");
	free(f->last_error);
	f->last_error = cause ? xstrdup(cause) : NULL;
}

/* Begin closing: cancel the listener, close the connections. */
void
forward_stop(struct forward *f)
{
	size_t	i;

	f->stopping = 1;
	f->want_listen = 0;
	loop_timer_stop(f->rt->loop, &f->retry);
	for (i = 0; i < f->n; i++)
		bridge_abort(f->v[i]);
	loop_post(f->rt->loop, f->kick);
}

/* Retry a refused listener now instead of at its timer. */
void
forward_retry_now(struct forward *f)
{
	if (f->state != FORWARD_WAITING || f->stopping)
		return;
	backoff_reset(&f->bo);
	loop_timer_stop(f->rt->loop, &f->retry);
	forward_on_retry(f);
}

/* waiting_reason in status, by enum forward_wait. */
static const char *const forward_wait_names[] = {
	"reclaiming", "reclaiming", "stale_session", "stale_session",
	"stale_session_no_exec", "policy", "stale_session_server_keepalive"
};

/* The server refused the listener: the session decides why (wait). */
static void
forward_refused(struct forward *f)
{
	f->refused = 1;
}

/* 1 once after a refusal. */
int
forward_take_refused(struct forward *f)
{
	int	r = f->refused;

	f->refused = 0;
	return r;
}

/* 1 if waiting after a refusal for that reason. */
int
forward_is_waiting(const struct forward *f, enum forward_wait why)
{
	return f->state == FORWARD_WAITING && f->wait == why;
}

/* 1 if the server granted this listener before (in this run). */
int
forward_ever_up(const struct forward *f)
{
	return f->ever_up;
}

/* Wait after a refusal for the reason given, and say so in status. */
void
forward_wait(struct forward *f, enum forward_wait why)
{
	forward_wait_detail(f, why, NULL);
}

/*
 * The same; detail says why a stale session of ours cannot be ended
 * (FORWARD_WAIT_STALE_KEEPALIVE).
 */
void
forward_wait_detail(struct forward *f, enum forward_wait why,
    const char *detail)
{
	char	 remote[ADDR_TEXT_MAX];
	char	*msg;
	int64_t	 delay;

	addr_format(&f->remote, remote, sizeof remote);
	switch (why) {
	case FORWARD_WAIT_RECLAIM:
		delay = FORWARD_RECLAIM_WAIT_MS;
		msg = xasprintf("remote port %s is held by a stale session of "
		    "ours: ending it", remote);
		break;
	case FORWARD_WAIT_QUICK:
		delay = FORWARD_QUICK_RETRY_MS;
		msg = xasprintf("remote port %s still busy just after ending "
		    "our stale session; retry in %.1fs", remote,
		    (double)delay / 1000);
		break;
	case FORWARD_WAIT_STALE:
	case FORWARD_WAIT_STALE_OFF:
		delay = MIN(backoff_next(&f->bo), FORWARD_STALE_RETRY_MAX_MS);
		msg = xasprintf("remote port %s is probably held by a stale "
		    "session of ours%s; waiting for the server to drop it "
		    "(ClientAlive); retry in %llds", remote,
		    why == FORWARD_WAIT_STALE_OFF ?
		    " (reclaim_stale_port is off)" : "",
		    (long long)ms_ceil_s(delay));
		break;
	case FORWARD_WAIT_STALE_NOEXEC:
		delay = MIN(backoff_next(&f->bo), FORWARD_STALE_RETRY_MAX_MS);
		msg = xasprintf("remote port %s is held by a stale session of "
		    "ours that cannot be ended: this account may not run "
		    "commands (restricted key or ForceCommand); waiting for "
		    "the server to drop it (ClientAlive); retry in %llds",
		    remote, (long long)ms_ceil_s(delay));
		break;
	case FORWARD_WAIT_STALE_KEEPALIVE:
		delay = MIN(backoff_next(&f->bo), FORWARD_STALE_RETRY_MAX_MS);
		msg = xasprintf("remote port %s is held by a stale session of "
		    "ours that will not be ended: %s; waiting for the server's "
		    "own keepalive to end it (OpenSSH: ClientAliveInterval; "
		    "Dropbear: -K); retry in %llds", remote,
		    detail != NULL ? detail : "it is not ours alone",
		    (long long)ms_ceil_s(delay));
		break;
	default:
		delay = backoff_at_cap(&f->bo);
		msg = xasprintf("server refused to listen on %s: not permitted "
		    "by its policy (PermitListen/permitlisten, "
		    "AllowTcpForwarding, a privileged port) or in use by "
		    "another program; to allow it, apply `tunnels "
		    "server-setup --script` on the server, then `tunnels "
		    "reload`; retry in %llds", remote,
		    (long long)ms_ceil_s(delay));
		break;
	}
	if (f->state == FORWARD_WAITING && f->wait != why)
		log_info(f->server, f->name, "%s", msg);
	f->wait = why;
	forward_set_state(f, FORWARD_WAITING, msg);
	free(msg);
	loop_timer_in(f->rt->loop, &f->retry, delay);
}

/* Log a libssh2 failure that ends the session, saying what happened. */
static void
forward_log_ssh(struct forward *f, LIBSSH2_SESSION *ss, const char *what,
    int rc)
{
	char	*why = ssherr_describe(ss, rc);

	log_info(f->server, f->name, "%s: %s", what, why);
	free(why);
}

/* The listener is bound on the server. */
static void
forward_listening(struct forward *f, LIBSSH2_LISTENER *l, int bound)
{
	char	remote[ADDR_TEXT_MAX], msg[ADDR_TEXT_MAX + 32];
	struct addr	a = f->remote;

	f->listener = l;
	f->bound_port = bound;
	a.port = bound;
	addr_format(&a, remote, sizeof remote);
	snprintf(msg, sizeof msg, "listening on %s", remote);
	free(f->last_error);
	f->last_error = NULL;
	f->ever_up = 1;
	backoff_reset(&f->bo);
	forward_set_state(f, FORWARD_UP, msg);
}

/* Remove bridge i (swap with the last). */
static void
forward_drop_bridge(struct forward *f, size_t i)
{
	bridge_free(f->v[i]);
	f->v[i] = f->v[--f->n];
	f->lim->active--;
}

/*
 * Refuse a connection over max_connections: keep its channel to be
 * closed by forward_close_rejected(), count it, and say so (rate-limited:
 * a flood makes one line, then a count).
 */
static void
forward_reject(struct forward *f, LIBSSH2_CHANNEL *ch, int server_cap)
{
	if (f->nrej == f->caprej) {
		f->caprej = f->caprej ? f->caprej * 2 : 8;
		f->rej = xreallocarray(f->rej, f->caprej, sizeof *f->rej);
	}
	f->rej[f->nrej++] = ch;
	f->rej_seen = UINT64_MAX;
	f->nrefused++;
	runtime_changed(f->rt);
	if (server_cap)
		log_limited(&f->rejlim, loop_now(f->rt->loop), "server",
		    LOG_PRI_WARNING, f->server, f->name, "connection refused: "
		    "the server's tunnels have %llu connections open "
		    "(the server's max_connections)",
		    (unsigned long long)f->lim->active);
	else
		log_limited(&f->rejlim, loop_now(f->rt->loop), "tunnel",
		    LOG_PRI_WARNING, f->server, f->name, "connection refused: "
		    "the tunnel has %zu connections open (max_connections)",
		    f->n);
}

/*
 * Close the refused channels. Each free sends CLOSE, then waits for the
 * server's (EAGAIN); when every one was found waiting and nothing was read
 * since (rx_gen), there is nothing new to look at.
 */
static void
forward_close_rejected(struct forward *f, struct sweep *sw)
{
	size_t	i;

	if (f->nrej == 0 || f->rej_seen == *sw->rx_gen)
		return;
	for (i = 0; i < f->nrej;) {
		if (libssh2_channel_free(f->rej[i]) == LIBSSH2_ERROR_EAGAIN) {
			i++;
			continue;
		}
		/* Any other result: libssh2 freed the channel. */
		f->rej[i] = f->rej[--f->nrej];
		sw->progress = 1;
	}
	f->rej_seen = *sw->rx_gen;
}

/* Take an accepted connection: bridge it, or refuse it over the limits. */
static void
forward_take_channel(struct forward *f, LIBSSH2_CHANNEL *ch)
{
	const char	*unix_path;

	if (f->n >= (size_t)f->max_conns ||
	    f->lim->active >= (uint64_t)f->lim->max) {
		forward_reject(f, ch, f->n < (size_t)f->max_conns);
		return;
	}
	unix_path = f->local.kind == ADDR_UNIX ? f->local.host : NULL;
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 8;
		f->v = xreallocarray(f->v, f->cap, sizeof *f->v);
	}
	f->v[f->n++] = bridge_new(f->rt->loop, f->kick, &f->stats,
	    &f->lim->win, ch, unix_path ? NULL : &f->local_res, unix_path);
	f->lim->active++;
}

/* Accept every queued connection (this also reads the transport). */
static enum ssh_step
forward_accept_all(struct forward *f, struct sweep *sw)
{
	LIBSSH2_CHANNEL	*ch;
	int		 rc;

	if (f->listener == NULL || f->stopping)
		return SSH_OK;
	/* Also the transport pump: it reads until EAGAIN first. */
	while ((ch = libssh2_channel_forward_accept(f->listener)) != NULL) {
		sw->progress = 1;
		forward_take_channel(f, ch);
	}
	rc = libssh2_session_last_errno(sw->ss);
	if (rc == LIBSSH2_ERROR_EAGAIN)
		return SSH_OK;
	/* A dead link reads as -23 here. */
	forward_log_ssh(f, sw->ss, "accepting a connection", rc);
	return SSH_DEAD;
}

/* The answer to our tcpip-forward came: listening, refused or dead. */
static enum ssh_step
forward_listen_answered(struct forward *f, struct sweep *sw,
    LIBSSH2_LISTENER *l, int rc, int bound)
{
	/* Any answer, even a refusal, took one round trip. */
	if (l != NULL || rc == LIBSSH2_ERROR_REQUEST_DENIED)
		sweep_rtt_sample(sw, sw->listen->since_ms);
	ssh_slot_release(sw->listen, f);
	f->want_listen = 0;
	sw->progress = 1;
	/* remote: 0: the port is the server's word. */
	if (l != NULL && f->remote.port == 0 && (bound < 1 || bound > 65535)) {
		log_warn(f->server, f->name, "the server allocated port %d "
		    "for remote: 0, which is not a TCP port: a protocol "
		    "error; reconnecting", bound);
		return SSH_DEAD;
	}
	if (l != NULL)
		forward_listening(f, l, bound);
	else if (rc == LIBSSH2_ERROR_REQUEST_DENIED)
		forward_refused(f);
	else {
		/* -14 "Unknown" here means a dead link. */
		forward_log_ssh(f, sw->ss, "requesting the remote listener "
		    "(tcpip-forward)", rc);
		return SSH_DEAD;
	}
	return SSH_OK;
}

/*
 * Request the listener (one request in flight per session: sw->listen).
 * A request already in flight is always finished, even when stopping: its
 * state lives in the session and would block every other forward.
 */
static enum ssh_step
forward_listen(struct forward *f, struct sweep *sw)
{
	LIBSSH2_LISTENER	*l;
	int			 rc, bound = 0;

	if (!ssh_slot_held(sw->listen, f) && (!f->want_listen ||
	    !f->local_ready || f->listener != NULL || f->stopping))
		return SSH_OK;
	if (!ssh_slot_take(sw->listen, f, sw->now))
		return SSH_OK;
	l = libssh2_channel_forward_listen_ex(sw->ss, f->remote.host,
	    f->remote.port, &bound, FORWARD_QUEUE_MAX);
	rc = l == NULL ? libssh2_session_last_errno(sw->ss) : 0;
	/* EAGAIN: sent, the reply has not arrived yet. */
	if (rc == LIBSSH2_ERROR_EAGAIN)
		return SSH_OK;
	return forward_listen_answered(f, sw, l, rc, bound);
}

/* Stopping: cancel the listener on the server. */
static enum ssh_step
forward_cancel(struct forward *f, struct sweep *sw)
{
	int	rc;

	if (!f->stopping || f->listener == NULL)
		return SSH_OK;
	rc = libssh2_channel_forward_cancel(f->listener);
	/*
	 * want_reply=0, yet EAGAIN: a key exchange in progress, or queued
	 * connections waiting for their CLOSE. Go again next round.
	 */
	sw->progress = 1;
	if (rc == LIBSSH2_ERROR_EAGAIN)
		return SSH_OK;
	/* The listener is invalid after the call either way. */
	f->listener = NULL;
	return rc != 0 && ssherr_session_fatal(rc) ? SSH_DEAD : SSH_OK;
}

/* Every connection: libssh2 may hold data for any of them. */
static enum ssh_step
forward_run_bridges(struct forward *f, struct sweep *sw)
{
	size_t	i;

	for (i = 0; i < f->n;) {
		switch (bridge_step(f->v[i], sw)) {
		case SSH_DEAD:
			return SSH_DEAD;
		case SSH_DONE:
			forward_drop_bridge(f, i);
			break;
		case SSH_OK:
			i++;
			break;
		}
	}
	return SSH_OK;
}

/* The libssh2 work of this forward, phase by phase. */
enum ssh_step
forward_step(struct forward *f, struct sweep *sw)
{
	if (forward_listen(f, sw) == SSH_DEAD ||
	    forward_cancel(f, sw) == SSH_DEAD ||
	    forward_accept_all(f, sw) == SSH_DEAD ||
	    forward_run_bridges(f, sw) == SSH_DEAD)
		return SSH_DEAD;
	forward_close_rejected(f, sw);
	if (f->stopping && f->listener == NULL && f->n == 0 && f->nrej == 0 &&
	    !ssh_slot_held(sw->listen, f))
		return SSH_DONE;
	return SSH_OK;
}

/* The configured remote address, for messages. */
void
forward_remote_text(const struct forward *f, char *buf, size_t len)
{
	addr_format(&f->remote, buf, len);
}

/*
 * Close every connection whose local side stopped reading (the session's
 * libssh2 memory is running out: their queued packets are what fills it).
 */
size_t
forward_shed_stalled(struct forward *f)
{
	size_t	i, n = 0;

	for (i = 0; i < f->n; i++)
		if (bridge_stalled(f->v[i])) {
			bridge_abort(f->v[i]);
			n++;
		}
	f->nshed += n;
	return n;
}

/* Current state. */
enum forward_state
forward_state(const struct forward *f)
{
	return f->state;
}

/* 1 if the listener is bound (so accept can pump the transport). */
int
forward_has_listener(const struct forward *f)
{
	return f->listener != NULL && !f->stopping;
}

/* 1 once forward_stop() was called. */
int
forward_is_stopping(const struct forward *f)
{
	return f->stopping;
}

/* Short text for STATUS=, e.g. "blog: remote port ... retry in 8s". */
char *
forward_summary(const struct forward *f, int64_t now)
{
	int64_t	left;

	/* The retry follows the kill at once; its timer is only a fallback. */
	if (f->state == FORWARD_WAITING && f->wait == FORWARD_WAIT_RECLAIM)
		return xasprintf("%s: remote port %s:%d held by our stale "
		    "session: ending it", f->name, f->remote.host,
		    f->remote.port);
	if (f->state == FORWARD_WAITING && loop_timer_armed(&f->retry)) {
		left = ms_ceil_s(f->retry.at_ms - now);
		return xasprintf("%s: remote port %s:%d %s, retry in %llds",
		    f->name, f->remote.host, f->remote.port,
		    f->wait == FORWARD_WAIT_POLICY ? "refused by the server" :
		    "busy (stale session)", (long long)(left > 0 ? left : 0));
	}
	return xasprintf("%s: %s%s%s", f->name, forward_state_names[f->state],
	    f->last_error ? " (" : "", f->last_error ? f->last_error : "");
}

/* Append the status object of this tunnel. */
void
forward_status_json(const struct forward *f, struct buf *b, int64_t now)
{
	char		remote[ADDR_TEXT_MAX], local[ADDR_TEXT_MAX];
	struct addr	a = f->remote;
	uint64_t	win_sum = 0;
	uint32_t	win_max = 0, w;
	size_t		i;

	for (i = 0; i < f->n; i++) {
		w = bridge_window(f->v[i]);
		win_sum += w;
		win_max = MAX(win_max, w);
	}
	if (f->listener != NULL)
		a.port = f->bound_port;
	addr_format(&a, remote, sizeof remote);
	addr_format(&f->local, local, sizeof local);
	buf_printf(b, "{\"name\":");
	json_str(b, f->name);
	buf_printf(b, ",\"server\":");
	json_str(b, f->server);
	buf_printf(b, ",\"remote\":");
	json_str(b, remote);
	buf_printf(b, ",\"local\":");
	json_str(b, local);
	buf_printf(b, ",\"state\":\"%s\",\"since_s\":%lld,"
	    "\"active_connections\":%llu,\"total_connections\":%llu,"
	    "\"bytes_in\":%llu,\"bytes_out\":%llu,\"local_errors\":%llu,"
	    "\"refused_connections\":%llu,\"max_connections\":%d,"
	    "\"shed_connections\":%llu,\"receive_window_bytes\":%llu,"
	    "\"receive_window_max\":%lu",
	    forward_state_names[f->state],
	    (long long)(now - f->since_ms) / 1000,
	    (unsigned long long)f->stats.active,
	    (unsigned long long)f->stats.total,
	    (unsigned long long)f->stats.bytes_in,
	    (unsigned long long)f->stats.bytes_out,
	    (unsigned long long)f->stats.local_errors,
	    (unsigned long long)f->nrefused, f->max_conns,
	    (unsigned long long)f->nshed, (unsigned long long)win_sum,
	    (unsigned long)win_max);
	if (f->state == FORWARD_WAITING) {
		buf_printf(b, ",\"waiting_reason\":\"%s\"",
		    forward_wait_names[f->wait]);
		if (loop_timer_armed(&f->retry) &&
		    f->wait != FORWARD_WAIT_RECLAIM)
			buf_printf(b, ",\"retry_in_s\":%lld",
			    (long long)ms_ceil_s(f->retry.at_ms - now));
	}
	buf_printf(b, ",\"last_error\":");
	json_str(b, f->last_error);
	buf_printf(b, "}");
}
