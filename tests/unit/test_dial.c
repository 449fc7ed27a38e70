/*
 * Unit tests for dial.c: the RFC 8305 address order, address text, the
 * cheap/costly split, and real races on loopback: a refused and a
 * listening port, a black hole (a listener whose accept queue is full
 * drops SYNs) beaten by a later address without waiting for its deadline,
 * all addresses failing with their own causes, and cancelling mid-race.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "addr.h"
#include "dial.h"
#include "loop.h"
#include "resolve.h"
#include "util.h"

/* Append an IPv4 or IPv6 literal with port to res. */
static void
add(struct resolve_result *res, const char *ip, int port)
{
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;

	memset(&res->addrs[res->n], 0, sizeof res->addrs[0]);
	if (strchr(ip, ':') != NULL) {
		sin6 = (struct sockaddr_in6 *)&res->addrs[res->n];
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
		res->lens[res->n] = sizeof *sin6;
	} else {
		sin = (struct sockaddr_in *)&res->addrs[res->n];
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
		res->lens[res->n] = sizeof *sin;
	}
	res->n++;
}

/* The order dial_order gives, as the families' letters ("6464"). */
static void
order_of(const char *const *ips, int n, int *order, char *fams)
{
	struct resolve_result	res;
	int			i;

	memset(&res, 0, sizeof res);
	for (i = 0; i < n; i++)
		add(&res, ips[i], 22);
	assert_int_equal(dial_order(&res, order), n);
	for (i = 0; i < n; i++)
		fams[i] = res.addrs[order[i]].ss_family == AF_INET6 ? '6' : '4';
	fams[n] = '\0';
}

/* Families alternate, starting with the first result's, order kept. */
static void
test_dial_order_interleaves(void **state)
{
	static const char *const	a[] = { "2001:db8::1", "2001:db8::2",
					    "2001:db8::3", "192.0.2.1",
					    "192.0.2.2" };
	static const char *const	b[] = { "192.0.2.1", "192.0.2.2",
					    "2001:db8::1" };
	static const int		wa[] = { 0, 3, 1, 4, 2 };
	static const int		wb[] = { 0, 2, 1 };
	int				order[RESOLVE_MAX_ADDRS], i;
	char				fams[RESOLVE_MAX_ADDRS + 1];

	(void)state;
	order_of(a, 5, order, fams);
	assert_string_equal(fams, "64646");
	for (i = 0; i < 5; i++)
		assert_int_equal(order[i], wa[i]);
	order_of(b, 3, order, fams);
	assert_string_equal(fams, "464");
	for (i = 0; i < 3; i++)
		assert_int_equal(order[i], wb[i]);
}

/* One family, one address, none: the resolver's order unchanged. */
static void
test_dial_order_single_family(void **state)
{
	static const char *const	a[] = { "192.0.2.3", "192.0.2.1",
					    "192.0.2.2" };
	static const char *const	b[] = { "::1" };
	struct resolve_result		empty;
	int				order[RESOLVE_MAX_ADDRS];
	char				fams[RESOLVE_MAX_ADDRS + 1];

	(void)state;
	order_of(a, 3, order, fams);
	assert_string_equal(fams, "444");
	assert_int_equal(order[0], 0);
	assert_int_equal(order[1], 1);
	assert_int_equal(order[2], 2);
	order_of(b, 1, order, fams);
	assert_int_equal(order[0], 0);
	memset(&empty, 0, sizeof empty);
	assert_int_equal(dial_order(&empty, order), 0);
}

/* Address text: brackets for IPv6, numeric always. */
static void
test_dial_format(void **state)
{
	struct resolve_result	res;
	char			text[ADDR_TEXT_MAX];

	(void)state;
	memset(&res, 0, sizeof res);
	add(&res, "203.0.113.7", 22);
	add(&res, "2001:db8::7", 2222);
	dial_format((struct sockaddr *)&res.addrs[0], res.lens[0], text,
	    sizeof text);
	assert_string_equal(text, "203.0.113.7:22");
	dial_format((struct sockaddr *)&res.addrs[1], res.lens[1], text,
	    sizeof text);
	assert_string_equal(text, "[2001:db8::7]:2222");
}

/* Refused and unreachable are cheap; local trouble is not. */
static void
test_dial_cheap(void **state)
{
	(void)state;
	assert_true(dial_cheap(ECONNREFUSED));
	assert_true(dial_cheap(ENETUNREACH));
	assert_true(dial_cheap(EHOSTUNREACH));
	assert_true(dial_cheap(ETIMEDOUT));
	assert_false(dial_cheap(EMFILE));
	assert_false(dial_cheap(EACCES));
	assert_false(dial_cheap(EPERM));
}

/* ------------------------------------------------------------------ */
/* Real races on loopback. */

struct race {
	struct loop		*l;
	struct loop_timer	 guard;
	int			 calls;
	int			 fd;
	char			 address[ADDR_TEXT_MAX];
	char			 error[1024];
	int			 cheap;
	int			 tried;
	int64_t			 took_ms;
	int64_t			 t0;
};

/* The dial's callback: record the outcome and stop the loop. */
static void
race_done(void *arg, const struct dial_result *r)
{
	struct race	*x = arg;

	x->calls++;
	x->fd = r->fd;
	x->cheap = r->cheap;
	x->tried = r->tried;
	snprintf(x->address, sizeof x->address, "%s",
	    r->address ? r->address : "");
	snprintf(x->error, sizeof x->error, "%s", r->error ? r->error : "");
	x->took_ms = time_now_ms() - x->t0;
	loop_stop(x->l);
}

/* A race that never ends is a failure, not a hang. */
static void
race_guard(void *arg)
{
	struct race	*x = arg;

	loop_stop(x->l);
}

/* Run a dial over res to its end (or the 10 s guard). */
static void
race_run(struct race *x, const struct resolve_result *res, int64_t timeout)
{
	memset(x, 0, sizeof *x);
	x->fd = -1;
	x->l = loop_new();
	assert_non_null(x->l);
	loop_timer_init(&x->guard, race_guard, x);
	loop_timer_in(x->l, &x->guard, 10000);
	x->t0 = time_now_ms();
	(void)dial_start(x->l, res, timeout, race_done, x);
	assert_int_equal(loop_run(x->l), 0);
	loop_timer_stop(x->l, &x->guard);
	loop_free(x->l);
	assert_int_equal(x->calls, 1);
}

/* A listening socket on 127.0.0.1 with the given backlog; *port set. */
static int
listener(int backlog, int *port)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof sin;
	int			fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd != -1);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(listen(fd, backlog), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* A port nothing listens on (bound, never listening: refused). */
static int
refused_port(int *fd)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof sin;

	*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(*fd != -1);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(*fd, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(getsockname(*fd, (struct sockaddr *)&sin, &len), 0);
	return ntohs(sin.sin_port);
}

/*
 * A black hole: a listener with backlog 0 and one connection waiting in
 * its accept queue drops every further SYN (Linux: the queue is full).
 */
static int
black_hole(int *lfd, int *cfd)
{
	struct sockaddr_in	sin;
	int			port;

	*lfd = listener(0, &port);
	*cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(*cfd, (struct sockaddr *)&sin, sizeof sin), 0);
	return port;
}

/* Refused, refused, refused, then a listener: no delay after failures. */
static void
test_dial_refused_then_listening(void **state)
{
	struct resolve_result	res;
	struct race		x;
	char			want[64];
	int			rfd[3], lfd, lport, i;

	(void)state;
	memset(&res, 0, sizeof res);
	for (i = 0; i < 3; i++)
		add(&res, "127.0.0.1", refused_port(&rfd[i]));
	lfd = listener(8, &lport);
	add(&res, "127.0.0.1", lport);
	race_run(&x, &res, 5000);
	assert_true(x.fd != -1);
	snprintf(want, sizeof want, "127.0.0.1:%d", lport);
	assert_string_equal(x.address, want);
	assert_int_equal(x.tried, 4);
	/* Three attempt delays would be 750 ms: a failure skips the delay. */
	assert_true(x.took_ms < 3 * DIAL_ATTEMPT_DELAY_MS - 50);
	close(x.fd);
	for (i = 0; i < 3; i++)
		close(rfd[i]);
	close(lfd);
}

/* A black hole first: the next address wins after the attempt delay. */
static void
test_dial_black_hole_loses(void **state)
{
	struct resolve_result	res;
	struct race		x;
	char			want[64];
	int			hl, hc, lfd, hport, lport;

	(void)state;
	hport = black_hole(&hl, &hc);
	lfd = listener(8, &lport);
	memset(&res, 0, sizeof res);
	add(&res, "127.0.0.1", hport);
	add(&res, "127.0.0.1", lport);
	race_run(&x, &res, 8000);
	assert_true(x.fd != -1);
	snprintf(want, sizeof want, "127.0.0.1:%d", lport);
	assert_string_equal(x.address, want);
	/* Started after the delay, long before the black hole's deadline. */
	assert_true(x.took_ms >= DIAL_ATTEMPT_DELAY_MS - 5);
	assert_true(x.took_ms < 4000);
	close(x.fd);
	close(hc);
	close(hl);
	close(lfd);
}

/* Everything fails: one message, each address with its own cause. */
static void
test_dial_all_fail(void **state)
{
	struct resolve_result	res;
	struct race		x;
	char			want[256];
	int			hl, hc, rfd, hport, rport;

	(void)state;
	hport = black_hole(&hl, &hc);
	rport = refused_port(&rfd);
	memset(&res, 0, sizeof res);
	add(&res, "127.0.0.1", hport);
	add(&res, "127.0.0.1", rport);
	race_run(&x, &res, 600);
	assert_int_equal(x.fd, -1);
	snprintf(want, sizeof want, "127.0.0.1:%d: timed out after 600ms; "
	    "127.0.0.1:%d: connection refused", hport, rport);
	assert_string_equal(x.error, want);
	assert_int_equal(x.tried, 2);
	assert_true(x.cheap);
	/* The black hole's own deadline, not more. */
	assert_true(x.took_ms >= 590);
	close(hc);
	close(hl);
	close(rfd);
}

/* Open fds of this process. */
static int
fd_count(void)
{
	DIR		*d = opendir("/proc/self/fd");
	struct dirent	*e;
	int		 n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Cancelled mid-race: the callback never runs, nothing leaks (ASan). */
static void
test_dial_cancel(void **state)
{
	struct resolve_result	 res;
	struct race		 x;
	struct dial		*d;
	int			 hl, hc, hl2, hc2, hport, hport2, fds;

	(void)state;
	hport = black_hole(&hl, &hc);
	hport2 = black_hole(&hl2, &hc2);
	memset(&res, 0, sizeof res);
	add(&res, "127.0.0.1", hport);
	add(&res, "127.0.0.1", hport2);
	memset(&x, 0, sizeof x);
	x.l = loop_new();
	loop_timer_init(&x.guard, race_guard, &x);
	/* Both attempts are in flight by then. */
	loop_timer_in(x.l, &x.guard, 2 * DIAL_ATTEMPT_DELAY_MS + 100);
	fds = fd_count();
	d = dial_start(x.l, &res, 5000, race_done, &x);
	assert_int_equal(loop_run(x.l), 0);
	assert_int_equal(fd_count(), fds + 2);
	dial_cancel(d);
	assert_int_equal(fd_count(), fds);
	/* Runs the deferred free (ASan would see a leak otherwise). */
	loop_free(x.l);
	assert_int_equal(x.calls, 0);
	close(hc);
	close(hl);
	close(hc2);
	close(hl2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dial_order_interleaves),
		cmocka_unit_test(test_dial_order_single_family),
		cmocka_unit_test(test_dial_format),
		cmocka_unit_test(test_dial_cheap),
		cmocka_unit_test(test_dial_refused_then_listening),
		cmocka_unit_test(test_dial_black_hole_loses),
		cmocka_unit_test(test_dial_all_fail),
		cmocka_unit_test(test_dial_cancel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
