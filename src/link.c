/*
 * The SSH connection's socket. libssh2 reads the socket in every channel
 * call and sends every packet with its own send(); with thousands of
 * connections on one session both cost a syscall each. Reads therefore
 * skip the syscall once the socket is known empty (epoll says when it no
 * longer is), and whole packets are collected and written once per
 * service round.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include "link.h"

/* Packets queued before libssh2 is told EAGAIN. */
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

	idle = (int)MAX(1, keepalive_ms / 1000);
	intvl = idle;
	/* Unacked data for longer than the dead-link bound ends it too. */
	timeout = (unsigned)(keepalive_ms * count);
	setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(l->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	setsockopt(l->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
	setsockopt(l->fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
	setsockopt(l->fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
	setsockopt(l->fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout,
	    sizeof timeout);
}

/*
 * Read for libssh2. Once recv has said EAGAIN nothing can arrive
 * unnoticed: epoll reports the socket readable again (link_readable).
 * Other fds (an agent socket) are passed straight through.
 */
ssize_t
link_recv(struct link *l, int fd, void *buf, size_t len, int flags)
{
	ssize_t	n;

	if (fd == l->fd && l->rx_empty)
		return -EAGAIN;
	n = recv(fd, buf, len, flags);
	if (n > 0) {
		if (fd == l->fd) {
			l->last_rx_ms = time_now_ms();
			l->rx_gen++;
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
 * Send for libssh2: take whole packets into the queue, or refuse with
 * EAGAIN when it is full. Never a partial packet: libssh2 then keeps it in
 * its own send slot and the send-slot rules apply as with a full socket.
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
	if (l->out_errno != 0)
		return -l->out_errno;
	if (l->out.len + len > LINK_OUT_MAX) {
		(void)link_flush(l);
		if (l->out_errno != 0)
			return -l->out_errno;
		if (l->out.len + len > LINK_OUT_MAX)
			return -EAGAIN;
	}
	buf_append(&l->out, buf, len);
	return (ssize_t)len;
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
}

/* Release the queue's memory. */
void
link_clear(struct link *l)
{
	buf_clear(&l->out);
}
