/*
 * Stale-port reclaim (DESIGN §5.4). When a link dies without the server
 * noticing (NAT state lost, laptop asleep), the old server session keeps
 * our remote ports and the next session's tcpip-forward is refused. Each
 * time a session comes up we learn its server-side process (PID, start
 * time, name, owner) over an exec channel and remember it, on disk too;
 * after a refusal on a later session we end exactly that remembered
 * process, and the port is free at once. A process we may not or must not
 * end (another name, owned by root, shared by several sessions) is left
 * to the server's own keepalive, and reclaim_blocked() says why.
 */
#ifndef TUNNELS_RECLAIM_H
#define TUNNELS_RECLAIM_H

#include <stddef.h>
#include <stdint.h>

#include "sweep.h"

struct config_server;
struct reclaim;

/* What the server lets us do over exec. */
enum reclaim_exec {
	RECLAIM_EXEC_UNKNOWN = 0,
	RECLAIM_EXEC_OK,
	RECLAIM_EXEC_DENIED	/* restricted key, ForceCommand ... */
};

/* Outcome of the last kill, reported once by reclaim_take_result(). */
enum reclaim_result {
	RECLAIM_RESULT_NONE = 0,
	RECLAIM_RESULT_KILLED,	/* the stale session was ended */
	RECLAIM_RESULT_GONE,	/* it no longer existed (or is another
				   process now): nothing to end */
	RECLAIM_RESULT_KEPT,	/* not ours to end: denied or shared */
	RECLAIM_RESULT_FAILED	/* the command could not run */
};

/* What the learn command reported; see reclaim_parse_learn(). */
struct reclaim_proc {
	long	pid;
	char	start[24];	/* /proc/PID/stat field 22, digits */
	char	name[16];	/* comm, sanitised (printable ASCII) */
	long	owner;		/* its real uid */
	long	saved;		/* its saved uid */
	long	uid;		/* the account's uid */
};

/* What the kill command reported; see reclaim_parse_kill(). */
enum reclaim_kill_out {
	RECLAIM_OUT_BAD = 0,	/* anything else */
	RECLAIM_OUT_KILLED,
	RECLAIM_OUT_GONE,
	RECLAIM_OUT_DENIED,	/* kill: not permitted */
	RECLAIM_OUT_SHARED,	/* it is this very session's process */
	RECLAIM_OUT_OTHER	/* the PID is another process now */
};

/*
 * state_dir may be NULL (memory only); the state file is
 * STATE_DIR/STATE_NAME.SERVER.session.
 */
struct reclaim	*reclaim_new(const struct config_server *, const char *state_dir,
		    const char *state_name);
void		 reclaim_free(struct reclaim *);
/* state_dir changed (reload): the file moves there (NULL: memory only). */
void		 reclaim_set_state_dir(struct reclaim *, const char *state_dir,
		    const char *state_name);
void		 reclaim_set_config(struct reclaim *,
		    const struct config_server *);

/* A session came up: learn its server-side process. */
void		 reclaim_session_up(struct reclaim *);
/* The session is gone: what we learned about it is now "previous". */
void		 reclaim_session_down(struct reclaim *);
/* The session ended on both sides: its process is not remembered. */
void		 reclaim_session_ended(struct reclaim *);

/* 1 if a previous session is known and not yet ended: end it now. */
int		 reclaim_start_kill(struct reclaim *);
/* 1 while a job (learn or kill) is queued or running. */
int		 reclaim_busy(const struct reclaim *);
/*
 * The reply the job waits for from the server, for the session's request
 * deadline: "exec" (the answer to the exec request), "close" (the
 * channel's CLOSE), or NULL (nothing, or only the command's own run time,
 * which the job's timeout covers). The channel open is the session's to
 * watch (open_slot).
 */
const char	*reclaim_awaiting(const struct reclaim *);
/* 1 while a kill is queued or running. */
int		 reclaim_killing(const struct reclaim *);
/* ms since the last successful kill, or -1. */
int64_t		 reclaim_killed_ago(const struct reclaim *, int64_t now_ms);
/*
 * 1 if a previous session is known that will not be ended (another
 * process name, not permitted, shared by several of our sessions), with
 * why in buf; 0 otherwise.
 */
int		 reclaim_blocked(const struct reclaim *, char *buf, size_t len);

enum reclaim_result reclaim_take_result(struct reclaim *);
enum reclaim_exec reclaim_exec_state(const struct reclaim *);
/* Our current session's server-side pid, or 0 when unknown. */
long		 reclaim_server_pid(const struct reclaim *);
/* 1 if a previous session was known when this session came up. */
int		 reclaim_had_previous(const struct reclaim *);

/*
 * The libssh2 work (learn or kill over an exec channel), SSH_OK or
 * SSH_DEAD; only from the session's service. Opens its channel in
 * sw->open.
 */
enum ssh_step	 reclaim_step(struct reclaim *, struct sweep *);

/* The shell command that learns the session's process (docs, logs). */
const char	*reclaim_learn_command(void);
/* The shell command that ends a remembered session (for docs and logs). */
char		*reclaim_kill_command(long pid, const char *start,
		    const char *name);
/* 1 if name is a known per-connection server process (sshd ...). */
int		 reclaim_known_name(const char *name);
/* Parse the learn command's output (len bytes); 0 on success. */
int		 reclaim_parse_learn(const char *out, size_t len,
		    struct reclaim_proc *);
/* Parse the kill command's output; the name of "other NAME" in name. */
enum reclaim_kill_out reclaim_parse_kill(const char *out, size_t len,
		    char *name, size_t namelen);

#endif
