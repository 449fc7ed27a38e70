/*
 * Rule 2: a blocked call must be repeated from the same stack depth.
 *
 * channel_send_eof() builds its 5-byte packet in a local array
 * (1.11.1:src/channel.c:2498) and libssh2 remembers that address as the
 * pending packet's identity (1.11.1:src/transport.c:924). So:
 *  - a repeat from a deeper frame does not match: EAGAIN forever, and
 *    libssh2 never even calls send again;
 *  - the same call for *another* channel from the same frame does match:
 *    it completes the first channel's EOF, returns 0, and the second
 *    channel's EOF is never sent (libssh2 believes it was).
 */
#include "t.h"

/* send_eof from `depth` frames below the caller (depth 0: right here). */
static T_NOINLINE int
eof_at(LIBSSH2_CHANNEL *ch, int depth)
{
	volatile char	pad[256];
	int		rc;

	pad[0] = (char)depth;
	if (depth > 0)
		rc = eof_at(ch, depth - 1);
	else
		rc = libssh2_channel_send_eof(ch);
	return rc + pad[0] - pad[0];
}

int
main(int argc, char **argv)
{
	struct t		 t;
	LIBSSH2_LISTENER	*l;
	LIBSSH2_CHANNEL		*a, *b, *c;
	const char		*user, *key;
	int			 port, bound, rc, ca, cb, cc, i;
	long			 sends;
	char			 x = 'x', got;

	t_args(argc, argv, 0, &port, &user, &key);
	t_open(&t, port, user, key);
	l = t_listen(&t, "127.0.0.1", 0, &bound, &rc);
	T_CHECK(l != NULL, "listen: %d", rc);
	a = t_pair(&t, l, bound, &ca);
	b = t_pair(&t, l, bound, &cb);
	c = t_pair(&t, l, bound, &cc);

	/* 1. Another channel's EOF from the same frame: silently lost. */
	t.send_gate = 1;
	rc = eof_at(a, 0);
	T_CHECK(rc == LIBSSH2_ERROR_EAGAIN && t_slot_busy(&t), "eof A: %d",
	    rc);
	t.send_gate = 0;
	rc = eof_at(b, 0);
	T_CHECK(rc == 0, "eof B from the same frame: %d", rc);
	t_fact("send_eof(B) from the frame of the blocked send_eof(A): %d", rc);
	T_CHECK(t_client_state(ca, 5000) == 0, "A's client saw no EOF");
	/* A marker on C, sent after B's "EOF", arrives; B's EOF does not. */
	while ((rc = (int)libssh2_channel_write(c, &x, 1)) ==
	    LIBSSH2_ERROR_EAGAIN)
		t_wait(&t, 100);
	T_CHECK(rc == 1, "write C: %d", rc);
	t_read_exact(cc, &got, 1, 5000);
	T_CHECK(t_client_state(cb, 300) == -1, "B's client saw EOF");
	rc = (int)libssh2_channel_write(b, &x, 1);
	T_CHECK(rc == LIBSSH2_ERROR_CHANNEL_EOF_SENT, "write B: %d", rc);
	t_fact("A's client: EOF; B's client: nothing; libssh2 thinks B's EOF "
	    "was sent (write B: %d)", rc);

	/* 2. The right channel from a deeper frame: never matches. */
	t.send_gate = 1;
	rc = eof_at(c, 0);
	T_CHECK(rc == LIBSSH2_ERROR_EAGAIN && t_slot_busy(&t), "eof C: %d",
	    rc);
	t.send_gate = 0;
	sends = t.send_calls;
	for (i = 0; i < 20; i++) {
		rc = eof_at(c, 2);
		T_CHECK(rc == LIBSSH2_ERROR_EAGAIN, "eof C deeper: %d", rc);
	}
	T_CHECK(t.send_calls == sends && t_slot_busy(&t), "progress");
	t_fact("send_eof(C) repeated 2 frames deeper: %d x20, send() never "
	    "called, OUTBOUND %d", rc, t_slot_busy(&t));
	rc = eof_at(c, 0);
	T_CHECK(rc == 0 && !t_slot_busy(&t), "eof C same frame: %d", rc);
	T_CHECK(t_client_state(cc, 5000) == 0, "C's client saw no EOF");
	t_fact("repeated from the original frame: %d, C's client got EOF", rc);
	t_close(&t);
	puts("ok");
	return 0;
}
