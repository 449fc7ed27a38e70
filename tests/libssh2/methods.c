/*
 * Rule 11: what 1.11.1 negotiates with sshd, and that the whole-packet
 * ciphers (chacha20-poly1305, AES-GCM: REQUIRES_FULL_PACKET,
 * 1.11.1:src/transport.c:456-470) and EtM MACs carry data. Prints the
 * negotiated methods, then moves 4 MiB each way through a forwarded
 * channel (a corrupted packet would fail its MAC or tag).
 *
 * args: EXPECT_CIPHER EXPECT_MAC ("-": no check; with an AEAD cipher the
 * MAC libssh2 reports was negotiated but is not used)
 */
#include "t.h"

#define TOTAL	(4 * 1024 * 1024)

int
main(int argc, char **argv)
{
	static unsigned char	 buf[32700], got[65536];
	struct t		 t;
	LIBSSH2_LISTENER	*l;
	LIBSSH2_CHANNEL		*a;
	const char		*user, *key, *crypt, *mac, *kex;
	const char		**algs;
	int			 port, bound, rc, ca, i, nalg;
	size_t			 up = 0, dn = 0, up_got = 0, dn_got = 0, k;
	int64_t			 deadline;
	ssize_t			 n;
	struct pollfd		 pfd[2];

	t_args(argc, argv, 2, &port, &user, &key);
	t_open(&t, port, user, key);
	nalg = libssh2_session_supported_algs(t.ss, LIBSSH2_METHOD_CRYPT_CS,
	    &algs);
	T_CHECK(nalg > 0, "supported_algs: %d", nalg);
	printf("fact: ciphers:");
	for (i = 0; i < nalg; i++)
		printf(" %s", algs[i]);
	putchar('\n');
	libssh2_free(t.ss, algs);
	kex = libssh2_session_methods(t.ss, LIBSSH2_METHOD_KEX);
	crypt = libssh2_session_methods(t.ss, LIBSSH2_METHOD_CRYPT_CS);
	mac = libssh2_session_methods(t.ss, LIBSSH2_METHOD_MAC_CS);
	t_fact("negotiated: kex %s, cipher %s, mac %s, host key %s", kex,
	    crypt, mac ? mac : "(null)",
	    libssh2_session_methods(t.ss, LIBSSH2_METHOD_HOSTKEY));
	if (strcmp(argv[4], "-") != 0)
		T_CHECK(strcmp(crypt, argv[4]) == 0, "cipher %s", crypt);
	if (strcmp(argv[5], "-") != 0)
		T_CHECK(strcmp(mac ? mac : "", argv[5]) == 0, "mac %s", mac);

	l = t_listen(&t, "127.0.0.1", 0, &bound, &rc);
	T_CHECK(l != NULL, "listen: %d", rc);
	a = t_pair(&t, l, bound, &ca);
	fcntl(ca, F_SETFL, O_NONBLOCK);
	for (k = 0; k < sizeof buf; k++)
		buf[k] = (unsigned char)(k * 13);
	deadline = t_now() + 20000;
	while (up_got < TOTAL || dn_got < TOTAL) {
		T_CHECK(t_now() < deadline, "up %zu down %zu", up_got, dn_got);
		if (up < TOTAL && (n = send(ca, buf, sizeof buf,
		    MSG_DONTWAIT)) > 0)
			up += (size_t)n;
		while ((n = recv(ca, got, sizeof got, 0)) > 0)
			dn_got += (size_t)n;
		while ((n = libssh2_channel_read(a, (char *)got,
		    sizeof got)) > 0)
			up_got += (size_t)n;
		T_CHECK(n == LIBSSH2_ERROR_EAGAIN, "read: %zd", n);
		if (dn < TOTAL) {
			n = libssh2_channel_write(a, (char *)buf, sizeof buf);
			T_CHECK(n > 0 || n == LIBSSH2_ERROR_EAGAIN, "write: %zd",
			    n);
			if (n > 0)
				dn += (size_t)n;
		}
		pfd[0].fd = t.fd;
		pfd[0].events = POLLIN |
		    (t_slot_busy(&t) || dn < TOTAL ? POLLOUT : 0);
		pfd[1].fd = ca;
		pfd[1].events = POLLIN | (up < TOTAL ? POLLOUT : 0);
		(void)poll(pfd, 2, 20);
	}
	t_fact("4 MiB each way through %s", crypt);
	t_close(&t);
	puts("ok");
	return 0;
}
