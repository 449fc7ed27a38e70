/*
 * Rule 6: accepted forwarded-tcpip channels and their windows.
 *  - The receive window is a fixed 2 MiB (1.11.1:src/packet.c:186-190):
 *    with nothing read, sshd sends exactly 2 MiB, then the window is 0.
 *  - receive_window_adjust2() works on an accepted channel: after
 *    +4 MiB, more than 2 MiB arrives unread. Its *window output is the
 *    window before the adjustment (1.11.1:src/channel.c:1877-1878).
 *  - One write sends at most 32 700 bytes (1.11.1:src/channel.c:2351).
 */
#include "t.h"

#define MIB	(1024 * 1024)

/*
 * Feed client fd and pump until ch has want_avail bytes unread, or for
 * ms when want_avail is 0; returns the bytes unread.
 */
static unsigned long
feed(struct t *t, LIBSSH2_LISTENER *l, int fd, LIBSSH2_CHANNEL *ch,
    unsigned long want_avail, int ms)
{
	static char	 chunk[65536];
	int64_t		 deadline = t_now() + ms;
	unsigned long	 avail = 0, win;
	size_t		 fed = 0;
	ssize_t		 n;
	int		 rc;

	for (;;) {
		win = libssh2_channel_window_read_ex(ch, &avail, NULL);
		if (want_avail == 0 ? t_now() >= deadline : avail >= want_avail)
			return avail;
		T_CHECK(t_now() < deadline, "fed %zu, window %lu, avail %lu",
		    fed, win, avail);
		n = send(fd, chunk, sizeof chunk, MSG_DONTWAIT);
		if (n > 0)
			fed += (size_t)n;
		T_CHECK(t_accept_once(t, l, &rc) == NULL &&
		    rc == LIBSSH2_ERROR_EAGAIN, "accept: %d", rc);
		if (n <= 0)
			t_wait(t, 20);
	}
}

int
main(int argc, char **argv)
{
	static char		 big[65536];
	struct t		 t;
	LIBSSH2_LISTENER	*l;
	LIBSSH2_CHANNEL		*a, *b;
	const char		*user, *key;
	int			 port, bound, rc, ca, cb;
	unsigned long		 avail, init, win;
	unsigned int		 before = 0;
	ssize_t			 n;

	t_args(argc, argv, 0, &port, &user, &key);
	t_open(&t, port, user, key);
	l = t_listen(&t, "127.0.0.1", 0, &bound, &rc);
	T_CHECK(l != NULL, "listen: %d", rc);
	a = t_pair(&t, l, bound, &ca);
	b = t_pair(&t, l, bound, &cb);

	win = libssh2_channel_window_read_ex(a, &avail, &init);
	T_CHECK(init == 2 * MIB && win == 2 * MIB, "window %lu/%lu", win,
	    init);
	(void)feed(&t, l, ca, a, 2 * MIB, 10000);
	avail = feed(&t, l, ca, a, 0, 300);	/* bounded look for more */
	T_CHECK(avail == 2 * MIB, "unread %lu", avail);
	t_fact("accepted channel: window %lu; with nothing read, sshd sent "
	    "%lu bytes and no more", init, avail);

	rc = libssh2_channel_receive_window_adjust2(b, 4 * MIB, 1, &before);
	T_CHECK(rc == 0 && before == 2 * MIB, "adjust2: %d window %u", rc,
	    before);
	avail = feed(&t, l, cb, b, 5 * MIB, 10000);
	t_fact("receive_window_adjust2(+4 MiB) = %d (*window %u, the old "
	    "value); %lu bytes then arrived unread", rc, before, avail);

	n = libssh2_channel_write(a, big, sizeof big);
	T_CHECK(n == 32700, "write: %zd", n);
	t_fact("channel_write(64 KiB) = %zd", n);
	t_close(&t);
	puts("ok");
	return 0;
}
