/*
 * The event loop. One turn: wait on epoll until the earliest timer, run
 * ready fd callbacks (the batch), run expired timers, run posted callbacks
 * (signals among them), then free what was deferred during the turn.
 *
 * Why an object may be freed without waiting for the batch to end: the
 * batch holds pointers to loop_io watchers, and loop_io_del() strikes the
 * watcher's remaining events out of the batch, so no callback ever runs
 * for a watcher after it was removed, and the loop never reads a removed
 * watcher again (not even its fd). A stopped timer is out of the heap and
 * a cancelled post is out of both queues, so the same holds for them. The
 * rule for every module is therefore: unregister (loop_io_del,
 * loop_timer_stop, loop_post_cancel) before free. Only an object freed
 * from inside its own callback needs loop_defer_free(), because the
 * callback's own frames still use it.
 *
 * Signals are not handled in the batch either: the signalfd callback only
 * records them, and their handlers run as posted work, after every fd
 * callback and timer of the turn, from the one call site of posted
 * callbacks. A reload (SIGHUP) that frees sessions, forwards, bridges and
 * the control socket thus always runs with no other callback on the stack
 * and no event of the batch left to dispatch.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "util.h"

/*
 * Events taken per epoll_wait. Large, because the session's service runs
 * once per turn whatever the number of events, and it visits every
 * connection: fewer, fuller turns keep a burst on 10 000 connections cheap.
 */
#define LOOP_MAX_EVENTS	1024

struct loop_signal_handler {
	int	  signo;
	void	(*cb)(void *, int);
	void	 *arg;
};

struct loop_deferred {
	void	(*fn)(void *);
	void	 *obj;
};

struct loop {
	int			 epfd;
	int			 running;
	int64_t			 now;

	/* The batch being dispatched: loop_io_del() strikes events out. */
	struct epoll_event	 *batch;
	int			  batch_next, batch_n;

	struct loop_timer	**heap;
	size_t			  nheap, capheap;

	struct loop_post	 *post_head, **post_tail;
	struct loop_post	 *run_head;

	struct loop_deferred	 *deferred;
	size_t			  ndeferred, capdeferred;

	int			  sigfd;
	sigset_t		  sigmask;
	struct loop_io		  sigio;
	struct loop_signal_handler sigs[8];
	size_t			  nsigs;
	/* Signals read this turn, in arrival order, not yet dispatched. */
	int			  sigpending[8];
	size_t			  nsigpending;
	struct loop_post	  sigpost;
};

static void	loop_signal_read(void *, uint32_t);
static void	loop_signal_dispatch(void *);

/* Create a loop. */
struct loop *
loop_new(void)
{
	struct loop	*l = xcalloc(1, sizeof *l);

	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd == -1) {
		free(l);
		return NULL;
	}
	l->sigfd = -1;
	l->post_tail = &l->post_head;
	l->now = time_now_ms();
	sigemptyset(&l->sigmask);
	loop_io_init(&l->sigio, loop_signal_read, l);
	loop_post_init(&l->sigpost, loop_signal_dispatch, l);
	return l;
}

/* Run pending deferred frees. */
static void
loop_run_deferred(struct loop *l)
{
	size_t	i;

	/* A free function may defer more: the index re-reads the array. */
	for (i = 0; i < l->ndeferred; i++)
		l->deferred[i].fn(l->deferred[i].obj);
	l->ndeferred = 0;
}

/* Destroy a loop; registered objects must already be gone. */
void
loop_free(struct loop *l)
{
	if (l == NULL)
		return;
	loop_run_deferred(l);
	if (l->sigfd != -1) {
		loop_io_del(l, &l->sigio);
		close(l->sigfd);
		sigprocmask(SIG_UNBLOCK, &l->sigmask, NULL);
	}
	close(l->epfd);
	free(l->heap);
	free(l->deferred);
	free(l);
}

/* The monotonic time cached at the start of this turn. */
int64_t
loop_now(struct loop *l)
{
	return l->now;
}

/* Prepare an io watcher (not yet registered). */
void
loop_io_init(struct loop_io *io, void (*cb)(void *, uint32_t), void *arg)
{
	io->fd = -1;
	io->events = 0;
	io->cb = cb;
	io->arg = arg;
}

/* Start watching fd for events. */
int
loop_io_add(struct loop *l, struct loop_io *io, int fd, uint32_t events)
{
	struct epoll_event	ev;

	memset(&ev, 0, sizeof ev);
	ev.events = events;
	ev.data.ptr = io;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
		return -1;
	io->fd = fd;
	io->events = events;
	return 0;
}

/* Change the events watched (no syscall when unchanged). */
void
loop_io_set(struct loop *l, struct loop_io *io, uint32_t events)
{
	struct epoll_event	ev;

	if (io->fd == -1 || io->events == events)
		return;
	memset(&ev, 0, sizeof ev);
	ev.events = events;
	ev.data.ptr = io;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) == -1)
		log_err(NULL, NULL, "epoll_ctl(MOD, %d): %s", io->fd,
		    strerror(errno));
	io->events = events;
}

/*
 * Stop watching; safe when not registered. Events of io still waiting in
 * the batch being dispatched are struck out: io gets no callback after
 * this, and its memory may be freed at once.
 */
void
loop_io_del(struct loop *l, struct loop_io *io)
{
	int	i;

	if (io->fd == -1)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->fd = -1;
	io->events = 0;
	for (i = l->batch_next; i < l->batch_n; i++)
		if (l->batch[i].data.ptr == io)
			l->batch[i].data.ptr = NULL;
}

/* Swap two heap slots and fix their back-pointers. */
static void
loop_heap_swap(struct loop *l, size_t a, size_t b)
{
	struct loop_timer	*t = l->heap[a];

	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->heap[a]->slot = a + 1;
	l->heap[b]->slot = b + 1;
}

/* Move heap entry i up or down until the heap order holds. */
static void
loop_heap_fix(struct loop *l, size_t i)
{
	size_t	c;

	while (i > 0 && l->heap[(i - 1) / 2]->at_ms > l->heap[i]->at_ms) {
		loop_heap_swap(l, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		c = 2 * i + 1;
		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap && l->heap[c + 1]->at_ms < l->heap[c]->at_ms)
			c++;
		if (l->heap[i]->at_ms <= l->heap[c]->at_ms)
			break;
		loop_heap_swap(l, i, c);
		i = c;
	}
}

/* Prepare a timer (not armed). */
void
loop_timer_init(struct loop_timer *t, void (*cb)(void *), void *arg)
{
	t->at_ms = 0;
	t->slot = 0;
	t->cb = cb;
	t->arg = arg;
}

/* Arm (or re-arm) a timer for the absolute monotonic time at. */
void
loop_timer_at(struct loop *l, struct loop_timer *t, int64_t at)
{
	t->at_ms = at;
	if (t->slot != 0) {
		loop_heap_fix(l, t->slot - 1);
		return;
	}
	if (l->nheap == l->capheap) {
		l->capheap = l->capheap ? l->capheap * 2 : 64;
		l->heap = xreallocarray(l->heap, l->capheap, sizeof *l->heap);
	}
	l->heap[l->nheap] = t;
	t->slot = ++l->nheap;
	loop_heap_fix(l, l->nheap - 1);
}

/* Arm a timer ms milliseconds from now. */
void
loop_timer_in(struct loop *l, struct loop_timer *t, int64_t ms)
{
	loop_timer_at(l, t, time_now_ms() + ms);
}

/* Disarm a timer; safe when not armed. */
void
loop_timer_stop(struct loop *l, struct loop_timer *t)
{
	size_t	i;

	if (t->slot == 0)
		return;
	i = t->slot - 1;
	t->slot = 0;
	l->nheap--;
	if (i == l->nheap)
		return;
	l->heap[i] = l->heap[l->nheap];
	l->heap[i]->slot = i + 1;
	loop_heap_fix(l, i);
}

/* 1 if the timer is armed. */
int
loop_timer_armed(const struct loop_timer *t)
{
	return t->slot != 0;
}

/* Prepare a post handle. */
void
loop_post_init(struct loop_post *p, void (*cb)(void *), void *arg)
{
	p->cb = cb;
	p->arg = arg;
	p->next = NULL;
	p->posted = 0;
}

/* Queue cb to run after this dispatch round; idempotent until it runs. */
void
loop_post(struct loop *l, struct loop_post *p)
{
	if (p->posted)
		return;
	p->posted = 1;
	p->next = NULL;
	*l->post_tail = p;
	l->post_tail = &p->next;
}

/* Unlink p from the singly linked list at *head; 1 if it was there. */
static int
loop_post_unlink(struct loop_post **head, struct loop_post ***tail,
    struct loop_post *p)
{
	struct loop_post	**pp;

	for (pp = head; *pp != NULL; pp = &(*pp)->next) {
		if (*pp != p)
			continue;
		*pp = p->next;
		if (tail != NULL && *tail == &p->next)
			*tail = pp;
		return 1;
	}
	return 0;
}

/* Remove a queued post (before its owner is freed). */
void
loop_post_cancel(struct loop *l, struct loop_post *p)
{
	if (!p->posted)
		return;
	if (!loop_post_unlink(&l->post_head, &l->post_tail, p))
		loop_post_unlink(&l->run_head, NULL, p);
	p->posted = 0;
	p->next = NULL;
}

/* Run everything posted before this call; new posts wait a round. */
static void
loop_run_posted(struct loop *l)
{
	struct loop_post	*p;

	/* Detach the queue so that re-posts go to the next round. */
	l->run_head = l->post_head;
	l->post_head = NULL;
	l->post_tail = &l->post_head;
	while ((p = l->run_head) != NULL) {
		l->run_head = p->next;
		p->posted = 0;
		p->next = NULL;
		/* The one call site of every posted callback (fixed depth). */
		p->cb(p->arg);
	}
}

/* Free obj with fn at the end of this turn. */
void
loop_defer_free(struct loop *l, void (*fn)(void *), void *obj)
{
	if (l->ndeferred == l->capdeferred) {
		l->capdeferred = l->capdeferred ? l->capdeferred * 2 : 16;
		l->deferred = xreallocarray(l->deferred, l->capdeferred,
		    sizeof *l->deferred);
	}
	l->deferred[l->ndeferred].fn = fn;
	l->deferred[l->ndeferred].obj = obj;
	l->ndeferred++;
}

/*
 * Read queued signals from the signalfd and post their dispatch: a
 * handler may free anything (a reload does), so it never runs inside the
 * batch. The same signal twice in one turn is handled once.
 */
static void
loop_signal_read(void *arg, uint32_t events)
{
	struct loop		*l = arg;
	struct signalfd_siginfo	 si;
	size_t			 i;

	(void)events;
	while (read(l->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
		for (i = 0; i < l->nsigpending; i++)
			if (l->sigpending[i] == (int)si.ssi_signo)
				break;
		if (i == l->nsigpending && i < ARRAY_LEN(l->sigpending))
			l->sigpending[l->nsigpending++] = (int)si.ssi_signo;
	}
	if (l->nsigpending > 0)
		loop_post(l, &l->sigpost);
}

/* Posted: run the handlers of the signals read this turn, in order. */
static void
loop_signal_dispatch(void *arg)
{
	struct loop	*l = arg;
	int		 pending[ARRAY_LEN(l->sigpending)];
	size_t		 n = l->nsigpending, i, k;

	/* A handler's own signal (kill(getpid())) waits for the next turn. */
	memcpy(pending, l->sigpending, n * sizeof pending[0]);
	l->nsigpending = 0;
	for (i = 0; i < n; i++)
		for (k = 0; k < l->nsigs; k++)
			if (l->sigs[k].signo == pending[i])
				l->sigs[k].cb(l->sigs[k].arg, pending[i]);
}

/* Route signo to cb via signalfd (the signal is blocked process-wide). */
int
loop_signal(struct loop *l, int signo, void (*cb)(void *, int), void *arg)
{
	if (l->nsigs == ARRAY_LEN(l->sigs))
		return -1;
	sigaddset(&l->sigmask, signo);
	if (sigprocmask(SIG_BLOCK, &l->sigmask, NULL) == -1)
		return -1;
	l->sigfd = signalfd(l->sigfd, &l->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (l->sigfd == -1)
		return -1;
	if (l->sigio.fd == -1 && loop_io_add(l, &l->sigio, l->sigfd,
	    EPOLLIN) == -1)
		return -1;
	l->sigs[l->nsigs].signo = signo;
	l->sigs[l->nsigs].cb = cb;
	l->sigs[l->nsigs].arg = arg;
	l->nsigs++;
	return 0;
}

/* Fire every timer whose deadline has passed. */
static void
loop_run_timers(struct loop *l)
{
	struct loop_timer	*t;
	size_t			 budget = l->nheap;

	/*
	 * At most the timers that were armed when we started: one re-armed
	 * into the past by its own callback runs on the next turn instead of
	 * spinning here and starving the fds.
	 */
	while (budget-- > 0 && l->nheap > 0 && l->heap[0]->at_ms <= l->now) {
		t = l->heap[0];
		loop_timer_stop(l, t);
		t->cb(t->arg);
	}
}

/* Milliseconds epoll may sleep: until the next timer, 0 if work is queued. */
static int
loop_wait_ms(struct loop *l)
{
	int64_t	d;

	if (l->post_head != NULL || l->ndeferred > 0)
		return 0;
	if (l->nheap == 0)
		return -1;
	d = l->heap[0]->at_ms - time_now_ms();
	if (d <= 0)
		return 0;
	return d > 60000 ? 60000 : (int)d;
}

/* Run until loop_stop(); returns 0, or -1 if epoll fails. */
int
loop_run(struct loop *l)
{
	struct epoll_event	 evs[LOOP_MAX_EVENTS];
	struct loop_io		*io;
	int			 n, i;

	l->running = 1;
	while (l->running) {
		n = epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, loop_wait_ms(l));
		if (n == -1 && errno != EINTR) {
			log_err(NULL, NULL, "epoll_wait: %s", strerror(errno));
			return -1;
		}
		l->now = time_now_ms();
		l->batch = evs;
		l->batch_n = n > 0 ? n : 0;
		for (i = 0; i < l->batch_n; i++) {
			l->batch_next = i + 1;
			/* NULL: struck out by loop_io_del() in this batch. */
			if ((io = evs[i].data.ptr) == NULL)
				continue;
			io->cb(io->arg, evs[i].events);
		}
		l->batch = NULL;
		l->batch_next = l->batch_n = 0;
		loop_run_timers(l);
		loop_run_posted(l);
		loop_run_deferred(l);
	}
	return 0;
}

/* Make loop_run return after the current turn. */
void
loop_stop(struct loop *l)
{
	l->running = 0;
}
