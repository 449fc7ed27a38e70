/*
 * The control socket. A status snapshot per connection keeps the protocol
 * trivial for scripts (socat, nc -U) and for our own `tunnels status`.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "log.h"
#include "loop.h"
#include "util.h"

/*
 * Clients served at once. When full, a new client replaces the oldest
 * one if that one had CONTROL_EVICT_MS already: a client that does not
 * read can hold a slot, never the socket.
 */
#define CONTROL_MAX_CLIENTS	32
#define CONTROL_EVICT_MS	200
/* Connections the kernel queues for us (a status burst, one rendering). */
#define CONTROL_BACKLOG		64
/* A client has this long to read the whole document. */
#define CONTROL_CLIENT_MS	5000
/* Out of fds with no reserve: the listener rests this long. */
#define CONTROL_PAUSE_MS	250

/* One rendered status document, shared by the clients of one accept. */
struct control_doc {
	unsigned		 refs;
	struct buf		 b;
};

struct control_client {
	struct control		*c;
	int			 fd;
	struct loop_io		 io;
	struct loop_timer	 deadline;
	struct control_doc	*doc;
	size_t			 off;		/* bytes of doc sent */
	int64_t			 since_ms;
	struct control_client	*next;		/* oldest first */
};

struct control {
	struct loop		*loop;
	char			*path;
	int			 fd;
	struct loop_io		 io;
	control_render_cb	*render;
	void			*arg;
	struct control_client	*clients;	/* oldest first */
	int			 nclients;
	/*
	 * An fd kept open for the day the process runs out: closed to
	 * accept one client (status is what one wants then), reopened when
	 * a client leaves.
	 */
	int			 reserve;
	struct loop_timer	 resume;	/* re-arms a paused listener */
	int			 paused;
	unsigned		 fd_failures;	/* accepts refused for fds */
	/* One line per shortage and one per recovery, per window. */
	struct log_limit	 loglim, recovered;
};

static void	control_accept(void *, uint32_t);
static void	control_resume(void *);

/* Fill a sockaddr_un; -1 if the path is too long. */
static int
control_sockaddr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof *sun);
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun->sun_path)
		return -1;
	memcpy(sun->sun_path, path, strlen(path));
	return 0;
}

/* 1 if a live daemon answers on path. */
static int
control_in_use(const struct sockaddr_un *sun)
{
	int	fd, live;

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	live = connect(fd, (const struct sockaddr *)sun, sizeof *sun) == 0;
	close(fd);
	return live;
}

/* Create the parent directory of path when missing (one level). */
static void
control_mkdir_parent(const char *path)
{
	char	*dir = xstrdup(path), *slash = strrchr(dir, '/');

	if (slash != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) == -1 && errno != EEXIST)
			log_warn(NULL, NULL, "cannot create %s: %s", dir,
			    strerror(errno));
	}
	free(dir);
}

/* Listen on the control socket path. */
struct control *
control_new(struct loop *l, const char *path, control_render_cb *render,
    void *arg, char **cause)
{
	struct control		*c;
	struct sockaddr_un	 sun;
	mode_t			 old;
	int			 fd;

	if (control_sockaddr(path, &sun) == -1) {
		*cause = xasprintf("control socket path too long: %s", path);
		return NULL;
	}
	if (control_in_use(&sun)) {
		*cause = xasprintf("another tunnels daemon is running (it "
		    "answers on %s)", path);
		return NULL;
	}
	control_mkdir_parent(path);
	/* A stale socket from a crashed run: nobody answers on it. */
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		*cause = xasprintf("socket: %s", strerror(errno));
		return NULL;
	}
	/* Mode 0600 from the start: no window with a wider mode. */
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) == -1 ||
	    listen(fd, CONTROL_BACKLOG) == -1) {
		umask(old);
		*cause = xasprintf("control socket %s: %s", path,
		    strerror(errno));
		close(fd);
		return NULL;
	}
	umask(old);
	c = xcalloc(1, sizeof *c);
	c->loop = l;
	c->path = xstrdup(path);
	c->fd = fd;
	c->render = render;
	c->arg = arg;
	c->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
	loop_timer_init(&c->resume, control_resume, c);
	loop_io_init(&c->io, control_accept, c);
	if (loop_io_add(l, &c->io, fd, EPOLLIN) == -1) {
		*cause = xasprintf("epoll: %s", strerror(errno));
		control_free(c);
		return NULL;
	}
	return c;
}

/* Drop a reference to a document. */
static void
control_doc_unref(struct control_doc *doc)
{
	if (doc == NULL || --doc->refs > 0)
		return;
	buf_clear(&doc->b);
	free(doc);
}

/* Take the reserve fd again if it was spent (an fd was just freed). */
static void
control_reserve_take(struct control *c)
{
	if (c->reserve == -1)
		c->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Stop accepting for ms (the resume timer arms the listener again). */
static void
control_pause(struct control *c, int64_t ms)
{
	loop_io_set(c->loop, &c->io, 0);
	c->paused = 1;
	if (!loop_timer_armed(&c->resume))
		loop_timer_in(c->loop, &c->resume, ms);
}

/* Timer: accept again (and take the reserve back if we can). */
static void
control_resume(void *arg)
{
	struct control	*c = arg;

	control_reserve_take(c);
	c->paused = 0;
	loop_io_set(c->loop, &c->io, EPOLLIN);
}

/* Close one client and unlink it (its memory goes after this turn). */
static void
control_client_close(struct control_client *cl)
{
	struct control		 *c = cl->c;
	struct control_client	**pp;

	for (pp = &c->clients; *pp != NULL; pp = &(*pp)->next)
		if (*pp == cl) {
			*pp = cl->next;
			break;
		}
	c->nclients--;
	loop_io_del(c->loop, &cl->io);
	loop_timer_stop(c->loop, &cl->deadline);
	close(cl->fd);
	control_doc_unref(cl->doc);
	/* Its fd is free now: keep it as the reserve if that was spent. */
	control_reserve_take(c);
	/* Room again: resume accepting if we had stopped for being full. */
	if (c->paused && c->nclients < CONTROL_MAX_CLIENTS &&
	    c->reserve != -1) {
		loop_timer_stop(c->loop, &c->resume);
		control_resume(c);
	}
	/* Deferred: we may be inside this client's own callback. */
	loop_defer_free(c->loop, free, cl);
}

/* Send what the socket takes; 1 when the client is done (or failed). */
static int
control_client_send(struct control_client *cl)
{
	struct buf	*b = &cl->doc->b;
	ssize_t		 n;

	while (cl->off < b->len) {
		n = send(cl->fd, buf_data(b) + cl->off, b->len - cl->off,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			cl->off += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return 1;
	}
	return 1;
}

/* Writable (or hung up): send more, close when done or on error. */
static void
control_client_write(void *arg, uint32_t events)
{
	struct control_client	*cl = arg;

	(void)events;
	if (control_client_send(cl))
		control_client_close(cl);
}

/* Deadline: the client did not take its document in time. */
static void
control_client_expire(void *arg)
{
	struct control_client	*cl = arg;

	log_debug(NULL, NULL, "control client dropped: %zu of %zu bytes read "
	    "in %dms", cl->off, cl->doc->b.len, CONTROL_CLIENT_MS);
	control_client_close(cl);
}

/*
 * Make room for one more client when full: drop the oldest if it had its
 * CONTROL_EVICT_MS; otherwise 0 with *wait_ms until it will have.
 */
static int
control_make_room(struct control *c, int64_t *wait_ms)
{
	struct control_client	*old = c->clients;
	int64_t			 age;

	if (c->nclients < CONTROL_MAX_CLIENTS || old == NULL)
		return 1;
	age = loop_now(c->loop) - old->since_ms;
	if (age < CONTROL_EVICT_MS) {
		*wait_ms = CONTROL_EVICT_MS - age;
		return 0;
	}
	log_debug(NULL, NULL, "control socket full: dropping a client that "
	    "read %zu of %zu bytes", old->off, old->doc->b.len);
	control_client_close(old);
	return 1;
}

/* Serve a new client: send at once, wait for the rest with a deadline. */
static void
control_client_new(struct control *c, int fd, struct control_doc *doc)
{
	struct control_client	*cl, **pp;

	cl = xcalloc(1, sizeof *cl);
	cl->c = c;
	cl->fd = fd;
	cl->doc = doc;
	doc->refs++;
	cl->since_ms = loop_now(c->loop);
	loop_io_init(&cl->io, control_client_write, cl);
	loop_timer_init(&cl->deadline, control_client_expire, cl);
	for (pp = &c->clients; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = cl;
	c->nclients++;
	/* Most documents fit in the socket buffer: done before any epoll. */
	if (control_client_send(cl) ||
	    loop_io_add(c->loop, &cl->io, fd, EPOLLOUT) == -1) {
		control_client_close(cl);
		return;
	}
	loop_timer_in(c->loop, &cl->deadline, CONTROL_CLIENT_MS);
}

/* accept4 on the listener, spending the reserve fd when out of fds. */
static int
control_accept_fd(struct control *c)
{
	int	fd, err;

	fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd != -1 || (errno != EMFILE && errno != ENFILE) ||
	    c->reserve == -1)
		return fd;
	close(c->reserve);
	c->reserve = -1;
	fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd == -1) {
		err = errno;
		control_reserve_take(c);
		errno = err;
	}
	return fd;
}

/*
 * Accept clients and hand each the status document (one rendering for
 * all the clients of this call). Never spins: when the process is out
 * of fds and the reserve is spent, or the table is full of young
 * clients, the listener rests on a timer.
 */
static void
control_accept(void *arg, uint32_t events)
{
	struct control		*c = arg;
	struct control_doc	*doc = NULL;
	int64_t			 wait_ms;
	int			 fd;

	(void)events;
	for (;;) {
		if (!control_make_room(c, &wait_ms)) {
			control_pause(c, wait_ms);
			break;
		}
		if ((fd = control_accept_fd(c)) == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			/* EMFILE, ENFILE, ENOBUFS, ENOMEM: rest, then retry. */
			c->fd_failures++;
			log_limited(&c->loglim, loop_now(c->loop), "accept",
			    LOG_PRI_WARNING, NULL, NULL, "control socket: "
			    "accept: %s; clients wait until a file "
			    "descriptor is free", strerror(errno));
			control_pause(c, CONTROL_PAUSE_MS);
			break;
		}
		if (c->fd_failures > 0) {
			log_limited(&c->recovered, loop_now(c->loop),
			    "recovered", LOG_PRI_NOTICE, NULL, NULL,
			    "control socket: answering again (%u accepts "
			    "failed for lack of file descriptors)",
			    c->fd_failures);
			c->fd_failures = 0;
		}
		if (doc == NULL) {
			doc = xcalloc(1, sizeof *doc);
			doc->refs = 1;
			buf_init(&doc->b);
			c->render(c->arg, &doc->b);
			buf_append(&doc->b, "\n", 1);
		}
		control_client_new(c, fd, doc);
	}
	control_doc_unref(doc);
}

/* Stop listening, drop clients, remove the socket path. */
void
control_free(struct control *c)
{
	if (c == NULL)
		return;
	while (c->clients != NULL)
		control_client_close(c->clients);
	loop_timer_stop(c->loop, &c->resume);
	loop_io_del(c->loop, &c->io);
	close(c->fd);
	if (c->reserve != -1)
		close(c->reserve);
	unlink(c->path);
	log_limit_reset(&c->loglim);
	log_limit_reset(&c->recovered);
	free(c->path);
	free(c);
}

/* Connect to the daemon and read its document (blocking, bounded). */
int
control_query(const char *path, int timeout_ms, char **out, char **cause)
{
	return control_query_peer(path, timeout_ms, out, NULL, cause);
}

/*
 * control_query(), and the pid the kernel recorded for the listening end
 * (the process that called listen()), which a document cannot fake.
 */
int
control_query_peer(const char *path, int timeout_ms, char **out, long *peer,
    char **cause)
{
	struct sockaddr_un	 sun;
	struct pollfd		 pfd;
	struct ucred		 cred;
	socklen_t		 credlen = sizeof cred;
	struct buf		 b;
	char			 chunk[4096];
	ssize_t			 n;
	int			 fd, ret = -1;

	buf_init(&b);
	if (control_sockaddr(path, &sun) == -1) {
		*cause = xasprintf("control socket path too long: %s", path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		*cause = xasprintf("socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		/* The socket is 0600: the daemon runs, we may not ask it. */
		if (errno == EACCES || errno == EPERM)
			*cause = xasprintf("the tunnels daemon's control socket "
			    "%s is open to its own user only (mode 0600): run "
			    "this as root or as that user (sudo tunnels ...)",
			    path);
		else
			*cause = xasprintf("no tunnels daemon answers on %s: %s",
			    path, strerror(errno));
		goto out;
	}
	if (peer != NULL) {
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred,
		    &credlen) == -1) {
			*cause = xasprintf("%s: SO_PEERCRED: %s", path,
			    strerror(errno));
			goto out;
		}
		*peer = (long)cred.pid;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		if (poll(&pfd, 1, timeout_ms) <= 0) {
			*cause = xasprintf("no answer on %s within %dms", path,
			    timeout_ms);
			goto out;
		}
		n = read(fd, chunk, sizeof chunk);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			*cause = xasprintf("read %s: %s", path,
			    strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		buf_append(&b, chunk, (size_t)n);
	}
	*out = xstrdup(buf_cstr(&b));
	ret = 0;
out:
	buf_clear(&b);
	close(fd);
	return ret;
}
