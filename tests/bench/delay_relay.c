/*
 * delay_relay: a TCP relay on loopback that delays every chunk by a fixed
 * one-way time in each direction, preserving order, without limiting
 * bandwidth: the benchmark's stand-in for a WAN path (the bench machine's
 * kernel has no netem).
 *
 *   delay_relay TARGET_PORT ONE_WAY_US [QUEUE_MIB]
 *
 * Listens on an ephemeral 127.0.0.1 port and prints it on stdout (one
 * line); every accepted connection gets its own connection to
 * 127.0.0.1:TARGET_PORT. Bytes read from one side are stamped with
 * now + ONE_WAY_US and written to the other side once that time has come
 * (a FIFO of timestamped chunks per direction; the EOF travels the same
 * way). A direction stops reading only when QUEUE_MIB (default 64) are in
 * flight in it, far above any SSH window the benchmark meets, so the path
 * has latency but no bandwidth limit of its own. Both ends see loopback
 * TCP: the delay shows up in the protocols above TCP (SSH channel
 * windows, request/response round trips), which is what the benchmark
 * measures. One thread, epoll and one timerfd; test tool, not a product.
 */

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <arpa/inet.h>

#define CHUNK_MAX	(256 * 1024)
#define READS_PER_EVENT	4

struct chunk {
	struct chunk	*next;
	uint64_t	 due;		/* CLOCK_MONOTONIC ns */
	size_t		 len, off;
	int		 fin;		/* the EOF, not data */
	char		 data[];
};

struct dir {
	struct chunk	*head, *tail;
	size_t		 queued;
	int		 eof_read;	/* FIN queued */
	int		 fin_sent;	/* shutdown(SHUT_WR) done */
	int		 blocked;	/* waiting for EPOLLOUT on the writer */
};

struct end {
	struct pair	*pair;
	int		 fd;
	int		 side;		/* 0: accepted, 1: to the target */
	uint32_t	 mask;		/* events registered */
	int		 gone;		/* removed from epoll: done with */
};

struct pair {
	struct pair	*next, **prevp;
	struct end	 end[2];
	struct dir	 dir[2];	/* dir[i]: read from end[i], to end[1-i] */
	int		 dead;		/* an error: close at the next tick */
};

struct relay {
	int		 ep, lfd, tfd;
	int		 target_port;
	uint64_t	 delay_ns;
	size_t		 queue_max;
	struct pair	*pairs;
	char		*buf;
	uint64_t	 armed;		/* timer's deadline, 0: disarmed */
};

/* Current CLOCK_MONOTONIC time in nanoseconds. */
static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Exit with a message naming the failed call. */
static void
die(const char *what)
{
	fprintf(stderr, "delay_relay: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Free a direction's queued chunks. */
static void
dir_free(struct dir *d)
{
	struct chunk *c, *n;

	for (c = d->head; c != NULL; c = n) {
		n = c->next;
		free(c);
	}
	d->head = d->tail = NULL;
	d->queued = 0;
}

/* Close both sockets of a pair and free it. */
static void
pair_close(struct relay *r, struct pair *p)
{
	int i;

	for (i = 0; i < 2; i++) {
		close(p->end[i].fd);
		dir_free(&p->dir[i]);
	}
	*p->prevp = p->next;
	if (p->next != NULL)
		p->next->prevp = p->prevp;
	(void)r;
	free(p);
}

/* Append a chunk (data, or the FIN when len is 0 and fin is set). */
static void
dir_push(struct relay *r, struct dir *d, const char *data, size_t len,
    int fin)
{
	struct chunk *c;

	if ((c = malloc(sizeof(*c) + len)) == NULL)
		die("malloc");
	c->next = NULL;
	c->due = now_ns() + r->delay_ns;
	c->len = len;
	c->off = 0;
	c->fin = fin;
	memcpy(c->data, data, len);
	if (d->tail != NULL)
		d->tail->next = c;
	else
		d->head = c;
	d->tail = c;
	d->queued += len;
}

/* Read what end e has (a few reads) into its direction's queue; returns
 * -1 when the pair must be closed. */
static int
end_read(struct relay *r, struct end *e)
{
	struct dir *d = &e->pair->dir[e->side];
	ssize_t n;
	int i;

	for (i = 0; i < READS_PER_EVENT && !d->eof_read &&
	    d->queued < r->queue_max; i++) {
		n = read(e->fd, r->buf, CHUNK_MAX);
		if (n > 0) {
			dir_push(r, d, r->buf, (size_t)n, 0);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n < 0)
			return -1;
		d->eof_read = 1;
		dir_push(r, d, NULL, 0, 1);
	}
	return 0;
}

/* Write every due chunk of direction i of p; returns -1 when the pair
 * must be closed. */
static int
dir_flush(struct pair *p, int i, uint64_t now)
{
	struct dir *d = &p->dir[i];
	int fd = p->end[1 - i].fd;
	struct chunk *c;
	ssize_t n;

	while ((c = d->head) != NULL && c->due <= now && !d->blocked) {
		if (c->fin) {
			if (shutdown(fd, SHUT_WR) < 0 && errno != ENOTCONN)
				return -1;
			d->fin_sent = 1;
		} else {
			n = write(fd, c->data + c->off, c->len - c->off);
			if (n < 0 && errno == EAGAIN) {
				d->blocked = 1;
				break;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -1;
			c->off += (size_t)n;
			d->queued -= (size_t)n;
			if (c->off < c->len) {
				d->blocked = 1;
				break;
			}
		}
		d->head = c->next;
		if (d->head == NULL)
			d->tail = NULL;
		free(c);
	}
	return 0;
}

/* Register the events end e needs now (read while its direction has room,
 * write while the direction towards it is blocked). */
static void
end_interest(struct relay *r, struct end *e)
{
	struct pair *p = e->pair;
	struct dir *in = &p->dir[e->side], *out = &p->dir[1 - e->side];
	struct epoll_event ev;
	uint32_t m = 0;

	if (e->gone)
		return;
	if (!in->eof_read && in->queued < r->queue_max)
		m |= EPOLLIN;
	if (out->blocked)
		m |= EPOLLOUT;
	if (m == e->mask)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = m;
	ev.data.ptr = e;
	if (epoll_ctl(r->ep, EPOLL_CTL_MOD, e->fd, &ev) < 0)
		die("epoll_ctl");
	e->mask = m;
}

/* Set O_NONBLOCK and TCP_NODELAY (the delay is ours to add, not Nagle's). */
static void
fd_setup(int fd)
{
	int one = 1;

	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		die("fcntl");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Accept every pending connection and connect each to the target. */
static void
relay_accept(struct relay *r)
{
	struct sockaddr_in sin;
	struct epoll_event ev;
	struct pair *p;
	int a, b, i;

	while ((a = accept(r->lfd, NULL, NULL)) >= 0) {
		if ((b = socket(AF_INET, SOCK_STREAM, 0)) < 0)
			die("socket");
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)r->target_port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		/* Loopback: a blocking connect returns at once. */
		if (connect(b, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
			fprintf(stderr, "delay_relay: connect to port %d: %s\n",
			    r->target_port, strerror(errno));
			close(a);
			close(b);
			continue;
		}
		if ((p = calloc(1, sizeof(*p))) == NULL)
			die("calloc");
		p->end[0].fd = a;
		p->end[1].fd = b;
		for (i = 0; i < 2; i++) {
			p->end[i].pair = p;
			p->end[i].side = i;
			p->end[i].mask = EPOLLIN;
			fd_setup(p->end[i].fd);
			memset(&ev, 0, sizeof(ev));
			ev.events = EPOLLIN;
			ev.data.ptr = &p->end[i];
			if (epoll_ctl(r->ep, EPOLL_CTL_ADD, p->end[i].fd,
			    &ev) < 0)
				die("epoll_ctl");
		}
		p->next = r->pairs;
		p->prevp = &r->pairs;
		if (r->pairs != NULL)
			r->pairs->prevp = &p->next;
		r->pairs = p;
	}
	if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
		die("accept");
}

/* Handle an event on one end of a pair; returns -1 to close the pair. */
static int
end_event(struct relay *r, struct end *e, uint32_t events)
{
	struct pair *p = e->pair;

	if (events & EPOLLERR)
		return -1;
	if (events & EPOLLOUT)
		p->dir[1 - e->side].blocked = 0;
	if (events & (EPOLLIN | EPOLLHUP)) {
		if (end_read(r, e) < 0)
			return -1;
	}
	/*
	 * HUP (both ways shut) is level-triggered even with no events
	 * asked: once its EOF is read and ours sent, drop the socket from
	 * epoll (its EOF may still wait in the queue for its time). Before
	 * its EOF: data still waits in the socket, read on.
	 */
	if ((events & EPOLLHUP) && !e->gone && p->dir[e->side].eof_read) {
		if (!p->dir[1 - e->side].fin_sent)
			return -1;
		if (epoll_ctl(r->ep, EPOLL_CTL_DEL, e->fd, NULL) < 0)
			die("epoll_ctl");
		e->gone = 1;
	}
	return 0;
}

/* Flush every pair, close the finished ones, re-register interests and
 * arm the timer for the earliest chunk still waiting for its time. */
static void
relay_tick(struct relay *r)
{
	struct itimerspec its;
	struct pair *p, *n;
	uint64_t now = now_ns(), next = 0;
	int i, bad;

	for (p = r->pairs; p != NULL; p = n) {
		n = p->next;
		bad = p->dead;
		for (i = 0; i < 2 && !bad; i++)
			bad = dir_flush(p, i, now) < 0;
		if (bad || (p->dir[0].fin_sent && p->dir[1].fin_sent)) {
			pair_close(r, p);
			continue;
		}
		for (i = 0; i < 2; i++) {
			end_interest(r, &p->end[i]);
			if (p->dir[i].head != NULL && !p->dir[i].blocked &&
			    (next == 0 || p->dir[i].head->due < next))
				next = p->dir[i].head->due;
		}
	}
	if (next == r->armed)
		return;		/* a syscall per loop saved */
	r->armed = next;
	memset(&its, 0, sizeof(its));
	if (next != 0) {
		its.it_value.tv_sec = (time_t)(next / 1000000000u);
		its.it_value.tv_nsec = (long)(next % 1000000000u);
	}
	if (timerfd_settime(r->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		die("timerfd_settime");
}

/* Listen on an ephemeral loopback port and print it. */
static void
relay_listen(struct relay *r)
{
	struct sockaddr_in sin;
	struct epoll_event ev;
	socklen_t len = sizeof(sin);

	if ((r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0)
		die("socket");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(r->lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(r->lfd, 128) < 0 ||
	    getsockname(r->lfd, (struct sockaddr *)&sin, &len) < 0)
		die("listen");
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	if (epoll_ctl(r->ep, EPOLL_CTL_ADD, r->lfd, &ev) < 0)
		die("epoll_ctl");
	printf("%d\n", ntohs(sin.sin_port));
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	struct relay r;
	struct epoll_event evs[64], ev;
	struct end *e;
	uint64_t ticks;
	int i, n;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: delay_relay TARGET_PORT ONE_WAY_US "
		    "[QUEUE_MIB]\n");
		return 2;
	}
	memset(&r, 0, sizeof(r));
	r.target_port = atoi(argv[1]);
	r.delay_ns = (uint64_t)strtoull(argv[2], NULL, 10) * 1000u;
	r.queue_max = (size_t)(argc == 4 ? strtoul(argv[3], NULL, 10) : 64)
	    << 20;
	if (r.target_port <= 0 || r.target_port > 65535 || r.queue_max == 0) {
		fprintf(stderr, "delay_relay: bad target port or queue size\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((r.buf = malloc(CHUNK_MAX)) == NULL)
		die("malloc");
	if ((r.ep = epoll_create1(0)) < 0)
		die("epoll_create1");
	if ((r.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK)) < 0)
		die("timerfd_create");
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = &r.tfd;
	if (epoll_ctl(r.ep, EPOLL_CTL_ADD, r.tfd, &ev) < 0)
		die("epoll_ctl");
	relay_listen(&r);
	for (;;) {
		n = epoll_wait(r.ep, evs, 64, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("epoll_wait");
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL) {
				relay_accept(&r);
				continue;
			}
			if (evs[i].data.ptr == &r.tfd) {
				(void)!read(r.tfd, &ticks, sizeof(ticks));
				r.armed = 0;	/* expired */
				continue;
			}
			e = evs[i].data.ptr;
			/* Closed at the tick: later events may name it. */
			if (!e->pair->dead && end_event(&r, e, evs[i].events) < 0)
				e->pair->dead = 1;
		}
		relay_tick(&r);
	}
}
