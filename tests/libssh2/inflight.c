/*
 * Rule 4: one forward_listen_ex and one channel open in flight per
 * session. Their state lives in the session (fwdLstn_state,
 * 1.11.1:src/channel.c:553; open_state, 1.11.1:src/channel.c:146), not
 * in anything the caller passes, so a second call while the first waits
 * for its reply finishes the *first* request under the second's name.
 *
 * (a) listen(P1) waits for its reply; listen(P2) then returns a listener
 *     for P2, but sshd bound P1 and nothing is bound on P2: connections
 *     to P1 are refused by libssh2, connections to P2 by the kernel.
 * (b) direct-tcpip to a socket of ours waits for its reply; an
 *     open_session() then reads the reply with the wrong offset (its own
 *     type's length, 1.11.1:src/channel.c:230-234), fails with -1
 *     "Unexpected error", and drops the direct-tcpip channel that sshd
 *     has opened (sshd did connect to our socket).
 *
 * args: PORT1 PORT2 (free ports on the server side)
 */
#include "t.h"

int
main(int argc, char **argv)
{
	struct t		 t;
	LIBSSH2_LISTENER	*l;
	LIBSSH2_CHANNEL		*ch;
	const char		*user, *key;
	int			 port, p1, p2, bound = -1, rc, fd, lfd, afd;
	struct sockaddr_in	 sin;
	socklen_t		 slen = sizeof sin;
	int64_t			 deadline;

	t_args(argc, argv, 2, &port, &user, &key);
	p1 = atoi(argv[4]);
	p2 = atoi(argv[5]);
	t_open(&t, port, user, key);

	/* (a) */
	t.recv_gate = 1;
	l = libssh2_channel_forward_listen_ex(t.ss, "127.0.0.1", p1, NULL, 16);
	rc = libssh2_session_last_errno(t.ss);
	T_CHECK(l == NULL && rc == LIBSSH2_ERROR_EAGAIN, "listen 1: %d", rc);
	t.recv_gate = 0;
	l = t_listen(&t, "127.0.0.1", p2, &bound, &rc);
	T_CHECK(l != NULL && bound == p2, "listen 2: %d bound %d", rc, bound);
	t_fact("listen(%d) in flight, then listen(%d): a listener for %d",
	    p1, p2, bound);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)p2);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rc = connect(fd, (struct sockaddr *)&sin, sizeof sin);
	T_CHECK(rc == -1 && errno == ECONNREFUSED, "port %d: %d", p2, rc);
	close(fd);
	fd = t_tcp(p1);
	deadline = t_now() + 5000;
	while (t_client_state(fd, 0) == -1 && t_now() < deadline) {
		T_CHECK(t_accept_once(&t, l, &rc) == NULL &&
		    rc == LIBSSH2_ERROR_EAGAIN, "accepted on %d: %d", p2, rc);
		t_wait(&t, 100);
	}
	T_CHECK(t_client_state(fd, 0) == 0, "port %d client not closed", p1);
	close(fd);
	t_fact("sshd bound %d (a client there is refused by libssh2 and "
	    "closed); %d refuses connections", p1, p2);

	/* (b) */
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_port = 0;
	T_CHECK(bind(lfd, (struct sockaddr *)&sin, sizeof sin) == 0 &&
	    listen(lfd, 4) == 0 &&
	    getsockname(lfd, (struct sockaddr *)&sin, &slen) == 0, "listen");
	t.recv_gate = 1;
	ch = libssh2_channel_direct_tcpip_ex(t.ss, "127.0.0.1",
	    ntohs(sin.sin_port), "127.0.0.1", 1);
	rc = libssh2_session_last_errno(t.ss);
	T_CHECK(ch == NULL && rc == LIBSSH2_ERROR_EAGAIN, "direct: %d", rc);
	t.recv_gate = 0;
	deadline = t_now() + 5000;
	while ((ch = libssh2_channel_open_session(t.ss)) == NULL &&
	    (rc = libssh2_session_last_errno(t.ss)) == LIBSSH2_ERROR_EAGAIN &&
	    t_now() < deadline)
		t_wait(&t, 100);
	T_CHECK(ch == NULL && rc == -1, "open_session: %p %d %s", (void *)ch,
	    rc, t_errmsg(&t));
	afd = accept(lfd, NULL, NULL);
	T_CHECK(afd != -1, "accept");
	t_fact("direct-tcpip open in flight, then open_session(): %d \"%s\"; "
	    "sshd had connected the direct-tcpip (now lost to libssh2)", rc,
	    t_errmsg(&t));
	close(afd);
	t_close(&t);
	puts("ok");
	return 0;
}
