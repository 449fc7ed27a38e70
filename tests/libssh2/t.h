/*
 * Shared scaffolding of the libssh2 contract tests (tests/libssh2/NAME.c):
 * a counting allocator, a send/recv hook that can refuse on demand the
 * way src/link.c does (whole packets or -EAGAIN, never a partial send),
 * session setup against a real sshd, and forward/accept helpers.
 *
 * Each program checks one rule of docs/libssh2.md and exits 0 when
 * libssh2 still behaves as the engine relies on, 1 (with a FAIL line)
 * when it does not. Lines starting "fact:" are what was observed; the
 * driver (tests/integration/test_libssh2_contract.py) shows them.
 *
 * usage of every program: NAME PORT USER KEY [ARG...]
 */
#ifndef TUNNELS_T_H
#define TUNNELS_T_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libssh2.h>

#define T_NOINLINE	__attribute__((noinline))
/* Helpers a program may not use. */
#define T_FN		static __attribute__((unused))

/* Everything one test session owns (one per program, two at most). */
struct t {
	LIBSSH2_SESSION	*ss;
	int		 fd;
	/* The allocator's books. */
	long		 live_blocks;
	long		 live_bytes;
	size_t		 watch_size;	/* count live blocks of this size */
	long		 watch_blocks;
	/* The hooks: refuse while set, count calls that moved bytes. */
	int		 send_gate;
	int		 recv_gate;
	long		 send_calls;	/* calls that sent something */
	long		 send_refused;
	long		 recv_calls;
	size_t		 send_cap;	/* >0: at most this much per send */
	/* Queue mode: accept every packet into q, t_flush() writes it. */
	int		 queue;
	unsigned char	*q;
	size_t		 qlen, qcap;
};

static const char *t_argv0 = "test";

/* Fail the test with a message naming the source line. */
#define T_CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		fprintf(stdout, "FAIL %s:%d: %s: ", __FILE__, __LINE__,	\
		    #cond);						\
		fprintf(stdout, __VA_ARGS__);				\
		fputc('\n', stdout);					\
		fflush(stdout);						\
		exit(1);						\
	}								\
} while (0)

/* Print an observation ("fact: ..."). */
T_FN void __attribute__((format(printf, 1, 2)))
t_fact(const char *fmt, ...)
{
	va_list	ap;

	fputs("fact: ", stdout);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

/* Monotonic milliseconds. */
T_FN int64_t
t_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Allocator with a size header, so frees can be booked by size. */
#define T_HDR	16

T_FN LIBSSH2_ALLOC_FUNC(t_alloc)
{
	struct t	*t = *abstract;
	unsigned char	*p = malloc(count + T_HDR);

	if (p == NULL)
		return NULL;
	memcpy(p, &count, sizeof count);
	t->live_blocks++;
	t->live_bytes += (long)count;
	if (t->watch_size != 0 && count == t->watch_size)
		t->watch_blocks++;
	return p + T_HDR;
}

T_FN LIBSSH2_FREE_FUNC(t_free)
{
	struct t	*t = *abstract;
	unsigned char	*p;
	size_t		 n;

	if (ptr == NULL)
		return;
	p = (unsigned char *)ptr - T_HDR;
	memcpy(&n, p, sizeof n);
	t->live_blocks--;
	t->live_bytes -= (long)n;
	if (t->watch_size != 0 && n == t->watch_size)
		t->watch_blocks--;
	free(p);
}

T_FN LIBSSH2_REALLOC_FUNC(t_realloc)
{
	void	*n;
	size_t	 old;

	if (ptr == NULL)
		return t_alloc(count, abstract);
	memcpy(&old, (unsigned char *)ptr - T_HDR, sizeof old);
	n = t_alloc(count, abstract);
	if (n == NULL)
		return NULL;
	memcpy(n, ptr, old < count ? old : count);
	t_free(ptr, abstract);
	return n;
}

/* The send hook: like src/link.c, whole packets or -EAGAIN. */
T_FN ssize_t
t_send(libssh2_socket_t fd, const void *buf, size_t len, int flags,
    void **abstract)
{
	struct t	*t = *abstract;
	ssize_t		 n;

	if (t->send_gate) {
		t->send_refused++;
		return -EAGAIN;
	}
	if (t->queue) {
		if (t->qlen + len > t->qcap) {
			t->qcap = (t->qlen + len) * 2;
			t->q = realloc(t->q, t->qcap);
			T_CHECK(t->q != NULL, "queue");
		}
		memcpy(t->q + t->qlen, buf, len);
		t->qlen += len;
		t->send_calls++;
		return (ssize_t)len;
	}
	if (t->send_cap != 0 && len > t->send_cap)
		len = t->send_cap;
	n = send(fd, buf, len, flags | MSG_NOSIGNAL);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	t->send_calls++;
	return n;
}

/* Queue mode: write out what the send hook took (non-blocking). */
T_FN void
t_flush(struct t *t)
{
	ssize_t	n;

	while (t->qlen > 0) {
		n = send(t->fd, t->q, t->qlen, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n <= 0) {
			T_CHECK(n == -1 && (errno == EAGAIN ||
			    errno == EWOULDBLOCK), "flush: %s", strerror(errno));
			return;
		}
		memmove(t->q, t->q + n, t->qlen - (size_t)n);
		t->qlen -= (size_t)n;
	}
}

/* The recv hook: -EAGAIN while the gate is shut. */
T_FN ssize_t
t_recv(libssh2_socket_t fd, void *buf, size_t len, int flags, void **abstract)
{
	struct t	*t = *abstract;
	ssize_t		 n;

	if (t->recv_gate)
		return -EAGAIN;
	n = recv(fd, buf, len, flags);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	t->recv_calls++;
	return n;
}

/* A blocking TCP connection to 127.0.0.1:port. */
T_FN int
t_tcp(int port)
{
	struct sockaddr_in	sin;
	int			fd, one = 1;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	T_CHECK(fd != -1, "socket: %s", strerror(errno));
	T_CHECK(connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0,
	    "connect to port %d: %s", port, strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

/* Wait (at most ms) for what libssh2 says it waits for. */
T_FN void
t_wait(struct t *t, int ms)
{
	struct pollfd	pfd = { t->fd, 0, 0 };
	int		dirs = libssh2_session_block_directions(t->ss);

	if (dirs & LIBSSH2_SESSION_BLOCK_INBOUND)
		pfd.events |= POLLIN;
	if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		pfd.events |= POLLOUT;
	if (pfd.events == 0)
		pfd.events = POLLIN;
	(void)poll(&pfd, 1, ms);
}

/* 1 if the send slot is held (OUTBOUND set). */
T_FN int
t_slot_busy(struct t *t)
{
	return (libssh2_session_block_directions(t->ss) &
	    LIBSSH2_SESSION_BLOCK_OUTBOUND) != 0;
}

/* libssh2's last error text. */
T_FN const char *
t_errmsg(struct t *t)
{
	char	*m = NULL;
	int	 len = 0;

	libssh2_session_last_error(t->ss, &m, &len, 0);
	return m != NULL ? m : "";
}

/*
 * Connect, handshake and authenticate (non-blocking, as the engine
 * does), with the counting allocator and the hooks installed.
 */
T_FN void
t_open(struct t *t, int port, const char *user, const char *key)
{
	int64_t	deadline = t_now() + 10000;
	int	rc;

	memset(t, 0, sizeof *t);
	t->fd = t_tcp(port);
	t->ss = libssh2_session_init_ex(t_alloc, t_free, t_realloc, t);
	T_CHECK(t->ss != NULL, "session_init_ex");
	libssh2_session_set_blocking(t->ss, 0);
	libssh2_session_callback_set2(t->ss, LIBSSH2_CALLBACK_SEND,
	    (libssh2_cb_generic *)t_send);
	libssh2_session_callback_set2(t->ss, LIBSSH2_CALLBACK_RECV,
	    (libssh2_cb_generic *)t_recv);
	while ((rc = libssh2_session_handshake(t->ss, t->fd)) ==
	    LIBSSH2_ERROR_EAGAIN && t_now() < deadline)
		t_wait(t, 100);
	T_CHECK(rc == 0, "handshake: %d %s", rc, t_errmsg(t));
	while ((rc = libssh2_userauth_publickey_fromfile_ex(t->ss, user,
	    (unsigned)strlen(user), NULL, key, NULL)) == LIBSSH2_ERROR_EAGAIN &&
	    t_now() < deadline)
		t_wait(t, 100);
	T_CHECK(rc == 0, "auth: %d %s", rc, t_errmsg(t));
}

/* Free the session (shutdown first: nothing waits for a stalled peer). */
T_FN void
t_close(struct t *t)
{
	int	i;

	shutdown(t->fd, SHUT_RDWR);
	for (i = 0; i < 16; i++)
		if (libssh2_session_free(t->ss) != LIBSSH2_ERROR_EAGAIN)
			break;
	close(t->fd);
	t->ss = NULL;
	t->fd = -1;
}

/* forward_listen_ex until it is not EAGAIN; NULL with *rc on failure. */
T_FN LIBSSH2_LISTENER *
t_listen(struct t *t, const char *host, int port, int *bound, int *rc)
{
	int64_t			 deadline = t_now() + 10000;
	LIBSSH2_LISTENER	*l;

	for (;;) {
		l = libssh2_channel_forward_listen_ex(t->ss, host, port, bound,
		    16);
		*rc = l != NULL ? 0 : libssh2_session_last_errno(t->ss);
		if (*rc != LIBSSH2_ERROR_EAGAIN || t_now() > deadline)
			return l;
		t_wait(t, 100);
	}
}

/* Pump forward_accept once: a channel, NULL (EAGAIN) or an error. */
T_FN LIBSSH2_CHANNEL *
t_accept_once(struct t *t, LIBSSH2_LISTENER *l, int *rc)
{
	LIBSSH2_CHANNEL	*ch = libssh2_channel_forward_accept(l);

	*rc = ch != NULL ? 0 : libssh2_session_last_errno(t->ss);
	return ch;
}

/*
 * Connect a client to the remote end of listener l (port rport) and
 * accept the forwarded channel; returns the channel, *cfd the client.
 */
T_FN LIBSSH2_CHANNEL *
t_pair(struct t *t, LIBSSH2_LISTENER *l, int rport, int *cfd)
{
	int64_t		 deadline = t_now() + 10000;
	LIBSSH2_CHANNEL	*ch;
	int		 rc;

	*cfd = t_tcp(rport);
	for (;;) {
		ch = t_accept_once(t, l, &rc);
		if (ch != NULL)
			return ch;
		T_CHECK(rc == LIBSSH2_ERROR_EAGAIN && t_now() < deadline,
		    "accept: %d %s", rc, t_errmsg(t));
		t_wait(t, 100);
	}
}

/* Read exactly n bytes from a blocking fd within ms, or fail. */
T_FN void
t_read_exact(int fd, void *buf, size_t n, int ms)
{
	int64_t	deadline = t_now() + ms;
	size_t	got = 0;
	ssize_t	r;
	struct pollfd pfd = { fd, POLLIN, 0 };

	while (got < n) {
		T_CHECK(t_now() < deadline, "timeout: %zu of %zu bytes", got,
		    n);
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		r = recv(fd, (char *)buf + got, n - got, 0);
		T_CHECK(r > 0, "recv: %zd (%s) after %zu of %zu bytes", r,
		    r < 0 ? strerror(errno) : "EOF", got, n);
		got += (size_t)r;
	}
}

/*
 * What the client socket sees within ms: 1 data, 0 EOF, -1 nothing
 * (a bounded wait for an absence), -2 reset.
 */
T_FN int
t_client_state(int fd, int ms)
{
	struct pollfd	pfd = { fd, POLLIN, 0 };
	char		c;
	ssize_t		r;

	if (poll(&pfd, 1, ms) <= 0)
		return -1;
	r = recv(fd, &c, 1, MSG_PEEK);
	if (r > 0)
		return 1;
	if (r == 0)
		return 0;
	return -2;
}

/* Common argv handling: port, user, key. */
T_FN void
t_args(int argc, char **argv, int need, int *port, const char **user,
    const char **key)
{
	t_argv0 = argv[0];
	if (argc < 4 + need) {
		fprintf(stderr, "usage: %s PORT USER KEY%s\n", argv[0],
		    need ? " ARG..." : "");
		exit(2);
	}
	*port = atoi(argv[1]);
	*user = argv[2];
	*key = argv[3];
	setvbuf(stdout, NULL, _IOLBF, 0);
	T_CHECK(libssh2_init(0) == 0, "libssh2_init");
	t_fact("libssh2 %s", libssh2_version(0));
}

#endif
