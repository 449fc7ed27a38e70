/*
 * The control socket. A status snapshot per connection keeps the protocol
 * trivial for scripts (socat, nc -U) and for our own `tunnels status`.
 */
#include <errno.h>
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

/* Clients served at once; more wait in the listen backlog. */
#define CONTROL_MAX_CLIENTS	32

struct control_client {
	struct control		*c;
	int			 fd;
	struct loop_io		 io;
	struct buf		 out;
	struct control_client	*next;
};

struct control {
	struct loop		*loop;
	char			*path;
	int			 fd;
	struct loop_io		 io;
	control_render_cb	*render;
	void			*arg;
	struct control_client	*clients;
	int			 nclients;
};

static void	control_accept(void *, uint32_t);

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
	    listen(fd, 16) == -1) {
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
	loop_io_init(&c->io, control_accept, c);
	if (loop_io_add(l, &c->io, fd, EPOLLIN) == -1) {
		*cause = xasprintf("epoll: %s", strerror(errno));
		control_free(c);
		return NULL;
	}
	return c;
}

/* Close one client and unlink it. */
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
	/* Room again: resume accepting if we had stopped. */
	if (c->nclients-- == CONTROL_MAX_CLIENTS && c->io.fd != -1)
		loop_io_set(c->loop, &c->io, EPOLLIN);
	loop_io_del(c->loop, &cl->io);
	close(cl->fd);
	buf_clear(&cl->out);
	loop_defer_free(c->loop, free, cl);
}

/* Write what is left of the document; close when done or on error. */
static void
control_client_write(void *arg, uint32_t events)
{
	struct control_client	*cl = arg;
	ssize_t			 n;

	(void)events;
	while (cl->out.len > 0) {
		n = send(cl->fd, buf_data(&cl->out), cl->out.len,
		    MSG_NOSIGNAL);
		if (n > 0) {
			buf_consume(&cl->out, (size_t)n);
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		break;
	}
	control_client_close(cl);
}

/* Accept clients and hand each the status document. */
static void
control_accept(void *arg, uint32_t events)
{
	struct control		*c = arg;
	struct control_client	*cl;
	int			 fd;

	(void)events;
	for (;;) {
		if (c->nclients == CONTROL_MAX_CLIENTS) {
			/* Full: leave the rest in the backlog, don't spin. */
			loop_io_set(c->loop, &c->io, 0);
			return;
		}
		fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1)
			return;
		cl = xcalloc(1, sizeof *cl);
		cl->c = c;
		cl->fd = fd;
		buf_init(&cl->out);
		c->render(c->arg, &cl->out);
		buf_append(&cl->out, "\n", 1);
		loop_io_init(&cl->io, control_client_write, cl);
		cl->next = c->clients;
		c->clients = cl;
		c->nclients++;
		if (loop_io_add(c->loop, &cl->io, fd, EPOLLOUT) == -1) {
			control_client_close(cl);
			continue;
		}
		control_client_write(cl, EPOLLOUT);
	}
}

/* Stop listening, drop clients, remove the socket path. */
void
control_free(struct control *c)
{
	if (c == NULL)
		return;
	while (c->clients != NULL)
		control_client_close(c->clients);
	loop_io_del(c->loop, &c->io);
	close(c->fd);
	unlink(c->path);
	free(c->path);
	free(c);
}

/* Connect to the daemon and read its document (blocking, bounded). */
int
control_query(const char *path, int timeout_ms, char **out, char **cause)
{
	struct sockaddr_un	 sun;
	struct pollfd		 pfd;
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
		*cause = xasprintf("no tunnels daemon answers on %s: %s", path,
		    strerror(errno));
		goto out;
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
