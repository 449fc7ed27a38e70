/*
 * Unit tests for loop.c: timer order, posted callbacks after dispatch,
 * deferred frees, fd readiness on a socketpair, signals via signalfd.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "loop.h"
#include "util.h"

struct rec {
	struct loop	*l;
	char		 order[32];
	int		 n;
};

/* Append a mark and stop after the expected count. */
static void
rec_mark(struct rec *r, char c, int stop_at)
{
	r->order[r->n++] = c;
	r->order[r->n] = '\0';
	if (r->n == stop_at)
		loop_stop(r->l);
}

static struct rec	*timer_rec;

/* Timer callbacks mark their letter. */
static void
timer_a(void *arg)
{
	(void)arg;
	rec_mark(timer_rec, 'a', 3);
}

static void
timer_b(void *arg)
{
	(void)arg;
	rec_mark(timer_rec, 'b', 3);
}

static void
timer_c(void *arg)
{
	(void)arg;
	rec_mark(timer_rec, 'c', 3);
}

/* Timers fire in deadline order; a stopped timer never fires. */
static void
test_loop_timers_in_order(void **state)
{
	struct loop_timer	ta, tb, tc, tx;
	struct rec		r;

	(void)state;
	memset(&r, 0, sizeof r);
	r.l = loop_new();
	timer_rec = &r;
	loop_timer_init(&ta, timer_a, NULL);
	loop_timer_init(&tb, timer_b, NULL);
	loop_timer_init(&tc, timer_c, NULL);
	loop_timer_init(&tx, timer_a, NULL);
	loop_timer_in(r.l, &tc, 30);
	loop_timer_in(r.l, &ta, 10);
	loop_timer_in(r.l, &tx, 5);
	loop_timer_in(r.l, &tb, 20);
	loop_timer_stop(r.l, &tx);
	assert_false(loop_timer_armed(&tx));
	assert_int_equal(loop_run(r.l), 0);
	assert_string_equal(r.order, "abc");
	loop_free(r.l);
}

static struct loop_post	*again_post;

/* Posted callback that re-posts itself once: runs again next round. */
static void
post_again(void *arg)
{
	struct rec	*r = arg;

	rec_mark(r, 'q', 2);
	if (r->n == 1)
		loop_post(r->l, again_post);
}

/* Posting twice before a run runs the callback once. */
static void
test_loop_post(void **state)
{
	struct loop_post	p;
	struct rec		r;

	(void)state;
	memset(&r, 0, sizeof r);
	r.l = loop_new();
	loop_post_init(&p, post_again, &r);
	again_post = &p;
	loop_post(r.l, &p);
	loop_post(r.l, &p);
	assert_int_equal(loop_run(r.l), 0);
	assert_string_equal(r.order, "qq");
	loop_free(r.l);
}

static int	io_fd;

/* Read the byte and stop. */
static void
io_read_cb(void *arg, uint32_t events)
{
	struct rec	*r = arg;
	char		 c;

	assert_true(events & EPOLLIN);
	assert_int_equal(read(io_fd, &c, 1), 1);
	assert_int_equal(c, 'x');
	rec_mark(r, 'i', 1);
}

/* A byte written to a socketpair wakes the watcher. */
static void
test_loop_io(void **state)
{
	struct loop_io	io;
	struct rec	r;
	int		sv[2];

	(void)state;
	memset(&r, 0, sizeof r);
	r.l = loop_new();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	io_fd = sv[0];
	loop_io_init(&io, io_read_cb, &r);
	assert_int_equal(loop_io_add(r.l, &io, sv[0], EPOLLIN), 0);
	assert_int_equal(write(sv[1], "x", 1), 1);
	assert_int_equal(loop_run(r.l), 0);
	assert_string_equal(r.order, "i");
	loop_io_del(r.l, &io);
	assert_int_equal(io.fd, -1);
	close(sv[0]);
	close(sv[1]);
	loop_free(r.l);
}

static int	freed;

/* Deferred free target. */
static void
count_free(void *p)
{
	freed++;
	free(p);
}

/* Defer a free from a timer and check it happens after the round. */
static void
defer_timer(void *arg)
{
	struct rec	*r = arg;

	loop_defer_free(r->l, count_free, xmalloc(8));
	assert_int_equal(freed, 0);
	rec_mark(r, 'd', 1);
}

/* Deferred frees run at the end of the round. */
static void
test_loop_defer(void **state)
{
	struct loop_timer	t;
	struct rec		r;

	(void)state;
	memset(&r, 0, sizeof r);
	freed = 0;
	r.l = loop_new();
	loop_timer_init(&t, defer_timer, &r);
	loop_timer_in(r.l, &t, 0);
	assert_int_equal(loop_run(r.l), 0);
	assert_int_equal(freed, 1);
	loop_free(r.l);
}

/* Signal handler via signalfd. */
static void
sig_cb(void *arg, int signo)
{
	struct rec	*r = arg;

	assert_int_equal(signo, SIGUSR2);
	rec_mark(r, 's', 1);
}

/* A blocked signal raised at ourselves arrives through the loop. */
static void
test_loop_signal(void **state)
{
	struct rec	r;

	(void)state;
	memset(&r, 0, sizeof r);
	r.l = loop_new();
	assert_int_equal(loop_signal(r.l, SIGUSR2, sig_cb, &r), 0);
	assert_int_equal(kill(getpid(), SIGUSR2), 0);
	assert_int_equal(loop_run(r.l), 0);
	assert_string_equal(r.order, "s");
	loop_free(r.l);
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_loop_timers_in_order),
		cmocka_unit_test(test_loop_post),
		cmocka_unit_test(test_loop_io),
		cmocka_unit_test(test_loop_defer),
		cmocka_unit_test(test_loop_signal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
