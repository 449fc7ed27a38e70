/*
 * The liveness probe: ask the server to open a channel of a type no
 * server knows, and take its refusal as the proof of life. The server
 * answers a channel open by channel id, so unlike a global request (whose
 * replies libssh2 never consumes: docs/libssh2.md rule 3) nothing is left
 * behind to confuse a later tcpip-forward; and unlike a "session" channel,
 * which sshd logs when MaxSessions is 0 ("no more sessions"), an unknown
 * type is refused silently by OpenSSH and Dropbear alike (rule 9). Should
 * a server ever open it, the channel is freed at once: still an answer.
 */
#ifndef TUNNELS_PROBE_H
#define TUNNELS_PROBE_H

#include <libssh2.h>

#include "sweep.h"

/* RFC 4250 §4.6.1 local name; .invalid can belong to no one (RFC 2606). */
#define PROBE_CHANNEL_TYPE	"tunnels-probe@tunnels.invalid"

struct probe {
	LIBSSH2_CHANNEL	*ch;		/* opened after all: being freed */
	int		 wanted;	/* start one at the next step */
	int		 opening;	/* the open is in flight */
};

/*
 * Advance the probe (SSH_OK or SSH_DEAD); only from the session's
 * service. It opens its channel in sw->open; server names the log lines.
 */
enum ssh_step	 probe_step(struct probe *, struct sweep *,
		    const char *server);
/* 1 while a probe is wanted or in flight (it reads the transport). */
int		 probe_busy(const struct probe *);
/* Forget the probe (its session is gone; no libssh2 calls). */
void		 probe_reset(struct probe *);

#endif
