/*
 * One forwarded connection: an accepted channel and a local socket.
 *
 * Local socket I/O happens in the fd callback and never touches libssh2;
 * it only fills and drains our buffers and then posts the session
 * ("kick"). Every libssh2 call happens in bridge_step(), which the session
 * runs from its service routine.
 *
 * Writes to the channel stop while the SSH socket's send queue is past
 * its mark (link_congested); the session runs us again once it drains.
 *
 * bridge_step() runs five phases in order, one function each; every
 * libssh2 call appears in exactly one of them. A call that returns EAGAIN
 * holds nothing (the link takes every packet: docs/libssh2.md, "What the
 * engine does"), so the phase is simply tried again on a later round.
 *
 * The channel's receive window grows past libssh2's own while the local
 * side keeps up (window.c): after each batch of reads, bridge_grant()
 * asks the policy, and a local side that takes nothing for a round trip
 * stalls it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bridge.h"
#include "dial.h"
#include "link.h"
#include "log.h"
#include "loop.h"
#include "resolve.h"
#include "ssherr.h"
#include "util.h"
#include "window.h"

/* Per-direction buffer. Bounded: a full buffer stops the other side. */
#define BRIDGE_BUF_SIZE		(64 * 1024)
/* libssh2 sends at most this much per channel_write call (rule 6). */
#define BRIDGE_WRITE_MAX	32700
/*
 * What one connection moves per direction in one visit, at most: a busy
 * connection moves what has arrived without a sweep of every other
 * connection per buffer-full, yet cannot hold the others up for long.
 */
#define BRIDGE_VISIT_MAX	(1024 * 1024)

/* A fixed-size byte queue, allocated only while it holds data. */
struct bridge_buf {
	char	*mem;
	size_t	 off;
	size_t	 len;
};

struct bridge {
	struct loop		*loop;
	struct loop_post	*kick;
	struct bridge_stats	*stats;
	LIBSSH2_CHANNEL		*ch;
	struct window_limits	*wl;		/* the session's */
	struct window		 win;		/* our receive window */

	int			 fd;
	struct loop_io		 io;
	int			 connecting;
	/* The forward's lookup result (it outlives its bridges). */
	const struct resolve_result *addrs;
	int			 addr_next;
	char			*unix_path;

	struct bridge_buf	 to_local;	/* channel -> local socket */
	struct bridge_buf	 to_remote;	/* local socket -> channel */

	unsigned		 local_eof:1;	/* local peer sent FIN */
	unsigned		 remote_eof:1;	/* channel EOF received */
	unsigned		 eof_sent:1;	/* channel EOF sent */
	unsigned		 local_shut:1;	/* shutdown(SHUT_WR) done */
	unsigned		 remote_closed:1; /* channel CLOSE received */
	unsigned		 closing:1;	/* free the channel next */
	/*
	 * Local socket states learned from EAGAIN, so that the sweep makes
	 * no syscall on sockets epoll has not reported ready (a sweep visits
	 * every connection of the session).
	 */
	unsigned		 rfull:1;	/* stopped reading: to_remote full */
	unsigned		 wblocked:1;	/* send said EAGAIN */
	unsigned		 adjusted:1;	/* a WINDOW_ADJUST of ours counts */

	/*
	 * Since when the local side has taken nothing of what waits for it
	 * (-1: it is taking), and what it had taken then (local_sent).
	 */
	int64_t			 stall_ms;
	uint64_t		 stall_sent;
	uint64_t		 local_sent;	/* bytes to the local socket */
	uint64_t		 local_read;	/* of those, read by the program */

	uint64_t		 rx_seen;	/* sweep.rx_gen when found empty */
	uint64_t		 close_seen;	/* same, for the CLOSE check */
};

static void	bridge_on_io(void *, uint32_t);

/* Allocate a buffer's memory if needed. */
static void
bridge_buf_alloc(struct bridge_buf *q)
{
	if (q->mem == NULL)
		q->mem = xmalloc(BRIDGE_BUF_SIZE);
}

/* Free space at the tail (compacting first when allowed). */
static size_t
bridge_buf_room(struct bridge_buf *q, int may_move)
{
	if (q->len == 0)
		q->off = 0;
	else if (may_move && q->off > 0 &&
	    q->off + q->len > BRIDGE_BUF_SIZE / 2) {
		memmove(q->mem, q->mem + q->off, q->len);
		q->off = 0;
	}
	return BRIDGE_BUF_SIZE - q->off - q->len;
}

/* Drop n bytes from the front; release the memory once empty. */
static void
bridge_buf_consume(struct bridge_buf *q, size_t n)
{
	q->off += n;
	q->len -= n;
	if (q->len == 0) {
		q->off = 0;
		/* Idle connections keep no buffer memory. */
		free(q->mem);
		q->mem = NULL;
	}
}

/* Stop watching and close the local socket. */
static void
bridge_close_fd(struct bridge *b)
{
	if (b->fd == -1)
		return;
	loop_io_del(b->loop, &b->io);
	close(b->fd);
	b->fd = -1;
}

/* The local side failed: drop it and close the channel. */
static void
bridge_local_fail(struct bridge *b, const char *what, int err)
{
	log_debug(b->stats->server, b->stats->tunnel, "local %s: %s", what,
	    strerror(err));
	bridge_close_fd(b);
	b->closing = 1;
	loop_post(b->loop, b->kick);
}

/*
 * The local connect failed for good (every address tried): count it, log
 * it rate-limited by cause, and close the forwarded connection. Out of
 * file descriptors, every connection of a burst fails the same way; the
 * channel is closed at once, so the server's client sees the end at once
 * and nothing is retried in a loop.
 */
static void
bridge_connect_failed(struct bridge *b, int err)
{
	struct bridge_stats	*st = b->stats;
	struct log_limit	*lim = &st->lim_target;
	const char		*hint = "";
	char			 key[64];

	st->local_errors++;
	switch (err) {
	case EMFILE:
		hint = " (this process's file descriptor limit: LimitNOFILE= "
		    "under systemd, ulimit -n otherwise)";
		lim = &st->lim_res;
		break;
	case ENFILE:
		hint = " (the system-wide limit on open files: fs.file-max)";
		lim = &st->lim_res;
		break;
	case ENOBUFS:
	case ENOMEM:
		lim = &st->lim_res;
		break;
	}
	snprintf(key, sizeof key, "local connect: %d", err);
	log_limited(lim, loop_now(b->loop), key, LOG_PRI_WARNING, st->server,
	    st->tunnel, "local connect failed: %s%s; closing the forwarded "
	    "connection (%llu local errors so far)", strerror(err), hint,
	    (unsigned long long)st->local_errors);
	b->closing = 1;
	loop_post(b->loop, b->kick);
}

/* Release the rate limits of a forward's stats. */
void
bridge_stats_clear(struct bridge_stats *st)
{
	log_limit_reset(&st->lim_res);
	log_limit_reset(&st->lim_target);
}

/*
 * Start a non-blocking connect to the next candidate address; -1 with
 * errno when none is left (err: the error to report if none was tried).
 */
static int
bridge_connect_next(struct bridge *b, int err)
{
	struct sockaddr_un	 sun;
	const struct sockaddr	*sa;
	socklen_t		 salen;
	int			 fd;

	for (;;) {
		if (b->unix_path != NULL) {
			if (b->addr_next++ > 0)
				break;
			memset(&sun, 0, sizeof sun);
			sun.sun_family = AF_UNIX;
			memcpy(sun.sun_path, b->unix_path,
			    MIN(strlen(b->unix_path), sizeof sun.sun_path - 1));
			sa = (const struct sockaddr *)&sun;
			salen = sizeof sun;
		} else {
			if (b->addrs == NULL || b->addr_next >= b->addrs->n)
				break;
			sa = (const struct sockaddr *)
			    &b->addrs->addrs[b->addr_next];
			salen = b->addrs->lens[b->addr_next];
			b->addr_next++;
		}
		if (dial_socket(sa, salen, &fd) == -1) {
			err = errno;
			continue;
		}
		if (loop_io_add(b->loop, &b->io, fd, EPOLLOUT) == -1) {
			err = errno;
			close(fd);
			continue;
		}
		b->fd = fd;
		b->connecting = 1;
		return 0;
	}
	errno = err;
	return -1;
}

/* Wrap an accepted channel and start connecting to the local target. */
struct bridge *
bridge_new(struct loop *l, struct loop_post *kick, struct bridge_stats *st,
    struct window_limits *wl, LIBSSH2_CHANNEL *ch,
    const struct resolve_result *addrs, const char *unix_path)
{
	struct bridge	*b = xcalloc(1, sizeof *b);

	b->loop = l;
	b->kick = kick;
	b->stats = st;
	b->ch = ch;
	b->wl = wl;
	b->stall_ms = -1;
	/* libssh2 opened the channel with its default window, the base. */
	window_init(&b->win, wl->daemon, &wl->session,
	    LIBSSH2_CHANNEL_WINDOW_DEFAULT, wl->ceiling);
	b->fd = -1;
	/* Never equal to a generation: the first step reads. */
	b->rx_seen = b->close_seen = UINT64_MAX;
	loop_io_init(&b->io, bridge_on_io, b);
	b->addrs = addrs;
	if (unix_path != NULL)
		b->unix_path = xstrdup(unix_path);
	st->active++;
	st->total++;
	/* Refused at once (unix socket missing, no fds): close it. */
	if (bridge_connect_next(b, ECONNREFUSED) == -1)
		bridge_connect_failed(b, errno);
	return b;
}

/* Compute the local fd's epoll interest from the bridge state. */
static void
bridge_update_interest(struct bridge *b)
{
	uint32_t	ev = 0;

	if (b->fd == -1)
		return;
	if (b->connecting)
		ev = EPOLLOUT;
	else {
		if (!b->local_eof && !b->closing &&
		    bridge_buf_room(&b->to_remote, 0) > 0)
			ev |= EPOLLIN;
		if (b->to_local.len > 0)
			ev |= EPOLLOUT;
	}
	/*
	 * Nothing left to do locally: stop watching, or a hang-up would be
	 * reported again on every turn (epoll always reports HUP).
	 */
	if (ev == 0 && b->local_eof && b->local_shut) {
		loop_io_del(b->loop, &b->io);
		return;
	}
	loop_io_set(b->loop, &b->io, ev);
}

/* Read from the local socket into to_remote; 1 if anything changed. */
static int
bridge_local_read(struct bridge *b)
{
	size_t	room;
	ssize_t	n;
	int	changed = 0;

	while (b->fd != -1 && !b->connecting && !b->local_eof && !b->closing) {
		bridge_buf_alloc(&b->to_remote);
		room = bridge_buf_room(&b->to_remote, 1);
		if (room == 0) {
			b->rfull = 1;
			break;
		}
		n = recv(b->fd, b->to_remote.mem + b->to_remote.off +
		    b->to_remote.len, room, 0);
		if (n > 0) {
			b->to_remote.len += (size_t)n;
			changed = 1;
			continue;
		}
		if (n == 0) {
			b->local_eof = 1;
			changed = 1;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			bridge_local_fail(b, "read", errno);
			return 1;
		}
		break;
	}
	if (b->to_remote.len == 0) {
		free(b->to_remote.mem);
		b->to_remote.mem = NULL;
		b->to_remote.off = 0;
	}
	return changed;
}

/* Write to_local to the local socket; 1 if anything changed. */
static int
bridge_local_write(struct bridge *b)
{
	ssize_t	n;
	int	changed = 0;

	while (b->fd != -1 && !b->connecting && b->to_local.len > 0) {
		n = send(b->fd, b->to_local.mem + b->to_local.off,
		    b->to_local.len, MSG_NOSIGNAL);
		if (n > 0) {
			bridge_buf_consume(&b->to_local, (size_t)n);
			b->local_sent += (uint64_t)n;
			changed = 1;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK) {
			bridge_local_fail(b, "write", errno);
			return 1;
		}
		b->wblocked = 1;
		break;
	}
	/* Everything from the remote client is delivered: pass its EOF on. */
	if (b->fd != -1 && !b->connecting && b->remote_eof &&
	    b->to_local.len == 0 && !b->local_shut) {
		shutdown(b->fd, SHUT_WR);
		b->local_shut = 1;
		changed = 1;
	}
	return changed;
}

/* The local connect finished (or failed: then try the next address). */
static void
bridge_connected(struct bridge *b)
{
	socklen_t	len = sizeof(int);
	int		err = 0, one = 1;

	if (getsockopt(b->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		bridge_close_fd(b);
		if (bridge_connect_next(b, err) == 0)
			return;
		bridge_connect_failed(b, errno);
		return;
	}
	b->connecting = 0;
	if (b->unix_path == NULL)
		setsockopt(b->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Local socket event: move bytes between socket and buffers. */
static void
bridge_on_io(void *arg, uint32_t events)
{
	struct bridge	*b = arg;
	int		 changed;

	if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
		b->wblocked = 0;
	if (b->connecting) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		bridge_connected(b);
		if (b->connecting || b->fd == -1)
			return;
	}
	changed = bridge_local_write(b);
	changed |= bridge_local_read(b);
	bridge_update_interest(b);
	if (changed)
		loop_post(b->loop, b->kick);
}

/* Log a libssh2 failure on this channel and classify it. */
static enum ssh_step
bridge_ssh_error(struct bridge *b, LIBSSH2_SESSION *ss, const char *what,
    int rc)
{
	char	*why = ssherr_describe(ss, rc);
	int	 fatal = ssherr_session_fatal(rc);

	log_msg(fatal ? LOG_PRI_INFO : LOG_PRI_DEBUG, b->stats->server,
	    b->stats->tunnel, "%s: %s", what, why);
	free(why);
	if (fatal)
		return SSH_DEAD;
	b->closing = 1;
	return SSH_OK;
}

/*
 * The window the server may still fill, as the policy should see it.
 * Until we grant more ourselves, what is granted is libssh2's own: its
 * base, topped up by as much as one read asks (channel.c), nothing of
 * ours to charge to a budget.
 */
static uint32_t
bridge_granted(struct bridge *b)
{
	uint32_t	avail;

	avail = (uint32_t)libssh2_channel_window_read_ex(b->ch, NULL, NULL);
	if (b->win.target > b->win.base)
		return avail;
	if (b->adjusted && avail <= b->win.base + BRIDGE_BUF_SIZE)
		b->adjusted = 0;
	return b->adjusted ? avail : MIN(avail, b->win.base);
}

/*
 * 1 once the local side has taken nothing of what waits for it for a
 * round trip: stalled, not just behind a burst. A window-limited channel
 * receives its window in bursts faster than a local program reads, so a
 * full socket buffer alone says nothing.
 */
static int
bridge_window_stalled(struct bridge *b, struct sweep *sw)
{
	if (!bridge_stalled(b)) {
		b->stall_ms = -1;
		return 0;
	}
	if (b->stall_ms < 0 || b->local_sent != b->stall_sent) {
		b->stall_ms = sw->now;
		b->stall_sent = b->local_sent;
	}
	return sw->now - b->stall_ms >= *sw->rtt_ms;
}

/*
 * Bytes the local program read since the last call: what we sent to its
 * socket less what still waits in the socket's queue. A program that
 * never reads still takes megabytes into the kernel's buffers at first;
 * those must not look like a program that keeps up.
 */
static size_t
bridge_local_drained(struct bridge *b)
{
	uint64_t	done = b->local_sent, n;
	int		queued = 0;

	if (b->fd != -1 && !b->connecting &&
	    ioctl(b->fd, SIOCOUTQ, &queued) == 0 && queued > 0)
		done -= MIN((uint64_t)queued, done);
	if (done <= b->local_read)
		return 0;
	n = done - b->local_read;
	b->local_read = done;
	return (size_t)n;
}

/*
 * After reading got bytes from the channel (0: none), tell the window
 * policy, and send the WINDOW_ADJUST it asks for. A local side that is
 * not taking what waits for it stalls the window instead: no growth, and
 * no more than the base granted from now on.
 */
static enum ssh_step
bridge_grant(struct bridge *b, struct sweep *sw, size_t got)
{
	struct window_read	r;
	uint32_t		adj;
	int			rc;

	if (b->closing || b->remote_eof)
		return SSH_OK;
	if (bridge_window_stalled(b, sw)) {
		if (!b->win.stalled)
			window_stall(&b->win, bridge_granted(b));
		return SSH_OK;
	}
	if (got == 0)
		return SSH_OK;
	r.avail = bridge_granted(b);
	/* A reload may have changed the ceiling. */
	window_set_ceiling(&b->win, b->wl->ceiling);
	r.now_ms = sw->now;
	r.rtt_ms = *sw->rtt_ms;
	r.n = bridge_local_drained(b);
	if ((adj = window_on_read(&b->win, &r)) == 0)
		return SSH_OK;
	rc = libssh2_channel_receive_window_adjust2(b->ch, adj, 1, NULL);
	if (rc == 0)
		b->adjusted = 1;
	/*
	 * EAGAIN cannot happen while the link takes every packet; should it,
	 * the next read asks again (the policy sees the window unchanged).
	 */
	if (rc == 0 || rc == LIBSSH2_ERROR_EAGAIN)
		return SSH_OK;
	return bridge_ssh_error(b, sw->ss, "channel window adjust", rc);
}

/*
 * Give to_local memory for a read: the sweep's spare buffer when it has
 * none (so that looking at an idle connection allocates nothing).
 */
static void
bridge_rx_take(struct bridge *b, struct sweep *sw)
{
	if (b->to_local.mem != NULL)
		return;
	if (*sw->spare == NULL)
		*sw->spare = xmalloc(BRIDGE_BUF_SIZE);
	b->to_local.mem = *sw->spare;
	b->to_local.off = 0;
	*sw->spare = NULL;
}

/* An empty to_local gives its memory back (to the spare, else freed). */
static void
bridge_rx_give(struct bridge *b, struct sweep *sw)
{
	if (b->to_local.len > 0 || b->to_local.mem == NULL)
		return;
	if (*sw->spare == NULL)
		*sw->spare = b->to_local.mem;
	else
		free(b->to_local.mem);
	b->to_local.mem = NULL;
	b->to_local.off = 0;
}

/*
 * to_local is full: pass it on to the local socket, so that this visit
 * can read on; 0 when the socket takes nothing more (or the visit has
 * moved its share: the other connections wait for this one).
 */
static int
bridge_rx_flush(struct bridge *b, size_t got)
{
	if (b->wblocked || got >= BRIDGE_VISIT_MAX)
		return 0;
	(void)bridge_local_write(b);
	return bridge_buf_room(&b->to_local, 1) > 0;
}

/*
 * Phase 1: channel -> to_local -> local socket, until the transport has
 * nothing new for us, the local socket is full (then the channel's
 * window does the backpressure) or the visit has moved its share; the
 * remote EOF goes out to the local side.
 */
static enum ssh_step
bridge_from_channel(struct bridge *b, struct sweep *sw)
{
	ssize_t	n;
	size_t	room, got = 0;

	while (!b->closing && !b->remote_eof && b->rx_seen != *sw->rx_gen) {
		bridge_rx_take(b, sw);
		room = bridge_buf_room(&b->to_local, 1);
		if (room == 0) {
			if (bridge_rx_flush(b, got))
				continue;
			break;
		}
		n = libssh2_channel_read(b->ch, b->to_local.mem +
		    b->to_local.off + b->to_local.len, room);
		if (n == LIBSSH2_ERROR_EAGAIN) {
			/* Drained the transport: empty until it gives more. */
			b->rx_seen = *sw->rx_gen;
			break;
		}
		if (n > 0) {
			b->to_local.len += (size_t)n;
			b->stats->bytes_in += (uint64_t)n;
			got += (size_t)n;
			sw->progress = 1;
			continue;
		}
		if (n == 0) {
			/* 0 without EOF would be a library oddity: no data. */
			if (libssh2_channel_eof(b->ch)) {
				b->remote_eof = 1;
				sw->progress = 1;
			}
			break;
		}
		if (bridge_ssh_error(b, sw->ss, "channel read", (int)n) ==
		    SSH_DEAD)
			return SSH_DEAD;
		break;
	}
	/* New bytes for the local side, or its half-close, go out now. */
	if ((got > 0 && !b->wblocked) || (b->remote_eof && !b->local_shut))
		if (bridge_local_write(b))
			sw->progress = 1;
	bridge_rx_give(b, sw);
	return bridge_grant(b, sw, got);
}

/*
 * to_remote -> channel, as far as the peer's window and the SSH socket's
 * queue allow; *sent counts what went.
 */
static enum ssh_step
bridge_tx_write(struct bridge *b, struct sweep *sw, size_t *sent)
{
	ssize_t	n;

	while (!b->closing && b->to_remote.len > 0) {
		/*
		 * A zero window makes channel_write clear OUTBOUND from
		 * block_directions: check it ourselves.
		 */
		if (libssh2_channel_window_write_ex(b->ch, NULL) == 0)
			break;
		/* The SSH socket is behind: wait for it to drain. */
		if (link_congested(sw->link)) {
			link_wait(sw->link);
			break;
		}
		n = libssh2_channel_write(b->ch, b->to_remote.mem +
		    b->to_remote.off, MIN(b->to_remote.len, BRIDGE_WRITE_MAX));
		if (n == LIBSSH2_ERROR_EAGAIN || n == 0)
			break;
		if (n > 0) {
			bridge_buf_consume(&b->to_remote, (size_t)n);
			b->stats->bytes_out += (uint64_t)n;
			*sent += (size_t)n;
			sw->progress = 1;
			continue;
		}
		if (bridge_ssh_error(b, sw->ss, "channel write", (int)n) ==
		    SSH_DEAD)
			return SSH_DEAD;
		break;
	}
	return SSH_OK;
}

/*
 * Phase 2: to_remote -> channel; whenever that makes room, the local
 * socket fills to_remote again and the visit goes on, until the socket,
 * the window or the SSH socket's queue stops it, or the visit has moved
 * its share.
 */
static enum ssh_step
bridge_to_channel(struct bridge *b, struct sweep *sw)
{
	size_t	sent = 0;

	for (;;) {
		if (bridge_tx_write(b, sw, &sent) == SSH_DEAD)
			return SSH_DEAD;
		/* Room again in to_remote: resume reading the local socket. */
		if (!b->rfull || b->to_remote.len >= BRIDGE_BUF_SIZE)
			break;
		b->rfull = 0;
		if (!bridge_local_read(b))
			break;
		sw->progress = 1;
		if (sent >= BRIDGE_VISIT_MAX || b->to_remote.len == 0)
			break;
	}
	return SSH_OK;
}

/* Phase 3: local EOF and everything sent: half-close the channel. */
static enum ssh_step
bridge_send_eof(struct bridge *b, struct sweep *sw)
{
	int	rc;

	if (b->closing || !b->local_eof || b->to_remote.len > 0 || b->eof_sent)
		return SSH_OK;
	rc = libssh2_channel_send_eof(b->ch);
	if (rc == 0) {
		b->eof_sent = 1;
		sw->progress = 1;
	} else if (rc != LIBSSH2_ERROR_EAGAIN)
		return bridge_ssh_error(b, sw->ss, "channel send_eof", rc);
	return SSH_OK;
}

/*
 * Phase 4: after the remote EOF, learn whether the remote client is gone
 * altogether (sshd sent CLOSE): then nothing more can be delivered to it
 * and the connection ends once to_local is flushed.
 */
static enum ssh_step
bridge_check_closed(struct bridge *b, struct sweep *sw)
{
	int	rc;

	if (b->closing || !b->remote_eof || b->remote_closed ||
	    (b->eof_sent && b->local_shut) || b->close_seen == *sw->rx_gen)
		return SSH_OK;
	rc = libssh2_channel_wait_closed(b->ch);
	if (rc == LIBSSH2_ERROR_EAGAIN)
		b->close_seen = *sw->rx_gen;
	else if (rc == 0)
		b->remote_closed = 1;
	else
		return bridge_ssh_error(b, sw->ss, "channel wait_closed", rc);
	return SSH_OK;
}

/* Phase 5: both directions done (or failed): free the channel. */
static enum ssh_step
bridge_free_channel(struct bridge *b, struct sweep *sw)
{
	/* EAGAIN: CLOSE sent, waiting for the server's: retry later. */
	if (libssh2_channel_free(b->ch) == LIBSSH2_ERROR_EAGAIN)
		return SSH_OK;
	/* Any other result: libssh2 freed the channel anyway. */
	b->ch = NULL;
	sw->progress = 1;
	return SSH_DONE;
}

/* Do this bridge's libssh2 work, phase by phase (see the file comment). */
enum ssh_step
bridge_step(struct bridge *b, struct sweep *sw)
{
	if (bridge_from_channel(b, sw) == SSH_DEAD ||
	    bridge_to_channel(b, sw) == SSH_DEAD ||
	    bridge_send_eof(b, sw) == SSH_DEAD ||
	    bridge_check_closed(b, sw) == SSH_DEAD)
		return SSH_DEAD;
	if ((b->eof_sent && b->local_shut) || b->fd == -1 ||
	    (b->remote_closed && b->to_local.len == 0))
		b->closing = 1;
	bridge_update_interest(b);
	return b->closing ? bridge_free_channel(b, sw) : SSH_OK;
}

/* 1 if the local side is not taking the data waiting for it. */
int
bridge_stalled(const struct bridge *b)
{
	return b->fd != -1 && !b->closing && b->to_local.len > 0 &&
	    (b->connecting || b->wblocked);
}

/*
 * The window granted up to now (the base until it grows). A reload that
 * lowered the ceiling reaches the policy at the channel's next read
 * (bridge_grant): status shows it at once, an idle channel included.
 */
uint32_t
bridge_window(const struct bridge *b)
{
	return MIN(b->win.target, MAX(b->wl->ceiling, b->win.base));
}

/* Close this connection at the next step (its tunnel is going away). */
void
bridge_abort(struct bridge *b)
{
	bridge_close_fd(b);
	b->closing = 1;
	loop_post(b->loop, b->kick);
}

/*
 * Free the bridge. A channel not yet freed by bridge_step() is only
 * forgotten: this happens when the session is torn down, and
 * libssh2_session_free() releases every channel of the session.
 */
void
bridge_free(struct bridge *b)
{
	if (b == NULL)
		return;
	b->ch = NULL;
	window_release(&b->win);
	bridge_close_fd(b);
	free(b->to_local.mem);
	free(b->to_remote.mem);
	free(b->unix_path);
	b->stats->active--;
	free(b);
}
