/*
 * Rule 1: one outbound packet slot per session.
 *
 * A channel write is refused by the send hook (as src/link.c refuses when
 * its queue is full), so libssh2 keeps the encrypted packet in its one
 * send slot. While it is there, every other sender on the session gets
 * EAGAIN without sending anything, and OUTBOUND stays set: a caller that
 * took "EAGAIN + OUTBOUND" to mean "my packet is pending" would retry the
 * wrong call forever. keepalive_send() reports success and sends nothing.
 * Only the same call with the same arguments completes the packet; after
 * it, the others go through and nothing is lost or sent twice.
 */
#include "t.h"

#define ALEN	32768
#define BLEN	1000

int
main(int argc, char **argv)
{
	static char		 abuf[ALEN], bbuf[BLEN], got[ALEN];
	struct t		 t;
	LIBSSH2_LISTENER	*l, *l2;
	LIBSSH2_CHANNEL		*a, *b;
	const char		*user, *key;
	int			 port, bound, rc, ca, cb, i, next = -1;
	long			 sends;
	ssize_t			 n;

	t_args(argc, argv, 0, &port, &user, &key);
	for (i = 0; i < ALEN; i++)
		abuf[i] = (char)('a' + i % 26);
	memset(bbuf, 'B', sizeof bbuf);
	t_open(&t, port, user, key);
	l = t_listen(&t, "127.0.0.1", 0, &bound, &rc);
	T_CHECK(l != NULL, "listen: %d", rc);
	a = t_pair(&t, l, bound, &ca);
	b = t_pair(&t, l, bound, &cb);
	libssh2_keepalive_config(t.ss, 0, 5);

	/* A's packet is encrypted, then refused: it holds the slot. */
	t.send_gate = 1;
	n = libssh2_channel_write(a, abuf, ALEN);
	T_CHECK(n == LIBSSH2_ERROR_EAGAIN && t_slot_busy(&t),
	    "write A: %zd dirs %d", n, libssh2_session_block_directions(t.ss));
	t.send_gate = 0;
	sends = t.send_calls;

	/* Everyone else: EAGAIN, OUTBOUND still set, nothing sent. */
	for (i = 0; i < 3; i++) {
		n = libssh2_channel_write(b, bbuf, BLEN);
		T_CHECK(n == LIBSSH2_ERROR_EAGAIN, "write B: %zd (1.10: -39)",
		    n);
	}
	t_fact("write on another channel while the slot is held: %zd, "
	    "OUTBOUND %d", n, t_slot_busy(&t));
	rc = libssh2_channel_send_eof(b);
	T_CHECK(rc == LIBSSH2_ERROR_EAGAIN, "send_eof B: %d (1.10: -7)", rc);
	t_fact("send_eof on another channel: %d", rc);
	rc = libssh2_keepalive_send(t.ss, &next);
	T_CHECK(rc == 0 && next == 5, "keepalive_send: %d next %d", rc, next);
	t_fact("keepalive_send: %d, seconds_to_next %d (nothing sent)", rc,
	    next);
	l2 = libssh2_channel_forward_listen_ex(t.ss, "127.0.0.1", 0, NULL, 16);
	rc = libssh2_session_last_errno(t.ss);
	T_CHECK(l2 == NULL && rc == LIBSSH2_ERROR_EAGAIN, "listen: %d", rc);
	t_fact("forward_listen_ex: NULL, %d", rc);
	n = libssh2_channel_read(b, got, sizeof got);
	t_fact("channel_read on another channel: %zd (reads are not refused)",
	    n);
	T_CHECK(t.send_calls == sends && t_slot_busy(&t),
	    "something was sent: %ld -> %ld", sends, t.send_calls);

	/* The owner's repeat completes A's packet. */
	n = libssh2_channel_write(a, abuf, ALEN);
	T_CHECK(n == 32700, "write A again: %zd", n);
	T_CHECK(!t_slot_busy(&t), "slot still busy");
	t_fact("the repeated write on A: %zd, slot free", n);

	/* The others now go through, once each. */
	n = libssh2_channel_write(b, bbuf, BLEN);
	T_CHECK(n == BLEN, "write B after: %zd", n);
	rc = libssh2_channel_send_eof(b);
	T_CHECK(rc == 0, "send_eof B after: %d", rc);
	do {
		l2 = libssh2_channel_forward_listen_ex(t.ss, "127.0.0.1", 0,
		    &bound, 16);
		rc = l2 ? 0 : libssh2_session_last_errno(t.ss);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			t_wait(&t, 100);
	} while (rc == LIBSSH2_ERROR_EAGAIN);
	T_CHECK(l2 != NULL, "listen after: %d", rc);
	t_read_exact(ca, got, 32700, 5000);
	T_CHECK(memcmp(got, abuf, 32700) == 0, "A's bytes differ");
	t_read_exact(cb, got, BLEN, 5000);
	T_CHECK(memcmp(got, bbuf, BLEN) == 0, "B's bytes differ");
	T_CHECK(t_client_state(cb, 5000) == 0, "B's client saw no EOF");
	T_CHECK(t_client_state(ca, 200) == -1, "A's client got extra bytes");
	t_fact("A's client got 32700 bytes, B's 1000 bytes then EOF");

	/* The keepalive that "succeeded" was never sent. */
	sends = t.send_calls;
	rc = libssh2_keepalive_send(t.ss, &next);
	T_CHECK(rc == 0 && next > 0 && t.send_calls == sends,
	    "keepalive resent: %d next %d", rc, next);
	t_fact("next keepalive_send within the interval sends nothing: "
	    "the refused keepalive is lost");
	t_close(&t);
	puts("ok");
	return 0;
}
