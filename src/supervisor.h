/*
 * The set of servers and tunnels of one config: start, reload by
 * difference, stop, and the summary systemd and `tunnels status` show.
 */
#ifndef TUNNELS_SUPERVISOR_H
#define TUNNELS_SUPERVISOR_H

#include "util.h"

struct config;
struct loop;
struct resolver;
struct supervisor;

/* Takes ownership of cfg. */
struct supervisor *supervisor_new(struct loop *, struct resolver *,
		    struct config *);
void		 supervisor_free(struct supervisor *);
void		 supervisor_start(struct supervisor *);

/*
 * Apply a new config (ownership taken): unchanged tunnels keep their
 * listeners and connections, added ones start, removed ones are
 * cancelled, changed ones restart alone.
 */
void		 supervisor_reload(struct supervisor *, struct config *);
/* Record a reload that failed (the old config stays in force). */
void		 supervisor_reload_failed(struct supervisor *, const char *why);

/* SIGUSR1: reconnect now, re-request refused forwards now. */
void		 supervisor_retry_now(struct supervisor *);
/* The network changed (netlink): see session_network_changed(). */
void		 supervisor_network_changed(struct supervisor *);

/* The current config (owned by the supervisor). */
const struct config *supervisor_config(const struct supervisor *);

/* The status document (JSON). */
void		 supervisor_status_json(struct supervisor *, struct buf *);
/* One line for STATUS=, e.g. "3/4 tunnels up; blog: ...". */
char		*supervisor_status_line(struct supervisor *);
/* 1 once every tunnel came up or failed its first attempt. */
int		 supervisor_settled(struct supervisor *);

/* Called after state changes (coalesced): main refreshes systemd. */
void		 supervisor_on_change(struct supervisor *,
		    void (*)(void *), void *);

#endif
