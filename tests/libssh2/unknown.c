/*
 * Rule 7: packets of a message type libssh2 does not know are appended
 * to the session's packet list (1.11.1:src/packet.c:1331-1352) and
 * nothing ever removes them: a server can grow the client's memory
 * without bound. The driver's server (asyncssh) sends N packets of type
 * 200 with a 1000-byte body in front of its answer to our tcpip-forward,
 * so they have all been read when forward_listen_ex returns.
 *
 * args: N
 */
#include "t.h"

int
main(int argc, char **argv)
{
	struct t		 t;
	LIBSSH2_LISTENER	*l;
	const char		*user, *key;
	int			 port, bound, rc, nmsg, i;
	long			 base, grown;

	t_args(argc, argv, 1, &port, &user, &key);
	nmsg = atoi(argv[4]);
	t_open(&t, port, user, key);
	base = t.live_bytes;
	l = t_listen(&t, "127.0.0.1", 0, &bound, &rc);
	T_CHECK(l != NULL, "listen: %d %s", rc, t_errmsg(&t));
	for (i = 0; i < 10; i++) {
		T_CHECK(t_accept_once(&t, l, &rc) == NULL &&
		    rc == LIBSSH2_ERROR_EAGAIN, "accept: %d", rc);
		t_wait(&t, 20);
	}
	grown = t.live_bytes - base;
	T_CHECK(grown >= (long)nmsg * 1000, "grew %ld bytes", grown);
	t_fact("%d unknown-type packets of 1000 bytes: %ld bytes still held "
	    "after pumping", nmsg, grown);
	t_close(&t);
	puts("ok");
	return 0;
}
