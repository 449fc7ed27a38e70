/*
 * The session's service round as the parts below it see it (forward.c,
 * bridge.c, probe.c, reclaim.c): what every step gets, what it returns,
 * and libssh2's one-request-at-a-time slots.
 *
 * No step ever waits for libssh2's send slot: the link takes every packet
 * (link.c), so a call that returns EAGAIN holds nothing and any other call
 * may run next (docs/libssh2.md, "What the engine does"). session.c checks
 * that after every round (session_check_slot).
 */
#ifndef TUNNELS_SWEEP_H
#define TUNNELS_SWEEP_H

#include <stdint.h>
#include <libssh2.h>

struct link;

/* What one step of libssh2 work says to its caller. */
enum ssh_step {
	SSH_OK = 0,	/* nothing more now */
	SSH_DONE,	/* the object is finished: remove and free it */
	SSH_DEAD	/* the SSH session failed */
};

/*
 * A request libssh2 allows one at a time per session, because it keeps
 * the request's state in the session (docs/libssh2.md rule 4): who holds
 * it and since when (the session's request deadline).
 */
struct ssh_slot {
	const void	*owner;		/* NULL: free */
	int64_t		 since_ms;
};

/* What one service round of the session passes down to every step. */
struct sweep {
	LIBSSH2_SESSION	*ss;
	struct link	*link;		/* the SSH socket's send queue */
	int64_t		 now;		/* loop_now() of this round */
	/*
	 * Bumped whenever the SSH socket gave us bytes. A channel found empty
	 * at generation G cannot have new data while it is still G: a step
	 * then skips its libssh2 read, which walks every queued packet of
	 * every channel (libssh2 keeps them in one list).
	 */
	const uint64_t	*rx_gen;
	struct ssh_slot	*listen;	/* forward_listen_ex (forward.c) */
	struct ssh_slot	*open;		/* channel opens (probe, reclaim) */
	/*
	 * The session's round trip: the least over its life of the request
	 * round trips (tcpip-forward, the probe's channel open); 0: unknown.
	 */
	int64_t		*rtt_ms;
	/*
	 * One empty receive buffer the session's connections share: a
	 * connection with nothing buffered reads into it and keeps it only
	 * if data came, so that looking at an idle one allocates nothing.
	 */
	char		**spare;
	int		 progress;	/* anything moved this round */
};

/*
 * A request sent at since_ms was answered in this round: one more sample
 * of the round trip (queueing only ever adds to it: keep the least).
 */
static inline void
sweep_rtt_sample(struct sweep *sw, int64_t since_ms)
{
	int64_t	rtt = sw->now - since_ms;

	if (rtt < 1)
		rtt = 1;
	if (*sw->rtt_ms == 0 || rtt < *sw->rtt_ms)
		*sw->rtt_ms = rtt;
}

/* Take the slot for owner (or keep it); 0 if another holds it. */
static inline int
ssh_slot_take(struct ssh_slot *s, const void *owner, int64_t now)
{
	if (s->owner == owner)
		return 1;
	if (s->owner != NULL)
		return 0;
	s->owner = owner;
	s->since_ms = now;
	return 1;
}

/* Free the slot if owner holds it. */
static inline void
ssh_slot_release(struct ssh_slot *s, const void *owner)
{
	if (s->owner == owner)
		s->owner = NULL;
}

/* 1 if owner holds the slot. */
static inline int
ssh_slot_held(const struct ssh_slot *s, const void *owner)
{
	return s->owner == owner;
}

#endif
