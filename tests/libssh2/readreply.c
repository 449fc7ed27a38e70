/*
 * Rule 1, the case the "repeat the same call" rule does not cover, and a
 * libssh2 bug it leads to.
 *
 * Calls that read before they send (channel_write drains the transport
 * first, 1.11.1:src/channel.c:2374-2377) make libssh2's own replies while
 * reading. When the send hook refuses such a reply (here the
 * CHANNEL_OPEN_CONFIRMATION for a new forwarded connection,
 * 1.11.1:src/packet.c:222), the reply holds the slot; the write then
 * queues its own packet behind it and returns EAGAIN with OUTBOUND set.
 * Repeating that write never reads again, so it never finishes the
 * reply: EAGAIN forever, send() never called.
 *
 * A call that reads (forward_accept) does finish the confirmation, but
 * the resumed packet_queue_listener() clears listen_state->channel before
 * it looks at its state (1.11.1:src/packet.c:144), so the channel is
 * confirmed to sshd and never queued: the connection is lost (its client
 * hangs) and the channel leaks. A later connection is accepted normally.
 */
#include "t.h"

int
main(int argc, char **argv)
{
	static char		 buf[100], got[100];
	struct t		 t;
	LIBSSH2_LISTENER	*l;
	LIBSSH2_CHANNEL		*a, *x, *y, *z;
	const char		*user, *key;
	int			 port, bound, rc, ca, cx, cy, cz, i;
	long			 sends;
	ssize_t			 n;
	struct pollfd		 pfd;
	int64_t			 deadline;

	t_args(argc, argv, 0, &port, &user, &key);
	memset(buf, 'w', sizeof buf);
	t_open(&t, port, user, key);
	l = t_listen(&t, "127.0.0.1", 0, &bound, &rc);
	T_CHECK(l != NULL, "listen: %d", rc);
	a = t_pair(&t, l, bound, &ca);

	/* Drain: from now on the only input is what X's connect causes. */
	pfd.fd = t.fd;
	pfd.events = POLLIN;
	do
		T_CHECK(t_accept_once(&t, l, &rc) == NULL &&
		    rc == LIBSSH2_ERROR_EAGAIN, "drain: %d", rc);
	while (poll(&pfd, 1, 50) == 1);
	/* A new connection: sshd sends CHANNEL_OPEN; wait until it is here. */
	cx = t_tcp(bound);
	T_CHECK(poll(&pfd, 1, 5000) == 1, "no CHANNEL_OPEN from sshd");

	t.send_gate = 1;
	n = libssh2_channel_write(a, buf, sizeof buf);
	T_CHECK(n == LIBSSH2_ERROR_EAGAIN && t_slot_busy(&t), "write: %zd", n);
	t.send_gate = 0;
	sends = t.send_calls;
	for (i = 0; i < 20; i++) {
		n = libssh2_channel_write(a, buf, sizeof buf);
		T_CHECK(n == LIBSSH2_ERROR_EAGAIN, "write again: %zd", n);
	}
	T_CHECK(t.send_calls == sends && t_slot_busy(&t), "progress");
	t_fact("write(A) that read a CHANNEL_OPEN while sends were refused: "
	    "EAGAIN; repeated x20: %zd, send() never called, OUTBOUND %d",
	    n, t_slot_busy(&t));

	/* A reader finishes the confirmation (its state is in the session). */
	x = t_accept_once(&t, l, &rc);
	T_CHECK(t.send_calls == sends + 1 && !t_slot_busy(&t),
	    "accept sent %ld packets", t.send_calls - sends);
	T_CHECK(x == NULL && rc == LIBSSH2_ERROR_EAGAIN, "accept: %p %d",
	    (void *)x, rc);
	t_fact("forward_accept: sent the confirmation, slot free, but no "
	    "channel (%d)", rc);
	n = libssh2_channel_write(a, buf, sizeof buf);
	T_CHECK(n == (ssize_t)sizeof buf, "write after accept: %zd", n);
	t_read_exact(ca, got, sizeof got, 5000);
	T_CHECK(memcmp(got, buf, sizeof got) == 0, "bytes differ");
	t_fact("then write(A) = %zd and A's client got its bytes", n);

	/* X's open came before Y's on the stream: Y accepted, X never. */
	y = t_pair(&t, l, bound, &cy);
	x = t_accept_once(&t, l, &rc);
	T_CHECK(y != NULL && x == NULL && rc == LIBSSH2_ERROR_EAGAIN,
	    "accept after Y: %p %d", (void *)x, rc);
	T_CHECK(send(cx, "hi", 2, MSG_NOSIGNAL) == 2, "client X send");
	T_CHECK(t_client_state(cx, 300) == -1, "client X got an answer");
	t_fact("a later connection Y is accepted; X (confirmed to sshd) never "
	    "is: lost, its client hangs");

	/* The engine's own pump hits it too: accept is the refused reader. */
	cz = t_tcp(bound);
	t.send_gate = 1;
	deadline = t_now() + 5000;
	do {	/* read until Z's open came and its confirmation was refused */
		z = t_accept_once(&t, l, &rc);
		T_CHECK(z == NULL && rc == LIBSSH2_ERROR_EAGAIN, "accept Z: %d",
		    rc);
		if (!t_slot_busy(&t))
			(void)poll(&pfd, 1, 100);
	} while (!t_slot_busy(&t) && t_now() < deadline);
	T_CHECK(t_slot_busy(&t), "no CHANNEL_OPEN for Z");
	t.send_gate = 0;
	z = t_accept_once(&t, l, &rc);
	T_CHECK(z == NULL && rc == LIBSSH2_ERROR_EAGAIN && !t_slot_busy(&t),
	    "accept Z again: %p %d", (void *)z, rc);
	y = t_pair(&t, l, bound, &cy);
	z = t_accept_once(&t, l, &rc);
	T_CHECK(z == NULL && rc == LIBSSH2_ERROR_EAGAIN, "accept Z: %d", rc);
	t_fact("forward_accept whose confirmation was refused, repeated: "
	    "slot freed, connection lost the same way");
	(void)cz;
	t_close(&t);
	puts("ok");
	return 0;
}
