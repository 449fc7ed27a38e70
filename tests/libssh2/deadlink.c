/*
 * Rule 5: what a dead transport looks like. The driver puts a relay
 * between us and sshd; after "READY" it breaks the link (MODE fin: the
 * relay closes both sides; rst: it resets our side; stall: it stops
 * forwarding, the kernel still ACKs) and writes a line to our stdin.
 *
 *  fin/rst: forward_accept -> -23 CHANNEL_UNKNOWN (the real -43 is
 *           overwritten, 1.11.1:src/channel.c:848-856); forward_listen_ex
 *           -> -7 or -14; channel_read -> -43.
 *  stall:   forward_accept -> EAGAIN forever (nothing to see);
 *           forward_listen_ex -> -14 "Unknown" once the session's read
 *           timeout (default 60 s, libssh2_session_set_read_timeout;
 *           whole seconds of time(NULL)) has
 *           passed since its first call (1.11.1:src/packet.c:1628-1642).
 *
 * Rule 8, in stall mode: a non-blocking session_free() with a channel
 * open sends CLOSE and waits for the peer's answer: EAGAIN for as long as
 * the peer is stalled. After shutdown(fd) it returns 0 and every block
 * libssh2 allocated is freed.
 *
 * args: MODE
 */
#include "t.h"

int
main(int argc, char **argv)
{
	struct t		 t;
	LIBSSH2_LISTENER	*l, *l2;
	LIBSSH2_CHANNEL		*a;
	const char		*user, *key, *mode;
	int			 port, bound, rc, ca;
	char			 line[16], buf[64];
	int64_t			 deadline, t0;
	ssize_t			 n;

	t_args(argc, argv, 1, &port, &user, &key);
	mode = argv[4];
	t_open(&t, port, user, key);
	l = t_listen(&t, "127.0.0.1", 0, &bound, &rc);
	T_CHECK(l != NULL, "listen: %d", rc);
	a = t_pair(&t, l, bound, &ca);
	T_CHECK(libssh2_session_get_read_timeout(t.ss) == 60, "timeout %ld",
	    libssh2_session_get_read_timeout(t.ss));
	puts("READY");
	T_CHECK(fgets(line, sizeof line, stdin) != NULL, "no go from driver");

	if (strcmp(mode, "stall") == 0) {
		deadline = t_now() + 1500;
		while (t_accept_once(&t, l, &rc) == NULL &&
		    rc == LIBSSH2_ERROR_EAGAIN && t_now() < deadline)
			t_wait(&t, 100);
		T_CHECK(rc == LIBSSH2_ERROR_EAGAIN, "accept: %d", rc);
		t_fact("stall: forward_accept EAGAIN for 1.5 s");
		libssh2_session_set_read_timeout(t.ss, 2);
		t0 = t_now();
		l2 = t_listen(&t, "127.0.0.1", 0, NULL, &rc);
		T_CHECK(l2 == NULL && rc == LIBSSH2_ERROR_PROTO &&
		    t_now() - t0 >= 1000, "listen: %d after %lld ms", rc,
		    (long long)(t_now() - t0));
		t_fact("stall: forward_listen_ex %d \"%s\" after %lld ms (read "
		    "timeout 2 s, counted in whole seconds of time())", rc, t_errmsg(&t),
		    (long long)(t_now() - t0));
		t0 = t_now();
		while ((rc = libssh2_session_free(t.ss)) ==
		    LIBSSH2_ERROR_EAGAIN && t_now() - t0 < 1000)
			t_wait(&t, 50);
		T_CHECK(rc == LIBSSH2_ERROR_EAGAIN, "session_free: %d", rc);
		shutdown(t.fd, SHUT_RDWR);
		rc = libssh2_session_free(t.ss);
		T_CHECK(rc == 0 && t.live_blocks == 0, "free after shutdown: %d, "
		    "%ld blocks live", rc, t.live_blocks);
		t_fact("stall: session_free EAGAIN for 1 s; after shutdown(fd): "
		    "%d, %ld blocks live", rc, t.live_blocks);
		close(t.fd);
		puts("ok");
		return 0;
	} else {
		deadline = t_now() + 5000;
		while (t_accept_once(&t, l, &rc) == NULL &&
		    rc == LIBSSH2_ERROR_EAGAIN && t_now() < deadline)
			t_wait(&t, 100);
		T_CHECK(rc == LIBSSH2_ERROR_CHANNEL_UNKNOWN, "accept: %d", rc);
		t_fact("%s: forward_accept %d \"%s\"", mode, rc, t_errmsg(&t));
		l2 = t_listen(&t, "127.0.0.1", 0, NULL, &rc);
		T_CHECK(l2 == NULL && (rc == LIBSSH2_ERROR_SOCKET_SEND ||
		    rc == LIBSSH2_ERROR_PROTO), "listen: %d", rc);
		t_fact("%s: forward_listen_ex %d \"%s\"", mode, rc, t_errmsg(&t));
		n = libssh2_channel_read(a, buf, sizeof buf);
		T_CHECK(n == LIBSSH2_ERROR_SOCKET_RECV, "read: %zd", n);
		t_fact("%s: channel_read %zd \"%s\"", mode, n, t_errmsg(&t));
		n = libssh2_channel_write(a, "x", 1);
		T_CHECK(n < 0 && n != LIBSSH2_ERROR_EAGAIN, "write: %zd", n);
		t_fact("%s: channel_write %zd \"%s\"", mode, n, t_errmsg(&t));
	}
	t_close(&t);
	puts("ok");
	return 0;
}
