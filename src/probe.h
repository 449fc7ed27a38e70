/*
 * The liveness probe: open a "session" channel and close it again. The
 * server answers a channel open by channel id, so unlike a global request
 * (whose replies libssh2 1.10 never consumes, DESIGN §5.3) nothing is left
 * behind to confuse a later tcpip-forward. Any answer, even a refusal,
 * proves the server alive.
 */
#ifndef TUNNELS_PROBE_H
#define TUNNELS_PROBE_H

#include <libssh2.h>

struct probe {
	LIBSSH2_CHANNEL	*ch;		/* open, being closed */
	int		 wanted;	/* start one at the next step */
	int		 opening;	/* the open is in flight */
};

/* Result of probe_step(). */
enum probe_step {
	PROBE_STEP_OK = 0,
	PROBE_STEP_BLOCKED,	/* holds the send slot: call again first */
	PROBE_STEP_DEAD		/* the SSH session failed */
};

/*
 * Advance the probe; only from the session's service. open_slot: the
 * session's one channel open in flight; server names the log lines.
 */
enum probe_step	 probe_step(struct probe *, LIBSSH2_SESSION *,
		    void **open_slot, int *progress, const char *server);
/* 1 while a probe is wanted or in flight (it reads the transport). */
int		 probe_busy(const struct probe *);
/* Forget the probe (its session is gone; no libssh2 calls). */
void		 probe_reset(struct probe *);

#endif
