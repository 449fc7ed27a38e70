/*
 * One tunnel: a remote listener on the server (tcpip-forward), its retry
 * when refused, and the bridges of the connections it accepts.
 */
#ifndef TUNNELS_FORWARD_H
#define TUNNELS_FORWARD_H

#include <stdint.h>

#include "sweep.h"
#include "util.h"

struct config_tunnel;
struct loop_post;
struct runtime;
struct forward;

enum forward_state {
	FORWARD_STOPPED = 0,
	FORWARD_CONNECTING,	/* server not up yet, or request in flight */
	FORWARD_UP,		/* listening; connections are bridged */
	FORWARD_WAITING,	/* refused by the server; retrying */
	FORWARD_FAILED		/* permanent error (of its server) */
};

/* Why a refused forward waits; decided by its session. */
enum forward_wait {
	FORWARD_WAIT_RECLAIM = 0,	/* our stale session holds it: ending it */
	FORWARD_WAIT_QUICK,		/* just ended it: the port frees shortly */
	FORWARD_WAIT_STALE,		/* probably stale, nothing to end */
	FORWARD_WAIT_STALE_OFF,		/* probably stale; reclaim is off */
	FORWARD_WAIT_STALE_NOEXEC,	/* stale, but exec is not permitted */
	FORWARD_WAIT_POLICY,		/* no stale session: policy refusal */
	FORWARD_WAIT_STALE_KEEPALIVE	/* stale, ours but not to end: the
					   server's keepalive must end it */
};

/*
 * The connections of one server, counted over all its forwards against
 * the server's max_connections (owned by the session).
 */
struct forward_limits {
	uint64_t	active;		/* bridges of every forward */
	int		max;
};

struct forward	*forward_new(struct runtime *, const struct config_tunnel *,
		    const char *server, struct loop_post *kick,
		    struct forward_limits *);
void		 forward_free(struct forward *);

/* The runtime's backoff changed (reload): see session_set_runtime(). */
void		 forward_set_runtime(struct forward *);
/* Point at an equal spec from a new config (reload kept this tunnel). */
void		 forward_set_config(struct forward *,
		    const struct config_tunnel *);

/* The session came up: ask the server for the listener. */
void		 forward_session_up(struct forward *);
/*
 * The session went away (libssh2 objects already invalid, no calls):
 * forget the listener and connections. failed: a permanent error.
 */
void		 forward_session_down(struct forward *, const char *cause,
		    int failed);
/* Close the listener and connections, then forward_step says SSH_DONE. */
void		 forward_stop(struct forward *);
/* Retry a waiting listener now (SIGUSR1, stale session ended). */
void		 forward_retry_now(struct forward *);
/* 1 once after the server refused the listener (then call wait). */
int		 forward_take_refused(struct forward *);
/* Wait after a refusal, for the given reason (sets the retry timer). */
void		 forward_wait(struct forward *, enum forward_wait);
/* The same, with why the stale session cannot be ended (or NULL). */
void		 forward_wait_detail(struct forward *, enum forward_wait,
		    const char *detail);
/* 1 if waiting after a refusal for that reason. */
int		 forward_is_waiting(const struct forward *, enum forward_wait);
/* 1 if the server ever granted this listener (in this run). */
int		 forward_ever_up(const struct forward *);
/* The remote address as configured ("127.0.0.1:4001"), for messages. */
void		 forward_remote_text(const struct forward *, char *, size_t);
/* Close the connections whose local side stopped reading; how many. */
size_t		 forward_shed_stalled(struct forward *);

/*
 * The libssh2 work of this forward; only from the session's service.
 * It requests its listener in sw->listen. SSH_DONE: stopped and fully
 * closed, free it.
 */
enum ssh_step	 forward_step(struct forward *, struct sweep *);

enum forward_state forward_state(const struct forward *);
int		 forward_has_listener(const struct forward *);
int		 forward_is_stopping(const struct forward *);
/* One-line reason for STATUS= when not up ("remote port busy ..."). */
char		*forward_summary(const struct forward *, int64_t now);
/* Append this tunnel's status object. */
void		 forward_status_json(const struct forward *, struct buf *,
		    int64_t now);

#endif
