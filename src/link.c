/*
 * The SSH connection's socket. libssh2 reads the socket in every channel
 * call and sends every packet with its own send(); with thousands of
 * connections on one session both cost a syscall each. Reads therefore
 * skip the syscall once the socket is known empty (epoll says when it no
 * longer is), and whole packets are collected and written once per
 * service round.
 *
 * The send hook never refuses a packet. A refused packet stays in
 * libssh2's one outbound slot, and 1.11.1 handles that badly: a reply it
 * makes while reading (a channel open confirmation) is then lost with its
 * connection, and the caller's repeat can spin forever (docs/libssh2.md
 * rules 1, 1a, 1b). The queue is bounded one level up instead: past
 * LINK_OUT_MAX the bridges stop writing (link_congested), and what else
 * libssh2 sends is small and bounded by what one round reads.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include "link.h"
#include "msmath.h"

/* Queued bytes past which bulk writers wait (see the file comment). */
#define LINK_OUT_MAX	(256 * 1024)

/* An unconnected link. */
void
link_init(struct link *l)
{
	memset(l, 0, sizeof *l);
	l->fd = -1;
	buf_init(&l->out);
}

/* Kernel-level liveness and latency settings on the SSH socket. */
void
link_sockopts(struct link *l, int64_t keepalive_ms, int count)
{
	int		one = 1, idle, intvl;
	unsigned	timeout;

	/* The kernel refuses more than 32767 s (MAX_TCP_KEEPIDLE). */
	idle = (int)MIN(MAX(1, keepalive_ms / 1000), 32767);
	intvl = idle;
	/* Unacked data for longer than the dead-link bound ends it too. */
	timeout = (unsigned)MIN(MAX(0, ms_mul(keepalive_ms, count)), INT_MAX);
	setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(l->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	setsockopt(l->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
	setsockopt(l->fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
	setsockopt(l->fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
	setsockopt(l->fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout,
	    sizeof timeout);
}

/*
 * Read for libssh2 (now: the loop's clock). Once recv has said EAGAIN
 * nothing can arrive unnoticed: epoll reports the socket readable again
 * (link_readable). Other fds (an agent socket) are passed straight
 * through.
 */
ssize_t
link_recv(struct link *l, int64_t now, int fd, void *buf, size_t len,
    int flags)
{
	ssize_t	n;

	if (fd == l->fd && l->rx_empty)
		return -EAGAIN;
	if (fd == l->fd && l->rx_capped) {
		/* The round's share is read: the socket stays readable. */
		if (l->rx_left == 0)
			return -EAGAIN;
		len = MIN(len, l->rx_left);
	}
	n = recv(fd, buf, len, flags);
	if (n > 0) {
		if (fd == l->fd) {
			l->last_rx_ms = now;
			l->rx_gen++;
			if (l->rx_capped)
				l->rx_left -= (size_t)n;
		}
		return n;
	}
	if (n == 0)
		return 0;
	/* libssh2 treats only -EAGAIN as "would block". */
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		if (fd == l->fd)
			l->rx_empty = 1;
		return -EAGAIN;
	}
	return -errno;
}

/* Write out what libssh2 has handed us; -1 (out_errno set) on failure. */
int
link_flush(struct link *l)
{
	ssize_t	n;

	while (l->out.len > 0 && l->out_errno == 0) {
		n = send(l->fd, buf_data(&l->out), l->out.len, MSG_NOSIGNAL);
		if (n > 0) {
			buf_consume(&l->out, (size_t)n);
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		l->out_errno = n == -1 ? errno : EPIPE;
	}
	return l->out_errno ? -1 : 0;
}

/*
 * Send for libssh2: take every whole packet into the queue (never EAGAIN,
 * see the file comment); past the mark, try to write some out first.
 */
ssize_t
link_send(struct link *l, int fd, const void *buf, size_t len, int flags)
{
	ssize_t	n;

	if (fd != l->fd) {
		n = send(fd, buf, len, flags | MSG_NOSIGNAL);
		if (n == -1)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		return n;
	}
	if (l->out_errno == 0 && l->out.len + len > LINK_OUT_MAX)
		(void)link_flush(l);
	if (l->out_errno != 0)
		return -l->out_errno;
	buf_append(&l->out, buf, len);
	return (ssize_t)len;
}

/* 1 when bulk writers must wait for the queue to drain. */
int
link_congested(const struct link *l)
{
	return l->out.len >= LINK_OUT_MAX;
}

/* A writer stopped because the queue was congested. */
void
link_wait(struct link *l)
{
	l->waiting = 1;
}

/* 1 once when a waiting writer may go on (the queue is below the mark). */
int
link_writable(struct link *l)
{
	if (!l->waiting || link_congested(l))
		return 0;
	l->waiting = 0;
	return 1;
}

/*
 * From now on read at most bytes off the socket until link_rx_uncap: the
 * level-triggered readiness brings the next round for the rest.
 */
void
link_rx_cap(struct link *l, size_t bytes)
{
	l->rx_capped = 1;
	l->rx_left = bytes;
}

/* Read without a bound again. */
void
link_rx_uncap(struct link *l)
{
	l->rx_capped = 0;
}

/* The kernel has something for us again (or an error to report). */
void
link_readable(struct link *l)
{
	l->rx_empty = 0;
}

/* Forget the connection: nothing can be written after shutdown(). */
void
link_reset(struct link *l)
{
	buf_consume(&l->out, l->out.len);
	l->out_errno = 0;
	l->rx_empty = 0;
	l->waiting = 0;
}

/* Release the queue's memory. */
void
link_clear(struct link *l)
{
	buf_clear(&l->out);
}
