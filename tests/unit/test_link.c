/*
 * Unit tests for link.c on a socketpair: whole packets are queued and
 * written by link_flush, EAGAIN comes only beyond the cap and never for
 * part of a packet, and recv skips the syscall after EAGAIN until the
 * socket is reported readable.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "link.h"

/* A non-blocking socketpair; l uses sv[0]. */
static void
pair(struct link *l, int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	link_init(l);
	l->fd = sv[0];
}

/* Packets are queued, then written in one go by link_flush. */
static void
test_link_send_batches(void **state)
{
	struct link	l;
	char		got[64];
	int		sv[2];

	(void)state;
	pair(&l, sv);
	assert_int_equal(link_send(&l, sv[0], "abc", 3, 0), 3);
	assert_int_equal(link_send(&l, sv[0], "defg", 4, 0), 4);
	/* Nothing on the wire before the flush. */
	assert_int_equal(recv(sv[1], got, sizeof got, 0), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(link_flush(&l), 0);
	assert_int_equal(l.out.len, 0);
	assert_int_equal(recv(sv[1], got, sizeof got, 0), 7);
	assert_memory_equal(got, "abcdefg", 7);
	link_clear(&l);
	close(sv[0]);
	close(sv[1]);
}

/* Past the mark: still every packet taken whole, and writers told. */
static void
test_link_send_full(void **state)
{
	static char	packet[32 * 1024];
	struct link	l;
	size_t		queued = 0;
	ssize_t		n;
	int		sv[2];

	(void)state;
	pair(&l, sv);
	/*
	 * Nobody reads sv[1]: the socket fills, then the queue passes its
	 * mark; packets are still taken whole (libssh2 must never hold one).
	 */
	while (!link_congested(&l)) {
		n = link_send(&l, sv[0], packet, sizeof packet, 0);
		assert_int_equal(n, (ssize_t)sizeof packet);
		queued += sizeof packet;
		assert_true(queued < 64 * 1024 * 1024);
	}
	assert_int_equal(link_send(&l, sv[0], packet, sizeof packet, 0),
	    (ssize_t)sizeof packet);
	assert_int_equal(l.out_errno, 0);
	while (!link_congested(&l))
		(void)link_send(&l, sv[0], packet, sizeof packet, 0);
	/* A writer that waited is told once the queue went below the mark. */
	link_wait(&l);
	assert_false(link_writable(&l));
	while (link_congested(&l)) {
		n = recv(sv[1], packet, sizeof packet, 0);
		assert_true(n > 0);
		(void)link_flush(&l);
	}
	assert_true(link_writable(&l));
	assert_false(link_writable(&l));
	link_clear(&l);
	close(sv[0]);
	close(sv[1]);
}

/* A failed write is reported, and later sends fail the same way. */
static void
test_link_send_error(void **state)
{
	struct link	l;
	int		sv[2];

	(void)state;
	pair(&l, sv);
	close(sv[1]);
	assert_int_equal(link_send(&l, sv[0], "x", 1, 0), 1);
	assert_int_equal(link_flush(&l), -1);
	assert_int_equal(l.out_errno, EPIPE);
	assert_int_equal(link_send(&l, sv[0], "y", 1, 0), -EPIPE);
	link_reset(&l);
	assert_int_equal(l.out_errno, 0);
	assert_int_equal(l.out.len, 0);
	link_clear(&l);
	close(sv[0]);
}

/* After EAGAIN, recv answers EAGAIN itself until link_readable. */
static void
test_link_recv_gate(void **state)
{
	struct link	l;
	uint64_t	gen;
	char		got[16];
	int		sv[2];

	(void)state;
	pair(&l, sv);
	assert_int_equal(link_recv(&l, 1000, sv[0], got, sizeof got, 0), -EAGAIN);
	assert_int_equal(l.rx_empty, 1);
	gen = l.rx_gen;
	assert_int_equal(send(sv[1], "hi", 2, 0), 2);
	/* Data is there, but nobody said so: no syscall, still EAGAIN. */
	assert_int_equal(link_recv(&l, 1000, sv[0], got, sizeof got, 0), -EAGAIN);
	link_readable(&l);
	assert_int_equal(link_recv(&l, 1000, sv[0], got, sizeof got, 0), 2);
	assert_memory_equal(got, "hi", 2);
	assert_true(l.rx_gen == gen + 1);
	assert_true(l.last_rx_ms > 0);
	/* The peer closed: 0, which libssh2 reads as a dead link. */
	close(sv[1]);
	link_readable(&l);
	assert_int_equal(link_recv(&l, 1000, sv[0], got, sizeof got, 0), 0);
	link_clear(&l);
	close(sv[0]);
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_link_send_batches),
		cmocka_unit_test(test_link_send_full),
		cmocka_unit_test(test_link_send_error),
		cmocka_unit_test(test_link_recv_gate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
