/*
 * One forwarded connection: an accepted SSH channel <-> a local socket,
 * with bounded buffers both ways, backpressure and half-close.
 */
#ifndef TUNNELS_BRIDGE_H
#define TUNNELS_BRIDGE_H

#include <stdint.h>
#include <libssh2.h>

#include "log.h"
#include "sweep.h"

struct loop;
struct loop_post;
struct bridge;
struct resolve_result;

/* Names and counters a bridge shares with its forward (owned by it). */
struct bridge_stats {
	const char	*server;
	const char	*tunnel;
	uint64_t	active;
	uint64_t	total;
	uint64_t	bytes_in;	/* remote client -> local target */
	uint64_t	bytes_out;	/* local target -> remote client */
	uint64_t	local_errors;	/* local connect refused/failed */
	/*
	 * Local connect failures are logged once per cause and window (a
	 * burst of connections must not write a line each): one limit for
	 * our own lack of resources (no fds), one for the target's answer.
	 */
	struct log_limit lim_res;
	struct log_limit lim_target;
};

/* Release what the stats hold (their forward is going away). */
void		 bridge_stats_clear(struct bridge_stats *);

/*
 * Take ownership of an accepted channel and start connecting to the
 * local target (addrs for TCP, or unix_path). kick is posted whenever
 * local I/O leaves work for the session.
 */
struct bridge	*bridge_new(struct loop *, struct loop_post *kick,
		    struct bridge_stats *, LIBSSH2_CHANNEL *,
		    const struct resolve_result *addrs, const char *unix_path);

/*
 * Do the libssh2 side of the bridge; only from the session's service.
 * SSH_DONE: the channel is freed, free the bridge.
 */
enum ssh_step	 bridge_step(struct bridge *, struct sweep *);

/*
 * 1 if the local side stopped taking data (its send would block, or its
 * connect has not finished) while data waits for it: libssh2 then keeps
 * what the server sends for this connection, up to its window.
 */
int		 bridge_stalled(const struct bridge *);

/* Ask for a close (tunnel removed); the next steps free the channel. */
void		 bridge_abort(struct bridge *);

/* Free the bridge (a live channel is left to libssh2_session_free). */
void		 bridge_free(struct bridge *);

#endif
