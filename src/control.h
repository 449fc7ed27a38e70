/*
 * The control socket: a unix stream socket (mode 0600). Every client that
 * connects receives one JSON status document, then the daemon closes.
 */
#ifndef TUNNELS_CONTROL_H
#define TUNNELS_CONTROL_H

struct buf;
struct loop;
struct control;

/* Fill out with the current status document. */
typedef void control_render_cb(void *arg, struct buf *out);

/* Listen on path; NULL with *cause (another daemon holds it ...). */
struct control	*control_new(struct loop *, const char *path,
		    control_render_cb *, void *arg, char **cause);
/* Close the socket and remove its path. */
void		 control_free(struct control *);

/* Client: fetch the document; -1 with *cause when no daemon answers. */
int		 control_query(const char *path, int timeout_ms, char **out,
		    char **cause);
/* The same, and *peer: the pid of the process that listens (SO_PEERCRED). */
int		 control_query_peer(const char *path, int timeout_ms,
		    char **out, long *peer, char **cause);

#endif
