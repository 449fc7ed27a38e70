/*
 * One SSH connection to one server, carrying the forwards of all the
 * tunnels of that server: connect, handshake, host key, auth, liveness,
 * reconnect with backoff.
 */
#ifndef TUNNELS_SESSION_H
#define TUNNELS_SESSION_H

#include <stdint.h>

#include "util.h"

struct config_server;
struct config_tunnel;
struct forward;
struct runtime;
struct session;

enum session_state {
	SESSION_STOPPED = 0,
	SESSION_CONNECTING,	/* resolving the name, TCP connect */
	SESSION_HANDSHAKE,
	SESSION_HOSTKEY,
	SESSION_AUTH,
	SESSION_UP,
	SESSION_BACKOFF,	/* waiting to reconnect */
	SESSION_FAILED		/* permanent error; retries at the cap */
};

struct session	*session_new(struct runtime *, const struct config_server *);
/* Tear down at once (no goodbye) and free, forwards included. */
void		 session_free(struct session *);
/* Stopping: goodbye to all at once, each server's close awaited. */
void		 session_goodbye_all(struct session **, size_t, int64_t);
void		 session_start(struct session *);
/* The runtime's backoff or state_dir changed (reload): apply them now. */
void		 session_set_runtime(struct session *);
/* Point at an equal server spec of a newly loaded config. */
void		 session_set_config(struct session *,
		    const struct config_server *);

struct forward	*session_add_tunnel(struct session *,
		    const struct config_tunnel *);
/* Cancel the tunnel's listener and connections; freed once closed. */
void		 session_remove_tunnel(struct session *, struct forward *);

/* Reconnect or re-request refused forwards now (SIGUSR1). */
void		 session_retry_now(struct session *);
/* The network changed: retry a backed-off server now, probe a live one. */
void		 session_network_changed(struct session *);

enum session_state session_state(const struct session *);
/* 1 once the first connection attempt has come up or failed. */
int		 session_settled(const struct session *);
char		*session_summary(const struct session *, int64_t now);
void		 session_status_json(const struct session *, struct buf *,
		    int64_t now);

#endif
