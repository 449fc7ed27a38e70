/*
 * Rule 3: libssh2's keepalive.
 *
 * (a) With want_reply=1 the server's REQUEST_FAILURE is queued in the
 *     session's packet list (1.11.1:src/packet.c:1331-1352) and nothing
 *     consumes it until the next forward_listen_ex, which takes it as its
 *     own answer (1.11.1:src/channel.c:616-620): REQUEST_DENIED while
 *     sshd did bind the port, a ghost listener.
 * (b) keepalive_send() swallows EAGAIN (1.11.1:src/keepalive.c:84-90):
 *     it returns 0 with its packet, built on its stack, in the send
 *     slot, and within the interval it does not even try again, so the
 *     slot stays held until the interval has passed.
 * (c) A want_reply keepalive sent while a tcpip-forward waits for its
 *     reply: the forward gets its own answer (sshd answers in order),
 *     the keepalive's answer poisons the next forward.
 *
 * args: PORT1 PORT2 (free ports on the server side)
 */
#include "t.h"

/* Pump with forward_accept until n more blocks are live (or 5 s). */
static int
pump_until_blocks(struct t *t, LIBSSH2_LISTENER *l, long want)
{
	int64_t	deadline = t_now() + 5000;
	int	rc;

	while (t->live_blocks < want && t_now() < deadline) {
		T_CHECK(t_accept_once(t, l, &rc) == NULL &&
		    rc == LIBSSH2_ERROR_EAGAIN, "accept: %d", rc);
		t_wait(t, 100);
	}
	return t->live_blocks >= want;
}

int
main(int argc, char **argv)
{
	struct t		 t;
	LIBSSH2_LISTENER	*l, *l2;
	LIBSSH2_CHANNEL		*a;
	const char		*user, *key;
	int			 port, p1, p2, bound, rc, ca, next, i, fd;
	long			 base, sends;
	int64_t			 deadline;
	ssize_t			 n;
	char			 c = 'k';

	t_args(argc, argv, 2, &port, &user, &key);
	p1 = atoi(argv[4]);
	p2 = atoi(argv[5]);

	/* (a) */
	t_open(&t, port, user, key);
	l = t_listen(&t, "127.0.0.1", 0, &bound, &rc);
	T_CHECK(l != NULL, "listen: %d", rc);
	libssh2_keepalive_config(t.ss, 1, 2);
	base = t.live_blocks;
	rc = libssh2_keepalive_send(t.ss, &next);
	T_CHECK(rc == 0 && !t_slot_busy(&t), "keepalive_send: %d", rc);
	T_CHECK(pump_until_blocks(&t, l, base + 2), "no reply queued");
	for (i = 0; i < 5; i++) {
		(void)t_accept_once(&t, l, &rc);
		t_wait(&t, 20);
	}
	T_CHECK(t.live_blocks == base + 2, "blocks %ld, base %ld",
	    t.live_blocks, base);
	t_fact("want_reply keepalive: its reply stays queued (+%ld blocks) "
	    "while the session is pumped", t.live_blocks - base);
	l2 = t_listen(&t, "127.0.0.1", p1, NULL, &rc);
	T_CHECK(l2 == NULL && rc == LIBSSH2_ERROR_REQUEST_DENIED,
	    "listen %d: %p %d", p1, (void *)l2, rc);
	/* Its own answer (SUCCESS) arrives and waits in the queue. */
	base = t.live_blocks;
	T_CHECK(pump_until_blocks(&t, l, base + 2), "no answer queued");
	fd = t_tcp(p1);	/* fails the test if nothing listens */
	close(fd);
	t_fact("next forward_listen_ex(%d): %d, yet sshd listens there "
	    "(ghost); its real answer is queued for the next request", p1, rc);

	/* (b) */
	a = t_pair(&t, l, bound, &ca);
	libssh2_keepalive_config(t.ss, 0, 2);
	deadline = t_now() + 5000;
	do {	/* wait until a keepalive is due */
		sends = t.send_calls;
		t.send_gate = 1;
		rc = libssh2_keepalive_send(t.ss, &next);
		t.send_gate = 0;
		if (t_slot_busy(&t))
			break;
		t_wait(&t, 100);
	} while (t_now() < deadline);
	T_CHECK(rc == 0 && t_slot_busy(&t) && next == 2,
	    "refused keepalive: %d next %d", rc, next);
	t_fact("keepalive_send refused by the hook: %d, OUTBOUND set, "
	    "seconds_to_next %d", rc, next);
	sends = t.send_calls;
	n = libssh2_channel_write(a, &c, 1);
	rc = libssh2_keepalive_send(t.ss, &next);
	T_CHECK(n == LIBSSH2_ERROR_EAGAIN && rc == 0 && t_slot_busy(&t) &&
	    t.send_calls == sends, "write %zd keepalive %d", n, rc);
	t_fact("within the interval: write %zd, keepalive_send %d, nothing "
	    "sent, slot still held", n, rc);
	deadline = t_now() + 5000;
	while (t_slot_busy(&t) && t_now() < deadline) {
		(void)libssh2_keepalive_send(t.ss, &next);
		if (t_slot_busy(&t))
			t_wait(&t, 100);
	}
	T_CHECK(!t_slot_busy(&t), "keepalive never completed");
	while ((n = libssh2_channel_write(a, &c, 1)) == LIBSSH2_ERROR_EAGAIN)
		t_wait(&t, 100);
	T_CHECK(n == 1, "write after: %zd", n);
	t_fact("after the interval keepalive_send completes it; the write "
	    "goes through");
	t_close(&t);

	/* (c) */
	t_open(&t, port, user, key);
	l = t_listen(&t, "127.0.0.1", 0, &bound, &rc);
	T_CHECK(l != NULL, "listen: %d", rc);
	libssh2_keepalive_config(t.ss, 1, 2);
	t.recv_gate = 1;
	l2 = libssh2_channel_forward_listen_ex(t.ss, "127.0.0.1", 0, &bound,
	    16);
	rc = libssh2_session_last_errno(t.ss);
	T_CHECK(l2 == NULL && rc == LIBSSH2_ERROR_EAGAIN && !t_slot_busy(&t),
	    "listen in flight: %d", rc);
	rc = libssh2_keepalive_send(t.ss, &next);
	T_CHECK(rc == 0 && !t_slot_busy(&t), "keepalive_send: %d", rc);
	t.recv_gate = 0;
	l2 = t_listen(&t, "127.0.0.1", 0, &bound, &rc);
	T_CHECK(l2 != NULL && bound > 0, "listen in flight: %d", rc);
	t_fact("keepalive sent while a tcpip-forward waited: the forward "
	    "got its own answer (port %d)", bound);
	base = t.live_blocks;
	T_CHECK(pump_until_blocks(&t, l, base + 2), "no reply queued");
	l2 = t_listen(&t, "127.0.0.1", p2, NULL, &rc);
	T_CHECK(l2 == NULL && rc == LIBSSH2_ERROR_REQUEST_DENIED,
	    "listen %d: %d", p2, rc);
	base = t.live_blocks;
	T_CHECK(pump_until_blocks(&t, l, base + 2), "no answer queued");
	fd = t_tcp(p2);
	close(fd);
	t_fact("the keepalive's answer stayed queued: next "
	    "forward_listen_ex(%d) = %d, sshd listens there (ghost)", p2, rc);
	t_close(&t);
	puts("ok");
	return 0;
}
