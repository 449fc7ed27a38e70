/*
 * Rules 7 and 10, against sshd with a small RekeyLimit: 8 MiB each way
 * through one forwarded channel, while sshd re-keys every few hundred
 * packets.
 *  - With a send hook that takes every packet (and writes it out later,
 *    as src/link.c could), libssh2 never leaves a packet pending: no
 *    call ever returns with OUTBOUND set, re-keys included, and the
 *    bytes arrive intact. (The hook is the only place OUTBOUND comes
 *    from: 1.11.1:src/transport.c:970,1300.)
 *  - Each re-key leaks the previous server host-key blob: curve25519
 *    and ECDH overwrite session->server_hostkey without freeing it
 *    (1.11.1:src/kex.c:2588, 1924); only classic DH frees it (kex.c:472).
 *    We print how many blobs of the host key's size are live; the
 *    driver compares with the number of key exchanges sshd logged.
 */
#include "t.h"

#define TOTAL	(8 * 1024 * 1024)

/* The byte at stream offset i. */
static unsigned char
pat(size_t i)
{
	return (unsigned char)(i * 7 + (i >> 12));
}

int
main(int argc, char **argv)
{
	static unsigned char	 buf[65536];
	struct t		 t;
	LIBSSH2_LISTENER	*l;
	LIBSSH2_CHANNEL		*a;
	const char		*user, *key;
	int			 port, bound, rc, ca, type, outbound = 0;
	size_t			 up_sent = 0, up_got = 0, dn_sent = 0, dn_got = 0;
	size_t			 i, klen, len;
	int64_t			 deadline;
	struct pollfd		 pfd[2];
	ssize_t			 n;

	t_args(argc, argv, 0, &port, &user, &key);
	t_open(&t, port, user, key);
	T_CHECK(libssh2_session_hostkey(t.ss, &klen, &type) != NULL, "hostkey");
	t.watch_size = klen;
	t.watch_blocks = 1;	/* the current blob, allocated during handshake */
	l = t_listen(&t, "127.0.0.1", 0, &bound, &rc);
	T_CHECK(l != NULL, "listen: %d", rc);
	a = t_pair(&t, l, bound, &ca);
	fcntl(ca, F_SETFL, O_NONBLOCK);
	t.queue = 1;

	deadline = t_now() + 40000;
	while (up_got < TOTAL || dn_got < TOTAL) {
		T_CHECK(t_now() < deadline, "up %zu/%zu down %zu/%zu", up_got,
		    up_sent, dn_got, dn_sent);
		/* The remote client: send up, read down. */
		len = 0;
		while (up_sent + len < TOTAL && len < sizeof buf) {
			buf[len] = pat(up_sent + len);
			len++;
		}
		if (len > 0 && (n = send(ca, buf, len, MSG_DONTWAIT)) > 0)
			up_sent += (size_t)n;
		while ((n = recv(ca, buf, sizeof buf, 0)) > 0) {
			for (i = 0; i < (size_t)n; i++)
				T_CHECK(buf[i] == pat(dn_got + i), "down byte %zu",
				    dn_got + i);
			dn_got += (size_t)n;
		}
		/* Our side: read up, write down. */
		while ((n = libssh2_channel_read(a, (char *)buf, sizeof buf)) >
		    0) {
			for (i = 0; i < (size_t)n; i++)
				T_CHECK(buf[i] == pat(up_got + i), "up byte %zu",
				    up_got + i);
			up_got += (size_t)n;
		}
		T_CHECK(n == LIBSSH2_ERROR_EAGAIN || n == 0, "read: %zd", n);
		outbound |= t_slot_busy(&t);
		while (dn_sent < TOTAL && t.qlen < 256 * 1024) {
			len = 0;
			while (dn_sent + len < TOTAL && len < 32700) {
				buf[len] = pat(dn_sent + len);
				len++;
			}
			n = libssh2_channel_write(a, (char *)buf, len);
			outbound |= t_slot_busy(&t);
			if (n == LIBSSH2_ERROR_EAGAIN || n == 0)
				break;
			T_CHECK(n > 0, "write: %zd", n);
			dn_sent += (size_t)n;
		}
		T_CHECK(!outbound, "a call left OUTBOUND set");
		t_flush(&t);
		pfd[0].fd = t.fd;
		pfd[0].events = POLLIN | (t.qlen ? POLLOUT : 0);
		pfd[1].fd = ca;
		pfd[1].events = POLLIN | (up_sent < TOTAL ? POLLOUT : 0);
		(void)poll(pfd, 2, 50);
	}
	t_fact("8 MiB each way intact with a hook that takes every packet; "
	    "OUTBOUND never set");
	t_fact("host-key blobs (%zu bytes) live: %ld", klen, t.watch_blocks);
	printf("hostkey_blobs %ld\n", t.watch_blocks);
	t_close(&t);
	puts("ok");
	return 0;
}
