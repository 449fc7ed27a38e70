/*
 * Unit tests for loop.c: timer order, posted callbacks after dispatch,
 * deferred frees, fd readiness on a socketpair, signals via signalfd,
 * and frees in the middle of a batch (run under ASan: a callback for a
 * freed watcher is a heap-use-after-free report).
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

/* A watcher living in its own heap block, freed by another callback. */
struct owned {
	struct loop_io	 io;
	struct rec	*r;
	int		 fd;
};

static struct owned	*pair[2];

/* Whoever runs first frees the other one outright (closing its fd). */
static void
killer_cb(void *arg, uint32_t events)
{
	struct owned	*o = arg;
	int		 other = pair[0] == o ? 1 : 0;
	char		 c;

	(void)events;
	if (o->r->n > 0)
		fail_msg("the callback of a freed watcher ran");
	assert_int_equal(read(o->fd, &c, 1), 1);
	rec_mark(o->r, 'k', 1);
	loop_io_del(o->r->l, &pair[other]->io);
	close(pair[other]->fd);
	free(pair[other]);
	pair[other] = NULL;
}

/*
 * Two watchers ready in one batch; the callback of the first frees the
 * second outright (no deferral): the second's event is dropped, and the
 * loop never reads its memory.
 */
static void
test_loop_free_mid_batch(void **state)
{
	struct rec	 r;
	int		 sa[2], sb[2], i;

	(void)state;
	memset(&r, 0, sizeof r);
	r.l = loop_new();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sa), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sb), 0);
	for (i = 0; i < 2; i++) {
		pair[i] = xcalloc(1, sizeof *pair[i]);
		pair[i]->r = &r;
		pair[i]->fd = i == 0 ? sa[0] : sb[0];
		loop_io_init(&pair[i]->io, killer_cb, pair[i]);
		assert_int_equal(loop_io_add(r.l, &pair[i]->io, pair[i]->fd,
		    EPOLLIN), 0);
	}
	/* Both readable before the loop waits: one batch of two events. */
	assert_int_equal(write(sa[1], "x", 1), 1);
	assert_int_equal(write(sb[1], "x", 1), 1);
	assert_int_equal(loop_run(r.l), 0);
	assert_string_equal(r.order, "k");
	assert_true((pair[0] == NULL) != (pair[1] == NULL));
	for (i = 0; i < 2; i++) {
		if (pair[i] == NULL)
			continue;
		loop_io_del(r.l, &pair[i]->io);
		close(pair[i]->fd);
		free(pair[i]);
		pair[i] = NULL;
	}
	close(sa[1]);
	close(sb[1]);
	loop_free(r.l);
}

static int	reuse_fd_new, reuse_fd_peer;

/* Must only ever see the new fd's readiness (non-blocking: no byte, -1). */
static void
reuse_cb(void *arg, uint32_t events)
{
	struct rec	*r = arg;
	char		 c;

	(void)events;
	assert_int_equal(read(reuse_fd_new, &c, 1), 1);
	assert_int_equal(c, 'n');
	rec_mark(r, 'n', 1);
}

static struct loop_io	*reuse_io;
static struct loop_timer *reuse_timer;
static int		 reuse_old_fd;

/* After the batch: make the new fd readable. */
static void
reuse_write(void *arg)
{
	(void)arg;
	assert_int_equal(write(reuse_fd_peer, "n", 1), 1);
}

/* Earlier in the batch: move the watcher to another fd. */
static void
mover_cb(void *arg, uint32_t events)
{
	struct rec	*r = arg;
	char		 c;

	(void)events;
	assert_int_equal(read(io_fd, &c, 1), 1);
	loop_io_del(r->l, reuse_io);
	close(reuse_old_fd);
	assert_int_equal(loop_io_add(r->l, reuse_io, reuse_fd_new, EPOLLIN),
	    0);
	loop_timer_in(r->l, reuse_timer, 0);
}

/*
 * A watcher moved to a new fd in the middle of a batch (a connect to the
 * next address) never receives the event the old fd had in the batch.
 */
static void
test_loop_io_moved_mid_batch(void **state)
{
	struct loop_io		mover, moved;
	struct loop_timer	t;
	struct rec		r;
	int			sm[2], so[2], sn[2];

	(void)state;
	memset(&r, 0, sizeof r);
	r.l = loop_new();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sm), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, so), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sn), 0);
	io_fd = sm[0];
	reuse_old_fd = so[0];
	reuse_fd_new = sn[0];
	reuse_fd_peer = sn[1];
	reuse_io = &moved;
	reuse_timer = &t;
	loop_timer_init(&t, reuse_write, NULL);
	loop_io_init(&mover, mover_cb, &r);
	loop_io_init(&moved, reuse_cb, &r);
	/* The mover first: epoll reports in readiness order. */
	assert_int_equal(loop_io_add(r.l, &mover, sm[0], EPOLLIN), 0);
	assert_int_equal(loop_io_add(r.l, &moved, so[0], EPOLLIN), 0);
	assert_int_equal(write(sm[1], "m", 1), 1);
	assert_int_equal(write(so[1], "o", 1), 1);
	assert_int_equal(loop_run(r.l), 0);
	assert_string_equal(r.order, "n");
	loop_io_del(r.l, &mover);
	loop_io_del(r.l, &moved);
	close(sm[0]);
	close(sm[1]);
	close(so[1]);
	close(sn[0]);
	close(sn[1]);
	loop_free(r.l);
}

static struct owned	*sig_victim;

/* The fd callback of the batch: must run before the signal's handler. */
static void
batch_fd_cb(void *arg, uint32_t events)
{
	struct owned	*o = arg;
	char		 c;

	(void)events;
	assert_int_equal(read(o->fd, &c, 1), 1);
	rec_mark(o->r, 'f', 0);
}

/* The handler frees the watcher outright, as a reload frees bridges. */
static void
sig_free_cb(void *arg, int signo)
{
	struct rec	*r = arg;

	assert_int_equal(signo, SIGUSR2);
	rec_mark(r, 's', 2);
	loop_io_del(r->l, &sig_victim->io);
	close(sig_victim->fd);
	free(sig_victim);
	sig_victim = NULL;
}

/*
 * A signal and an fd ready in the same batch, the signal reported first:
 * the handler still runs after the fd callback (posted work), so what it
 * frees is never in use by the batch.
 */
static void
test_loop_signal_after_batch(void **state)
{
	struct rec	 r;
	int		 sv[2];

	(void)state;
	memset(&r, 0, sizeof r);
	r.l = loop_new();
	assert_int_equal(loop_signal(r.l, SIGUSR2, sig_free_cb, &r), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	sig_victim = xcalloc(1, sizeof *sig_victim);
	sig_victim->r = &r;
	sig_victim->fd = sv[0];
	loop_io_init(&sig_victim->io, batch_fd_cb, sig_victim);
	assert_int_equal(loop_io_add(r.l, &sig_victim->io, sv[0], EPOLLIN), 0);
	/* The signalfd becomes ready first, then the socket. */
	assert_int_equal(kill(getpid(), SIGUSR2), 0);
	assert_int_equal(write(sv[1], "x", 1), 1);
	assert_int_equal(loop_run(r.l), 0);
	assert_string_equal(r.order, "fs");
	assert_null(sig_victim);
	close(sv[1]);
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
		cmocka_unit_test(test_loop_free_mid_batch),
		cmocka_unit_test(test_loop_io_moved_mid_batch),
		cmocka_unit_test(test_loop_signal_after_batch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
