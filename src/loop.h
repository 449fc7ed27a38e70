/*
 * The event loop: epoll for fds, a min-heap of monotonic timers, signalfd
 * for signals, "posted" callbacks run after each dispatch, and deferred
 * frees run last. Single-threaded; nothing in it blocks but epoll_wait.
 *
 * Freeing: unregister first (loop_io_del, loop_timer_stop,
 * loop_post_cancel), then free at any time, even in the middle of a
 * dispatch batch: the loop never touches a watcher again once it is
 * removed. An object freed from inside its own callback uses
 * loop_defer_free(), since the frames below still use it.
 */
#ifndef TUNNELS_LOOP_H
#define TUNNELS_LOOP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

struct loop;

struct loop_io {
	int		  fd;		/* -1 when not registered */
	uint32_t	  events;	/* EPOLLIN | EPOLLOUT ... */
	void		(*cb)(void *arg, uint32_t events);
	void		 *arg;
};

struct loop_timer {
	int64_t		  at_ms;	/* deadline, monotonic */
	size_t		  slot;		/* heap index + 1; 0 = not armed */
	void		(*cb)(void *arg);
	void		 *arg;
};

/*
 * A posted callback runs once after the current dispatch round, with no
 * fd callback or timer on the stack.
 */
struct loop_post {
	void		(*cb)(void *arg);
	void		 *arg;
	struct loop_post *next;
	int		  posted;
};

struct loop	*loop_new(void);
void		 loop_free(struct loop *);
int		 loop_run(struct loop *);
void		 loop_stop(struct loop *);
int64_t		 loop_now(struct loop *);

void		 loop_io_init(struct loop_io *, void (*)(void *, uint32_t),
		    void *);
int		 loop_io_add(struct loop *, struct loop_io *, int fd,
		    uint32_t events);
void		 loop_io_set(struct loop *, struct loop_io *, uint32_t events);
/* Also drops io's events not yet dispatched in the current batch. */
void		 loop_io_del(struct loop *, struct loop_io *);

void		 loop_timer_init(struct loop_timer *, void (*)(void *), void *);
void		 loop_timer_at(struct loop *, struct loop_timer *, int64_t at);
void		 loop_timer_in(struct loop *, struct loop_timer *, int64_t ms);
void		 loop_timer_stop(struct loop *, struct loop_timer *);
int		 loop_timer_armed(const struct loop_timer *);

void		 loop_post_init(struct loop_post *, void (*)(void *), void *);
void		 loop_post(struct loop *, struct loop_post *);
void		 loop_post_cancel(struct loop *, struct loop_post *);

/* Free obj with fn at the end of this turn (after the posted callbacks). */
void		 loop_defer_free(struct loop *, void (*)(void *), void *);

/*
 * Deliver signo through signalfd to cb; the signal is blocked. cb runs as
 * posted work (after the turn's fd callbacks and timers), so it may free
 * any object of the loop.
 */
int		 loop_signal(struct loop *, int signo, void (*)(void *, int),
		    void *);

#endif
