/*
 * The SSH connection's socket as libssh2 sees it: reads that skip the
 * syscall when the socket is known empty, writes batched once per service
 * round and never refused, the time and generation of the last bytes
 * received.
 */
#ifndef TUNNELS_LINK_H
#define TUNNELS_LINK_H

#include <stdint.h>
#include <sys/types.h>

#include "util.h"

struct link {
	int		fd;		/* -1 when not connected */
	int		rx_empty;	/* recv said EAGAIN since the last event */
	uint64_t	rx_gen;		/* bumps whenever bytes arrive */
	int64_t		last_rx_ms;	/* monotonic time of the last bytes */
	struct buf	out;		/* whole packets not yet written */
	int		out_errno;	/* a write failed */
	int		waiting;	/* a writer stopped for room */
	int		rx_capped;	/* a service round: rx_left applies */
	size_t		rx_left;	/* bytes this round may still read */
};

void	 link_init(struct link *);
/* Kernel keepalive, TCP_USER_TIMEOUT (keepalive x count), TCP_NODELAY. */
void	 link_sockopts(struct link *, int64_t keepalive_ms, int count);
/* The bodies of libssh2's RECV and SEND callbacks (now: loop_now()). */
ssize_t	 link_recv(struct link *, int64_t now, int fd, void *, size_t,
	    int flags);
ssize_t	 link_send(struct link *, int fd, const void *, size_t, int flags);
/* Write what is queued; -1 with out_errno set when the socket failed. */
int	 link_flush(struct link *);
/*
 * 1 when the queue is past its mark: bulk writers (the bridges) must not
 * hand libssh2 more data now. They call link_wait() and are run again
 * once link_writable() says the queue went below the mark.
 */
int	 link_congested(const struct link *);
void	 link_wait(struct link *);
/*
 * Bound what one service round reads off the socket (libssh2 decrypts
 * everything it can read before any channel sees a byte), or lift it.
 */
void	 link_rx_cap(struct link *, size_t);
void	 link_rx_uncap(struct link *);
/* 1 (once) if a writer waited and the queue is below the mark again. */
int	 link_writable(struct link *);
/* epoll reported input (or an error): recv must look again. */
void	 link_readable(struct link *);
/* After shutdown(): drop what is queued, forget the socket's state. */
void	 link_reset(struct link *);
void	 link_clear(struct link *);

#endif
