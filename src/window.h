/*
 * Receive-window autotuning for forwarded channels: pure policy (no
 * libssh2, no clock of its own). See window.c.
 */
#ifndef TUNNELS_WINDOW_H
#define TUNNELS_WINDOW_H

#include <stddef.h>
#include <stdint.h>

/* What all channels together may hold beyond their base windows. */
struct window_budget {
	uint64_t	limit;
	uint64_t	used;
};

/* One channel's receive window. */
struct window {
	/* Charged together: the daemon's budget and the session's. */
	struct window_budget	*budget[2];
	uint32_t		 base;		/* libssh2's own window */
	uint32_t		 ceiling;	/* this channel's largest */
	uint32_t		 target;	/* granted up to this */
	uint64_t		 charged;	/* held from the budget */
	int64_t			 epoch_ms;	/* start of this round trip */
	uint64_t		 epoch_bytes;	/* consumed since epoch_ms */
	uint32_t		 grows;		/* times grown */
	int			 stalled;	/* the local side stopped */
};

/* What happened on the channel when the bridge read from it. */
struct window_read {
	int64_t		now_ms;
	int64_t		rtt_ms;		/* the session's round trip; 0: unknown */
	size_t		n;		/* bytes just read and passed on */
	uint32_t	avail;		/* window the server may still fill */
};

void		window_init(struct window *, struct window_budget *,
		    struct window_budget *, uint32_t, uint32_t);
uint32_t	window_on_read(struct window *, const struct window_read *);
void		window_stall(struct window *, uint32_t);
void		window_release(struct window *);

#endif
